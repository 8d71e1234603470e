"""The HTTP side of a client: matchmaking, listing rooms, and opening game sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import msgpack

from gameserver.core import codec

from .errors import ConnectError, MatchmakeError, ServerError
from .room import PING_INTERVAL, RECONNECT_DELAYS, WELCOME_TIMEOUT, Room

CLOSE_ABNORMAL = 1006


class Client:
    """A gameserver client: ``Client("http://127.0.0.1:8000")``.

    ``name`` is the display name sent when matchmaking (the server's default,
    ``"player"``, when None); ``auth`` a signed join token (docs/PROTOCOL.md §7).
    ``session``: an aiohttp session to use (and not close); by default the
    client opens its own, closed by :meth:`close` or ``async with``.
    ``reconnect_delays``, ``ping_interval`` (None: no pings), ``history``,
    ``auto_reconnect`` and ``watchdog`` (the silence watchdog) are passed to each
    :class:`Room`.
    """

    def __init__(self, base_url: str, *, name: str | None = None, auth: str | None = None,
                 session: aiohttp.ClientSession | None = None,
                 reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
                 ping_interval: float | None = PING_INTERVAL, history: int = 1000,
                 auto_reconnect: bool = True, watchdog: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.auth = auth
        self._session = session
        self._own_session = session is None
        self.reconnect_delays = tuple(reconnect_delays)
        self.ping_interval = ping_interval
        self.history = history
        self.auto_reconnect = auto_reconnect
        self.watchdog = watchdog
        self.rooms: list[Room] = []  # the rooms joined or watched and not yet ended

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close every room (giving up their seats) and the client's own session."""
        for room in list(self.rooms):
            await room.close()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- matchmaking -------------------------------------------------------------

    async def join_or_create(self, game: str, options: dict[str, Any] | None = None, *,
                             name: str | None = None) -> Room:
        """The oldest public room of ``game`` with a free seat, else a new one."""
        return await self._seat(game=game, mode="join_or_create", options=options, name=name)

    async def create(self, game: str, options: dict[str, Any] | None = None, *,
                     private: bool = False, name: str | None = None) -> Room:
        """A new room of ``game``; a ``private`` one is never listed nor matched, only
        joined by its id."""
        return await self._seat(game=game, mode="create", options=options, name=name,
                                private=private)

    async def join(self, room_id: str | None = None, *, game: str | None = None,
                   options: dict[str, Any] | None = None, name: str | None = None) -> Room:
        """The room ``room_id`` (public or private); without an id, any public room of
        ``game`` with a free seat, never a new one (else ``MatchmakeError``
        ``no_such_room``). With an id, ``game`` may be left out: the server wants the
        room's game, so the client tries the games of ``GET /games`` in turn."""
        if room_id is None and game is None:
            raise ValueError("join() needs a room_id or a game")
        return await self._by_room(self._seat, room_id, game, mode="join",
                                   options=options, name=name)

    async def spectate(self, room_id: str | None = None, *, game: str | None = None
                       ) -> Room:
        """Watch the room ``room_id`` as a spectator: a :class:`Room` with
        ``spectator`` true and ``player_id`` 0 whose replica, events, callbacks and
        waits work as a player's, but which holds no seat and sends no inputs nor
        messages (:class:`SpectatorError`). Without an id, the live public room of
        ``game`` with the most players. After an abnormal close it spectates the same
        room again (a new pass), with back-off. Refusals: ``MatchmakeError``
        ``no_such_room`` or ``spectators_full`` (or ``ConnectError`` 4004 when the
        room filled up between the pass and the socket)."""
        if room_id is None and game is None:
            raise ValueError("spectate() needs a room_id or a game")
        return await self._by_room(self._watch, room_id, game)

    async def _by_room(self, seat: Callable[..., Awaitable[Room]], room_id: str | None,
                       game: str | None, **body: Any) -> Room:
        """``seat(game=..., room_id=..., **body)``; without ``game``, with each game of
        ``GET /games`` in turn (the server wants the room's game) until one has it."""
        if game is not None:
            return await seat(game=game, room_id=room_id, **body)
        refused: MatchmakeError | None = None
        for candidate in await self.games():
            try:
                return await seat(game=candidate, room_id=room_id, **body)
            except MatchmakeError as exc:
                if exc.code != "no_such_room":
                    raise
                refused = exc
        raise refused or MatchmakeError("no_such_room", f"no room {room_id!r}", 404)

    async def games(self) -> list[str]:
        """``GET /games``: the names of the games the server hosts."""
        return [str(g) for g in (await self._request("GET", "/games"))["games"]]

    async def reconnect(self, token: str) -> Room:
        """Resume a seat with a reconnection token (``room.reconnect_token``), e.g.
        from another process after this one lost its connection."""
        url = await self.reconnect_url(token)
        return await self._room(url)

    async def matchmake(self, **body: Any) -> dict[str, Any]:
        """``POST /matchmake`` with this body (plus ``name`` and ``auth``); the seat
        reservation. Raises :class:`MatchmakeError`."""
        if self.name is not None:
            body.setdefault("name", self.name)
        if self.auth is not None:
            body.setdefault("auth", self.auth)
        return await self._post("/matchmake", body)

    async def reconnect_url(self, token: str) -> str:
        """``POST /reconnect``: the WebSocket URL at which ``token`` resumes its seat."""
        return str((await self._post("/reconnect", {"token": token}))["ws_url"])

    async def list_rooms(self, game: str | None = None, *, limit: int | None = None,
                         after: str | None = None, all_pages: bool = True
                         ) -> list[dict[str, Any]]:
        """``GET /rooms``: the public rooms (of ``game``), oldest first. With
        ``all_pages`` every page is fetched; else one page of ``limit`` after
        ``after`` (use :meth:`rooms_page` to see the cursor)."""
        rooms: list[dict[str, Any]] = []
        cursor = after
        while True:
            page = await self.rooms_page(game, limit=limit, after=cursor)
            rooms.extend(page["rooms"])
            cursor = page.get("next")
            if not all_pages or not cursor:
                return rooms

    async def rooms_page(self, game: str | None = None, *, limit: int | None = None,
                         after: str | None = None) -> dict[str, Any]:
        """One page of ``GET /rooms``: ``{"rooms": [...], "next": cursor or None}``."""
        query = {k: str(v) for k, v in (("game", game), ("limit", limit), ("after", after))
                 if v is not None}
        return await self._request("GET", "/rooms", params=query)

    # -- plumbing --------------------------------------------------------------------

    async def _seat(self, **body: Any) -> Room:
        body = {k: v for k, v in body.items() if v is not None and v is not False}
        reservation = await self.matchmake(**body)
        room = await self._room(reservation["ws_url"])
        room.name = str(reservation.get("name", ""))
        return room

    async def spectator_pass(self, game: str, room_id: str | None = None) -> dict[str, Any]:
        """``POST /matchmake`` mode ``"spectate"``: a pass to watch ``room_id`` (or the
        busiest public room of ``game``), ``{"room_id", "ws_url", ...}``."""
        body = {"game": game, "mode": "spectate"}
        if room_id is not None:
            body["room_id"] = room_id
        return await self.matchmake(**body)

    async def _watch(self, game: str, room_id: str | None) -> Room:
        reservation = await self.spectator_pass(game, room_id)
        return await self._room(reservation["ws_url"], spectator=True)

    async def _room(self, ws_url: str, *, spectator: bool = False) -> Room:
        ws, welcome = await self.open_socket(ws_url)
        room = Room(self, ws, welcome, ws_url, reconnect_delays=self.reconnect_delays,
                    ping_interval=self.ping_interval, history=self.history,
                    auto_reconnect=self.auto_reconnect, spectator=spectator,
                    watchdog=self.watchdog)
        self.rooms.append(room)
        return room

    def _forget(self, room: Room) -> None:
        if room in self.rooms:
            self.rooms.remove(room)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", path, json=body)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self.session.request(method, self.base_url + path, **kwargs) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                if resp.status == 200 and isinstance(data, dict):
                    return data
                retry = resp.headers.get("Retry-After")
        except aiohttp.ClientError as exc:
            raise MatchmakeError("network", str(exc) or type(exc).__name__) from exc
        if not isinstance(data, dict):
            raise MatchmakeError("bad_response" if resp.status == 200 else f"http_{resp.status}",
                                 resp.reason or "", resp.status)
        retry_after = data.get("retry_after")
        if retry_after is None and retry is not None:
            try:
                retry_after = float(retry)
            except ValueError:
                retry_after = None
        return _raise(data, resp.status, retry_after)

    async def open_socket(self, ws_url: str) -> tuple[aiohttp.ClientWebSocketResponse,
                                                      list[Any]]:
        """Open a game socket and read its WELCOME: ``(ws, welcome)``; what follows is
        the room's to read. Raises :class:`ConnectError` when the socket ends first (an
        ERROR before the close is the exception's ``error``) or no WELCOME comes within
        10 s."""
        try:
            ws = await self.session.ws_connect(ws_url, autoping=True, max_msg_size=0)
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectError(CLOSE_ABNORMAL, str(exc) or type(exc).__name__) from exc
        error: ServerError | None = None
        try:
            async with asyncio.timeout(WELCOME_TIMEOUT):
                while True:
                    msg = await ws.receive()
                    if msg.type is aiohttp.WSMsgType.CLOSE:
                        raise ConnectError(int(msg.data), str(msg.extra or ""), error)
                    if msg.type is not aiohttp.WSMsgType.BINARY:
                        raise ConnectError(CLOSE_ABNORMAL, f"socket ended: {msg.type.name}",
                                           error)
                    message = msgpack.unpackb(msg.data)
                    if message[0] == codec.S_WELCOME:
                        return ws, message
                    if message[0] == codec.S_ERROR:
                        error = ServerError(message[1], message[2],
                                            message[3] if len(message) > 3 else None)
        except TimeoutError:
            await ws.close()
            raise ConnectError(CLOSE_ABNORMAL, "no welcome in time", error) from None
        except BaseException:
            await ws.close()
            raise


def _raise(data: dict[str, Any], status: int, retry_after: Any) -> Any:
    raise MatchmakeError(str(data.get("error", f"http_{status}")), str(data.get("message", "")),
                         status, float(retry_after) if retry_after is not None else None)
