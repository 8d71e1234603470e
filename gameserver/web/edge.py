"""What every HTTP request passes before and around a handler.

- Compressed request bodies are refused (415): aiohttp would inflate them in
  the protocol's ``data_received``, before any handler runs, so the parser is
  built with ``auto_decompress=False`` (:func:`handler_args`) and the
  middleware refuses any ``Content-Encoding`` but ``identity``.
- Request bodies are read whole, up to a limit and a deadline (:func:`read_body`),
  and parsed with a nesting limit (:func:`parse_json`).
- :class:`HttpError` from anywhere in a handler becomes a JSON error; anything
  else unexpected becomes a JSON 500 and one log line with its traceback.
- Every JSON error of the HTTP edge, raised or returned, is built by
  :func:`error_response` (:func:`error_body` for a raw socket): one shape,
  ``{"error": code, "message": message}``.
- Malformed HTTP (answered 400 by aiohttp's parser) is logged as one line
  without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from gameserver.web.keys import SETTINGS

log = logging.getLogger("gameserver.http")

MAX_BODY = 4096  # bytes of a JSON request body
MAX_DEPTH = 16  # nesting of JSON arrays and objects in a request body


def error_body(code: str, message: str, retry_after: int | None = None) -> bytes:
    """The JSON body of every error answer (also written raw, before any HTTP parsing)."""
    body: dict[str, Any] = {"error": code, "message": message}
    if retry_after is not None:
        body["retry_after"] = retry_after
    return json.dumps(body).encode()


def error_response(status: int, code: str, message: str, *,
                   headers: Mapping[str, str] | None = None,
                   retry_after: float | None = None) -> web.Response:
    """An error answer. ``retry_after`` (seconds, rounded up to at least 1) goes both in
    the body, for scripts, and in a ``Retry-After`` header, for HTTP clients."""
    all_headers = dict(headers or {})
    seconds = None
    if retry_after is not None:
        seconds = max(1, math.ceil(retry_after))
        all_headers["Retry-After"] = str(seconds)
    return web.Response(body=error_body(code, message, seconds), status=status,
                        headers=all_headers, content_type="application/json", charset="utf-8")


class HttpError(Exception):
    """An HTTP error answer: ``{"error": code, "message": message}`` with ``status``."""

    def __init__(self, code: str, message: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.headers = headers or {}

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, headers=self.headers)


def handler_args(settings: Any) -> dict[str, Any]:
    """Keyword arguments of aiohttp's per-connection protocol (``RequestHandler``)."""
    return {
        # Never inflate a request body: the cost would be paid before any check.
        "auto_decompress": False,
        # aiohttp arms this timer when the connection opens and again after each
        # response, and data does not reset it: a request's headers must be complete
        # within it (slowloris), and an idle keep-alive connection closes after it.
        "keepalive_timeout": settings.http_timeout,
        # A body no handler read is drained for at most this long, then the
        # connection closes.
        "lingering_time": settings.http_timeout,
        "logger": _server_log,
    }


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The whole request body, however many TCP segments it came in.

    413 beyond ``limit`` bytes, 408 when it does not arrive within ``--http-timeout``.
    """
    too_big = HttpError("bad_request", f"the body is limited to {limit} bytes", 413)
    if request.content_length is not None and request.content_length > limit:
        raise too_big
    body = bytearray()
    try:
        async with asyncio.timeout(request.app[SETTINGS].http_timeout):
            while chunk := await request.content.read(limit + 1 - len(body)):
                body += chunk
                if len(body) > limit:
                    raise too_big
    except TimeoutError:
        raise HttpError("request_timeout", "the body did not arrive in time", 408) from None
    return bytes(body)


def parse_json(raw: bytes, default: Any = None) -> Any:
    """JSON from a request body; ``default`` for an empty body; 400 for anything invalid.

    Nesting is limited before the recursive decoder sees it, so deep input is a 400,
    not a RecursionError.
    """
    if not raw:
        return default
    depth = 0
    in_string = escaped = False
    for byte in raw:  # a 4 KiB body: cheap, and bytes inside strings are skipped
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise HttpError("bad_request", f"JSON nested deeper than {MAX_DEPTH} levels")
        elif byte in (0x5D, 0x7D):
            depth -= 1
    try:
        value = json.loads(raw)
        # Lone surrogates ("\ud800") decode but cannot be encoded again (msgpack,
        # logs, HMAC): refuse them here, once.
        json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, UnicodeError):
        raise HttpError("bad_request", "the body must be valid JSON (UTF-8)") from None
    return value


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if encoding != "identity":
        return HttpError("unsupported_encoding",
                         "compressed request bodies are not accepted", 415).response()
    try:
        return await handler(request)
    except HttpError as exc:
        return exc.response()
    except web.HTTPException:
        raise  # aiohttp's own answers: 404, 405, ...
    except ConnectionError:  # the client went away: nothing to answer
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.rel_url.path)
        return HttpError("internal_error", "internal server error", 500).response()


class _MalformedHttp(logging.Filter):
    """aiohttp logs a traceback for every malformed request it answers 400: keep one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "malformed request from %s: %s"
            record.args = (*(record.args or ("?",))[:1], str(exc.message)[:200])  # type: ignore[misc]
            record.exc_info = None
            if record.levelno > logging.INFO:  # aiohttp logs some of them at debug already
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_server_log = logging.getLogger("gameserver.http.server")
_server_log.addFilter(_MalformedHttp())
