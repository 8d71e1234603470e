"""Security and cache headers on every response, and the Host a ``ws_url`` may echo."""

from __future__ import annotations

import re

from aiohttp import web

# The pages load only their own scripts, styles and images (no inline code), and open
# WebSockets to ws_url, which in a cluster is another node: any ws:/wss: host. One
# policy for every response: a 304 revalidating a page carries no content type, and
# its headers replace the cached page's, so the policy cannot depend on the body.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; object-src 'none'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'none'")

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: a handler's own values (the monitor's) win."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Content-Security-Policy", CSP)
    # The game page, static files and the SDK revalidate (ETag / Last-Modified), so a deploy
    # shows at once; everything else is live data and is never stored. (By path, not
    # content type: see CSP.)
    cached = request.path == "/" or request.path.startswith(("/static/", "/sdk/"))
    headers.setdefault("Cache-Control", "no-cache" if cached else "no-store")


def valid_host(host: str) -> bool:
    """``host[:port]`` as a client may send it in ``Host``: a DNS name or an IP address."""
    if len(host) > 255 or not _HOST.fullmatch(host):
        return False
    _, colon, port = host.rpartition(":")
    return not colon or "]" in port or 0 < int(port) <= 65535
