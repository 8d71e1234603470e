"""The HTTP JSON API: thin handlers over the room manager."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from aiohttp import web

from gameserver.auth import AuthError, verify
from gameserver.core import codec
from gameserver.host.matchmaker import MODES, MatchmakingError, clamp_name
from gameserver.web.edge import HttpError, error_response, parse_json, read_body
from gameserver.web.headers import valid_host
from gameserver.web.keys import CLIENT_BUDGETS, LISTINGS, MANAGER, PAGES, SETTINGS
from gameserver.web.listing import PAGE_SIZE, empty_page, parse_page
from gameserver.web.origin import origin_allowed, refuse_origin


def rate_limited(message: str, wait: float) -> web.Response:
    return error_response(429, "rate_limited", message, retry_after=wait)


async def list_rooms(request: web.Request) -> web.Response:
    """``GET /rooms[?game=G][&limit=N][&after=CURSOR]``: one page (listing.py)."""
    game = request.query.get("game") or None
    try:
        limit, after = parse_page(request.query)
    except ValueError as exc:
        return error_response(400, "bad_request", str(exc))
    if game is not None and game not in request.app[MANAGER].games:
        return web.json_response(empty_page())
    pages = await request.app[LISTINGS].pages(game)
    body = pages.first if after is None and limit == PAGE_SIZE else pages.page(after, limit)
    return web.Response(body=body, content_type="application/json")


async def list_games(request: web.Request) -> web.Response:
    manager = request.app[MANAGER]
    return web.json_response({"games": sorted(manager.games),
                              "protocol": codec.PROTOCOL_VERSION,
                              "pages": request.app[PAGES]})


async def matchmake(request: web.Request) -> web.Response:
    try:
        return await _matchmake(request)
    except HttpError as exc:  # answered here, so the matchmaking metrics count it
        return exc.response()


async def _matchmake(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not origin_allowed(request, settings.allowed_origins):
        return refuse_origin()
    # Budgets per client (client_budgets.py): the peer address first, before any work.
    budgets = request.app[CLIENT_BUDGETS]
    address = budgets.address_key(request.remote or "")
    clients = [address] if address else []
    if wait := budgets.request(clients, time.monotonic()):
        return rate_limited("too many matchmaking requests from this address", wait)
    body = parse_json(await read_body(request), {})
    try:
        params = _matchmake_params(body)
        if settings.auth_secret:
            claims = _authenticate(request, body, settings.auth_secret)
            params["auth"] = claims
            params["name"] = clamp_name(claims.get("name"), params["name"])
            identity = budgets.identity_key(claims["sub"])
            if wait := budgets.request([identity], time.monotonic()):
                return rate_limited("too many matchmaking requests for this player", wait)
            clients.append(identity)
        if params["mode"] == "spectate":
            return await _spectate(request, params["game"], params["room_id"])
        if wait := budgets.may_reserve(clients, time.monotonic()):
            return rate_limited("too many seat reservations not yet redeemed", wait)
        reservation = await request.app[MANAGER].matchmake(
            **params, may_create=lambda: budgets.create(clients, time.monotonic()))
    except MatchmakingError as exc:
        if exc.retry_after:
            return rate_limited(exc.message, exc.retry_after)
        return error_response(exc.status, exc.code, exc.message)
    budgets.pending.add(clients, reservation.token, reservation.expires_at)
    base = await _room_ws_base(request, reservation.node)
    return web.json_response({
        "room_id": reservation.room_id,
        "game": params["game"],
        "name": reservation.name,
        "token": reservation.token,
        "ws_url": f"{base}/ws?token={reservation.token}",
        "expires_in": settings.reservation_ttl,
        "protocol": codec.PROTOCOL_VERSION,
    })


async def _spectate(request: web.Request, game: str, room_id: str | None) -> web.Response:
    """``mode: "spectate"``: a pass to watch a room (it holds no seat)."""
    spectator = await request.app[MANAGER].spectate(game, room_id)
    base = await _room_ws_base(request, spectator.node)
    return web.json_response({
        "room_id": spectator.room_id,
        "game": game,
        "token": spectator.token,
        "ws_url": f"{base}/ws?watch={spectator.token}",
        "expires_in": request.app[SETTINGS].reservation_ttl,
        "spectator": True,
        "protocol": codec.PROTOCOL_VERSION,
    })


async def _room_ws_base(request: web.Request, node: str) -> str:
    """Where a room's sockets go: in a cluster, straight to the node hosting it."""
    node_url = await request.app[MANAGER].node_url(node)
    if node_url:
        return "ws" + node_url.removeprefix("http")
    return ws_base(request, request.app[SETTINGS].public_url)


