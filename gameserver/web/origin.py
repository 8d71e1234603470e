"""Which browser pages may use this server: same-origin, loopback, and an allow-list."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

from aiohttp import web
from yarl import URL

from gameserver.web.edge import error_response


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_allowed(request: web.Request, allowed: Collection[str]) -> bool:
    """True for non-browser clients (no Origin header), the server's own pages,
    pages served from a loopback address, and the configured origins."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.lower()
    if origin in allowed:
        return True
    try:
        url = URL(origin)
    except ValueError:
        return False
    if not url.host or url.scheme not in ("http", "https"):
        return False  # e.g. "null" from a file:// page or a sandboxed frame
    if _is_loopback(url.host):
        return True
    return url.raw_authority == request.host.lower()


def refuse_origin() -> web.Response:
    return error_response(403, "origin_not_allowed",
                          "this page's origin may not use this server")
