"""The aiohttp application: routes, start-up and shutdown, shared registries."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gameserver.config import ConfigError, Settings
from gameserver.core import codec
from gameserver.core.limits import AddressCounter, Limits
from gameserver.core.room import Room
from gameserver.games.arena import Arena
from gameserver.games.cards import Cards
from gameserver.games.connect_four import ConnectFour
from gameserver.host import liveness
from gameserver.host.matchmaker import RoomManager
from gameserver.host.recorder import RecordOptions
from gameserver.web import admin, edge, headers, health, http_api, metrics
from gameserver.web.client_budgets import ClientBudgets
from gameserver.web.game_socket import game_socket
from gameserver.web.keys import (
    ADDRESSES,
    BACKGROUND,
    CLIENT_BUDGETS,
    LISTINGS,
    MANAGER,
    PAGES,
    SETTINGS,
)
from gameserver.web.listing import ListingCache

BUILTIN_GAMES: tuple[type[Room], ...] = (Arena, ConnectFour, Cards)


def static_dir() -> Path:
    """The browser client: inside the installed package, or beside it in a checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_static", package.parent / "static"):
        if (candidate / "index.html").is_file():
            return candidate
    raise FileNotFoundError("the browser client (static/) is missing from this installation")


def load_game(spec: str) -> type[Room]:
    """``module:Class`` to a Room subclass."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--games {spec!r}: expected module:Class")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--games {spec!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Room)):
        raise ConfigError(f"--games {spec!r}: not a gameserver.Room subclass")
    return cls


def create_app(settings: Settings | None = None,
               games: tuple[type[Room], ...] | None = None) -> web.Application:
    settings = settings or Settings()
    if games is None:
        extra = tuple(load_game(spec) for spec in settings.games)
        # A --games class named like a built-in game takes its place (a customised arena,
        # or loadtest.movement's equal-work benchmark game).
        taken = {cls.game for cls in extra}
        games = tuple(g for g in BUILTIN_GAMES if g.game not in taken) + extra
    # The HTTP edge (edge.py): no inflated bodies, header/idle timeouts, JSON errors.
    app = web.Application(client_max_size=64 * 1024, middlewares=[edge.guard],
                          handler_args=edge.handler_args(settings))
    app.on_response_prepare.append(headers.add_headers)
    app[SETTINGS] = settings
    cluster = None
    if settings.redis:  # a cluster node: rooms listed and seats counted in Redis (node.py)
        from gameserver.cluster import node
        cluster = node.node_for(settings)
    app[MANAGER] = RoomManager(
        games, tick_rate=settings.tick_rate, limits=Limits.from_settings(settings),
        directory=cluster.directory if cluster else None,
        node=cluster.node if cluster else "local", placement=cluster,
        record=record_options(settings))
    app[BACKGROUND] = set()
    app[LISTINGS] = ListingCache(lambda: app[MANAGER].directory)
    app[ADDRESSES] = AddressCounter(settings.max_connections_per_ip,
                                    [n for n in settings.ip_limit_exempt if n])
    app[CLIENT_BUDGETS] = ClientBudgets(settings.matchmake_rate,
                                        settings.room_creations_per_minute,
                                        settings.max_pending_per_client,
                                        [n for n in settings.ip_limit_exempt if n])
    app.cleanup_ctx.append(_rooms_lifecycle)
    app.on_shutdown.append(_going_away)
    if cluster is not None:
        node.setup(app, cluster)

    static = static_dir()
    app.router.add_get("/", _index(static))
    app.router.add_get("/replay", _index(static, "replay.html"))  # recordings, in the browser
    app.router.add_get("/rooms", http_api.list_rooms)
    app.router.add_get("/games", http_api.list_games)
    app.router.add_get("/stats", http_api.stats)
    app.router.add_post("/reconnect", http_api.reconnect)
    # Hosting (issue 6): the two wrappers only count outcomes and open sockets.
    app.router.add_post("/matchmake", metrics.count_matchmaking(http_api.matchmake))
    app.router.add_get("/ws", metrics.count_sockets(game_socket))
    app.router.add_static("/static/", static, follow_symlinks=False)
    app.router.add_get("/sdk/{name}", _sdk(static))
    pages = game_pages(app[MANAGER].games.values(), static)
    app[PAGES] = {game: f"/play/{game}/" for game in pages}
    for game, folder in pages.items():
        _serve_page(app, game, folder)
    health.setup(app)  # /healthz, /readyz
    metrics.setup(app)  # /metrics
    admin.setup(app, settings.admin_token)  # /monitor, /admin/... (only with a token)
    return app


# The built-in games' pages ship with the browser client (static/), not beside their modules.
BUILTIN_PAGES: dict[str, str] = {"connect_four": "games/connect_four", "cards": "games/cards"}


def game_pages(games: Iterable[type[Room]], static: Path) -> dict[str, Path]:
    """Each game's page directory (``Room.page``), by game name, for those that have one."""
    pages: dict[str, Path] = {}
    for cls in games:
        if cls.page is not None:
            folder = Path(cls.page)
            if not folder.is_absolute():
                module = sys.modules[cls.__module__].__file__ or ""
                folder = Path(module).resolve().parent / folder
        elif cls.game in BUILTIN_PAGES and cls in BUILTIN_GAMES:
            folder = static / BUILTIN_PAGES[cls.game]
        else:
            continue
        if not (folder / "index.html").is_file():
            raise ConfigError(f"game {cls.game!r}: its page {folder} has no index.html")
        pages[cls.game] = folder
    return pages


