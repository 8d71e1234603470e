"""``gameserver`` / ``python -m gameserver``: parse settings, build the app, serve on uvloop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from gameserver import logs
from gameserver.config import ConfigError, Settings, build_parser, load
from gameserver.web import aiohttp_seam, health
from gameserver.web.app import create_app
from gameserver.web.connections import Runner

log = logging.getLogger("gameserver")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load(argv)
        if settings.workers > 1:  # a supervisor of N single-worker processes (workers.py)
            from gameserver.cluster.workers import supervise
            return supervise(settings, list(sys.argv[1:] if argv is None else argv))
        app = create_app(settings)
    except ConfigError as exc:
        print(f"gameserver: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_format)  # text or JSON lines (logs.py)
    _warn_secret_flags(sys.argv[1:] if argv is None else argv)
    try:
        try:
            import uvloop
        except ImportError:  # uvloop does not build on Windows; asyncio's own loop still works
            asyncio.run(serve(app, settings))
        else:
            uvloop.run(serve(app, settings))
    except ConfigError as exc:  # e.g. --redis cannot be reached at start-up
        print(f"gameserver: {exc}", file=sys.stderr)
        return 2
    return 0


def _warn_secret_flags(argv: Sequence[str]) -> None:
    """A secret given as a flag is readable by every local user in the process list."""
    given = vars(build_parser().parse_args(argv))  # as load() read them: abbreviations too
    for name in ("admin_token", "auth_secret"):
        if given[name] is not None:
            log.warning("--%s was given on the command line, where the process list shows it "
                        "to every user of this machine: set GAMESERVER_%s instead",
                        name.replace("_", "-"), name.upper())


async def serve(app: web.Application, settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    # Runner: connections are counted per address from the moment they open.
    runner = Runner(app, access_log=None,
                    shutdown_timeout=max(0.5, settings.shutdown_timeout / 2))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    if settings.redis:  # join the cluster under this address (cluster.py)
        from gameserver.cluster.node import announce
        await announce(app, shown, port)
    print(f"gameserver: serving on http://{shown}:{port}/ (Ctrl-C to stop)", flush=True)
    log.info("game sockets are read %s", aiohttp_seam.receive_path())
    # Everything built so far lives as long as the process: keep it out of the
    # collector's full passes, which would otherwise pause ticks for tens of ms.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # Refuse new players at once; then tell every player (1001), dispose rooms, close.
        health.set_draining(app)  # /readyz 503 and matchmaking refused, from this moment
        log.info("shutting down (at most %.0f s)", settings.shutdown_timeout)
        try:
            await asyncio.wait_for(runner.cleanup(), settings.shutdown_timeout)
        except TimeoutError:
            log.error("shutdown took longer than %.0f s; exiting anyway",
                      settings.shutdown_timeout)


if __name__ == "__main__":
    sys.exit(main())
