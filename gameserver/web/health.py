"""Liveness and readiness: ``GET /healthz`` and ``GET /readyz``.

``/healthz`` answers 200 while the process serves HTTP at all (a liveness
probe restarts the process when it stops answering). ``/readyz`` answers 200
only while the server accepts new players, and 503 while it is starting or
draining, so load balancers, Kubernetes and Agones-style fleets send players
elsewhere. Draining begins with :func:`set_draining`, the first thing the
shutdown path does; from then on matchmaking answers ``server_draining`` too.
A cluster node also answers 503 while it cannot reach Redis (its matchmaking
would only answer ``directory_unavailable``), and 200 again once it can.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from gameserver.web.keys import MANAGER

log = logging.getLogger("gameserver.health")


class Lifecycle:
    """Where the app is: starting, serving, or draining."""

    __slots__ = ("checks", "draining", "started")

    def __init__(self) -> None:
        self.started = False  # set once start-up (rooms, housekeeping) has completed
        self.draining = False  # set once, when shutdown begins; never cleared
        # What else a ready server needs: each names what is missing, or None.
        self.checks: list[Callable[[], str | None]] = []

    def state(self, accepting: bool) -> str:
        if self.draining or (self.started and not accepting):
            return "draining"
        if not self.started:
            return "starting"
        for check in self.checks:
            problem = check()
            if problem:
                return problem
        return "ready"


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


def setup(app: web.Application) -> None:
    app[LIFECYCLE] = Lifecycle()
    app.on_startup.append(_started)  # after the rooms' own start-up (cleanup_ctx runs first)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def set_draining(app: web.Application) -> None:
    """Shutdown has begun: report not ready and refuse new players. Idempotent.

    Call it first on every shutdown path (SIGTERM, the app's on_shutdown), before
    anything that waits, so probes see 503 for the whole drain.
    """
    lifecycle = app.get(LIFECYCLE)
    if lifecycle is not None and not lifecycle.draining:
        lifecycle.draining = True
        log.info("draining: /readyz answers 503 and matchmaking refuses new players")
    app[MANAGER].accepting = False


def is_ready(app: web.Application) -> bool:
    return app[LIFECYCLE].state(app[MANAGER].accepting) == "ready"


async def _started(app: web.Application) -> None:
    app[LIFECYCLE].started = True


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[LIFECYCLE].state(request.app[MANAGER].accepting)
    return web.json_response({"status": state}, status=200 if state == "ready" else 503,
                             headers={"Cache-Control": "no-store"})