def _serve_page(app: web.Application, game: str, folder: Path) -> None:
    """``/play/<game>/``: the page's index.html; its other files below it."""
    prefix = f"/play/{quote(game, safe='')}"

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / "index.html")

    async def to_index(_: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(prefix + "/")

    app.router.add_get(prefix, to_index)
    app.router.add_get(prefix + "/", index)
    app.router.add_static(prefix + "/", folder, follow_symlinks=False)


def record_options(settings: Settings) -> RecordOptions | None:
    """Where and how rooms are recorded (``--record``); None without it."""
    if not settings.record:
        return None
    directory = Path(settings.record).expanduser().resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--record {settings.record!r}: {exc.strerror or exc}") from None
    return RecordOptions(directory, max_bytes=settings.record_max_bytes,
                         compress=settings.record_compress)


def _index(static: Path, page: str = "index.html") -> Any:
    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(static / page)
    return index


# The JavaScript SDK's files at stable URLs, by name only (no paths): the module, its
# types, and the msgpack build it loads from next to itself when a page has not.
SDK_FILES: dict[str, tuple[str, str]] = {
    "gameserver.js": ("sdk/gameserver.js", "application/javascript"),
    "gameserver.d.ts": ("sdk/gameserver.d.ts", "application/typescript"),
    "msgpack.min.js": ("vendor/msgpack.min.js", "application/javascript"),
    "msgpack.min.js.map": ("vendor/msgpack.min.js.map", "application/json"),
    "msgpack.LICENSE": ("vendor/msgpack.LICENSE", "text/plain"),
}


def _sdk(static: Path) -> Any:
    async def sdk(request: web.Request) -> web.FileResponse:
        entry = SDK_FILES.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound()
        path, content_type = entry
        return web.FileResponse(static / path,
                                headers={"Content-Type": f"{content_type}; charset=utf-8"})
    return sdk


async def _rooms_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[MANAGER].start()
    beat = asyncio.get_running_loop().create_task(
        liveness.keep_alive(app[MANAGER], app[SETTINGS].heartbeat), name="heartbeat")
    yield
    beat.cancel()
    await app[MANAGER].stop(codec.CLOSE_GOING_AWAY, "server shutting down")
    if app[BACKGROUND]:
        await asyncio.gather(*app[BACKGROUND], return_exceptions=True)


async def _going_away(app: web.Application) -> None:
    """Tell every player before the sockets are torn down."""
    health.set_draining(app)  # first: /readyz answers 503 from here on
    await app[MANAGER].stop(codec.CLOSE_GOING_AWAY, "server shutting down")
    if app[BACKGROUND]:
        await asyncio.gather(*app[BACKGROUND], return_exceptions=True)