async def reconnect(request: web.Request) -> web.Response:
    """``POST /reconnect {"token"}``: the WebSocket URL to reconnect at, asked of any node.

    The token is checked only when the socket redeems it, on the room's node.
    """
    if not origin_allowed(request, request.app[SETTINGS].allowed_origins):
        return refuse_origin()
    body = parse_json(await read_body(request), {})
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not 0 < len(token) <= 64 or "." not in token:
        return error_response(400, "bad_request",
                              "the body must be {\"token\": reconnection token}")
    room_id = token.partition(".")[0]
    listing = await request.app[MANAGER].directory.get(room_id)
    if listing is None or not await request.app[MANAGER].reachable(listing.node):
        return error_response(404, "no_such_room", "the room of that reconnection token is gone")
    base = await _room_ws_base(request, listing.node)
    return web.json_response({"room_id": room_id, "ws_url": f"{base}/ws?reconnect={token}"})


def _authenticate(request: web.Request, body: dict[str, Any], secret: str) -> dict[str, Any]:
    """The claims of the signed join token in ``Authorization: Bearer`` or ``"auth"``."""
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else body.get("auth")
    if not token:
        raise MatchmakingError("auth_required", "this server requires a signed join token "
                               "('auth' field or Authorization: Bearer)", 401)
    try:
        return verify(token, secret)
    except AuthError as exc:
        raise MatchmakingError(exc.code, exc.message, 401) from None


def _matchmake_params(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MatchmakingError("bad_request", "the body must be a JSON object")
    game = body.get("game")
    if not isinstance(game, str) or not game:
        raise MatchmakingError("bad_request", "'game' must be a game name")
    mode = body.get("mode", "join_or_create")
    room_id = body.get("room_id")
    if room_id is not None and (not isinstance(room_id, str) or not 0 < len(room_id) <= 64):
        raise MatchmakingError("bad_request", "'room_id' must be a room id string")
    if mode not in (*MODES, "spectate"):
        raise MatchmakingError("bad_request", f"mode must be one of {', '.join(MODES)} or "
                               "spectate")
    if room_id is not None and mode in ("create", "join_or_create"):
        raise MatchmakingError("bad_request", "'room_id' goes with mode 'join' or 'spectate'")
    if mode == "join" and room_id is None and body.get("private"):
        raise MatchmakingError("bad_request", "a private room is joined by its 'room_id'")
    private = body.get("private", False)
    if not isinstance(private, bool):
        raise MatchmakingError("bad_request", "'private' must be true or false")
    if private and mode != "create":
        raise MatchmakingError("bad_request", "'private' goes with mode 'create'")
    name = body.get("name")  # absent: the default name; present: it must be a string
    if "name" in body and not isinstance(name, str):
        raise MatchmakingError("bad_request", "'name' must be a string")
    options = body.get("options", {})
    if not isinstance(options, dict) or len(json.dumps(options)) > 1024:
        raise MatchmakingError("bad_request", "'options' must be a small JSON object")
    return {"game": game, "mode": mode, "room_id": room_id, "private": private,
            "name": clamp_name(name), "options": options}


def ws_base(request: web.Request, public_url: str) -> str:
    """``ws(s)://host[:port]`` for WebSocket URLs: the public URL, else this request's host."""
    if public_url:
        return "ws" + public_url.removeprefix("http")
    if not valid_host(request.host):  # never echo a hostile Host header into ws_url
        raise HttpError("bad_host", "the Host header must be host[:port]", 400)
    scheme = "wss" if request.secure else "ws"
    return f"{scheme}://{request.host}"


async def stats(request: web.Request) -> web.Response:
    """Process and per-room tick statistics (no room ids: private rooms stay private)."""
    manager = request.app[MANAGER]
    rooms = [{k: v for k, v in info.items() if k != "room_id"} for info in manager.summary()]
    cpu = os.times()
    return web.json_response({
        "process": {"pid": os.getpid(), "cpu_user_s": cpu.user, "cpu_system_s": cpu.system,
                    "monotonic": time.monotonic()},
        "rooms": rooms,
        "players": sum(r["players"] for r in rooms),
    })
