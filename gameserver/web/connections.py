"""TCP connections per client address, counted from the moment they open.

Per-request checks cannot stop a client that opens connections and never
finishes a request (slowloris) or never sends one: those take file descriptors
all the same. :class:`Runner` serves the app with a :class:`CappedServer`,
which counts every connection (plain HTTP or upgraded to a WebSocket) against
``--max-connections-per-ip`` as it opens, and answers one over the limit with
``429 too_many_connections`` before reading anything, and closes it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web import RequestHandler

from gameserver.core.limits import AddressCounter
from gameserver.web.aiohttp_seam import OwnServerRunner, rebuild_server
from gameserver.web.edge import error_body
from gameserver.web.keys import SETTINGS

log = logging.getLogger("gameserver.http")

REFUSAL_LINGER = 0.5  # seconds a refused connection stays open for the 429 to be read


def _refusal(limit: int) -> bytes:
    body = error_body("too_many_connections", f"at most {limit} connections per address")
    return (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


class CappedServer(web.Server):
    """aiohttp's connection manager, with a per-address count of open connections."""

    def __init__(self, *args: Any, addresses: AddressCounter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = addresses
        self._refusal = _refusal(addresses.limit)
        self._counted: dict[RequestHandler, str] = {}

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else ""
        if self.addresses.acquire(address):
            self._counted[handler] = address
            return
        log.info("refused a connection from %s: %d open already", address,
                 self.addresses.limit)
        transport.write(self._refusal)
        handler.close()  # what the client sends from now on is read and ignored
        if transport.can_write_eof():
            transport.write_eof()
        # Closed in a moment, not at once: closing with the client's request unread
        # would reset the connection, and the client would never see the 429.
        asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None
                        ) -> None:
        address = self._counted.pop(handler, None)
        if address is not None:
            self.addresses.release(address)
        super().connection_lost(handler, exc)


class Runner(OwnServerRunner):
    """``web.AppRunner`` serving through a :class:`CappedServer` (``__main__`` uses it)."""

    def make_server(self, built: web.Server) -> web.Server:
        settings = self.app[SETTINGS]
        addresses = AddressCounter(settings.max_connections_per_ip,
                                   [n for n in settings.ip_limit_exempt if n])
        # Built from the server the app made (its handler, request factory and the
        # per-connection arguments of edge.handler_args), only the class differs.
        return rebuild_server(built, CappedServer, addresses=addresses)
