"""Hostile HTTP against a live server (issue 11): the edge refuses cheaply and answers in JSON."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gameserver.auth import sign
from gameserver.core.names import MAX_LENGTH, clean_name
from gameserver.web import headers

from .client import Player, matchmake, url

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "admin-token-for-tests-0123456789"


@functools.cache
def gzip_bomb() -> bytes:
    """~97 KB of gzip that inflates to 100 MB of zeros."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join([*(z.compress(chunk) for _ in range(100)), z.flush()])


async def raw_http(port: int, *pieces: bytes, gap: float = 0.003, timeout: float = 5.0
                   ) -> tuple[int, bytes]:
    """Send ``pieces`` as separate TCP segments ``gap`` apart; the status and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(gap)
            writer.write(piece)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def head(path: str, body: bytes, *extra: bytes, method: bytes = b"POST") -> bytes:
    """The request line and headers for ``body`` (sent after them, maybe in pieces)."""
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close", b"Content-Type: application/json",
             b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def post(path: str, body: bytes, *extra: bytes, method: bytes = b"POST") -> bytes:
    return head(path, body, *extra, method=method) + body


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closes the connection (EOF), reading whatever it sends."""
    start = time.monotonic()
    while await asyncio.wait_for(reader.read(65536), seconds):
        pass
    return time.monotonic() - start


async def start_cli(*args: str, env: dict[str, str] | None = None
                    ) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    """``python -m gameserver`` on a free port: the process, its URL, lines logged before."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameserver", "--port", "0", *args, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert proc.stdout is not None
    before: list[str] = []
    for _ in range(50):
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        if line.startswith("gameserver: serving on http://127.0.0.1:"):
            return proc, line.split(" on ")[1].split("/ ")[0], before
        before.append(line)
    raise AssertionError(f"the server did not start: {before}")


@pytest.fixture
async def cli() -> AsyncIterator[Callable[..., Any]]:
    procs: list[asyncio.subprocess.Process] = []

    async def start(*args: str, env: dict[str, str] | None = None
                    ) -> tuple[asyncio.subprocess.Process, str, list[str]]:
        proc, base, before = await start_cli(*args, env=env)
        procs.append(proc)
        return proc, base, before

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- 1: compressed bodies ------------------------------------------------------------------


async def test_compressed_bodies_are_refused_on_every_route_without_inflating(
        start_server: Callable[..., Any]) -> None:
    server = await start_server()
    base, bomb = url(server), gzip_bomb()
    assert len(bomb) < 110_000
    requests = 0
    cpu = time.process_time()  # server and client share this process; sending costs little
    async with aiohttp.ClientSession() as session:
        for method, path in (("POST", "/matchmake"), ("POST", "/reconnect"),
                             ("GET", "/healthz"), ("GET", "/static/js/main.js"),
                             ("POST", "/no/such/route")):
            for encoding in ("gzip", "deflate", "br"):
                async with session.request(
                        method, base + path, data=bomb,
                        headers={"Content-Encoding": encoding,
                                 "Content-Type": "application/json"}) as resp:
                    assert resp.status == 415, (path, encoding)
                    assert (await resp.json())["error"] == "unsupported_encoding"
                requests += 1
    # Inflating one bomb costs ~200 ms of the event loop's time (spread over many
    # reads, so no single stall shows it); refusing it costs well under a millisecond.
    per_request = (time.process_time() - cpu) / requests
    assert per_request < 0.02, f"{per_request * 1000:.0f} ms of CPU per bomb"


async def test_an_honest_player_keeps_its_updates_during_a_gzip_bomb_attack(
        cli: Callable[..., Any]) -> None:
    """Issue 11's acceptance test: 4 bombs a second (~380 KB/s) against the node."""
    _, base, _ = await cli()
    seconds = 4.0
    player = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.honest_player", base, str(seconds), cwd=ROOT,
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert player.stdout is not None
    try:
        assert (await asyncio.wait_for(player.stdout.readline(), 15)).strip() == b"ready"
        bomb, statuses = gzip_bomb(), []
        async with aiohttp.ClientSession() as session:

            async def attack(path: str) -> None:
                try:
                    async with session.post(
                            base + path, data=bomb, timeout=aiohttp.ClientTimeout(total=10),
                            headers={"Content-Encoding": "gzip"}) as resp:
                        statuses.append(resp.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses.append(repr(exc))

            loop, tasks = asyncio.get_running_loop(), []
            start = loop.time()
            for i in range(int(seconds * 4) + 2):  # 4 a second, on schedule, bounded
                await asyncio.sleep(max(0.0, start + i * 0.25 - loop.time()))
                tasks.append(loop.create_task(attack("/matchmake" if i % 2 else "/healthz")))
            await asyncio.gather(*tasks)
        count = int(await asyncio.wait_for(player.stdout.readline(), 15))
    finally:
        if player.returncode is None:
            player.kill()
        await player.wait()
    assert statuses == [415] * len(statuses)
    assert count / seconds >= 19, f"{count / seconds:.1f} updates/s during the attack"


# -- 4: bodies in pieces -------------------------------------------------------------------


async def test_a_body_in_two_tcp_pieces_is_read_whole(start_server: Callable[..., Any]) -> None:
    server = await start_server()
    body = json.dumps({"game": "arena", "name": "ann", "options": {"seed": 7}}).encode()
    for _ in range(5):
        status, answer = await raw_http(server.port, head("/matchmake", body) + body[:9],
                                        body[9:])
        assert status == 200, answer
        assert json.loads(answer)["name"] == "ann"
    token = json.dumps({"token": "room.reconnect-token"}).encode()
    status, answer = await raw_http(server.port, head("/reconnect", token) + token[:5],
                                    token[5:])
    assert (status, json.loads(answer)["error"]) == (404, "no_such_room")  # parsed whole


async def test_cluster_room_creation_reads_the_whole_body(
        start_server: Callable[..., Any], redis_url: str) -> None:
    from gameserver.cluster.node import CLUSTER
    server = await start_server(redis=redis_url, cluster_prefix=f"h{os.getpid()}")
    token = server.app[CLUSTER].token
    body = json.dumps({"game": "arena", "private": False, "options": {}}).encode()
    status, answer = await raw_http(
        server.port, head("/cluster/rooms", body, f"Authorization: Bearer {token}".encode())
        + body[:4], body[4:])
    assert status == 200, answer
    assert json.loads(answer)["room_id"]


async def test_bodies_are_limited_in_size_and_time(start_server: Callable[..., Any]) -> None:
    server = await start_server(http_timeout=1.0)
    chunk = b'{"game": "arena", "name": "' + b"x" * 5000 + b'"}'
    opening = (b"POST /matchmake HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)  # no Content-Length to trust
    status, answer = await raw_http(server.port, opening, chunked)
    assert (status, json.loads(answer)["error"]) == (413, "bad_request")
    started = time.monotonic()
    status, answer = await raw_http(server.port, head("/matchmake", b"x" * 100) + b'{"ga')
    assert (status, json.loads(answer)["error"]) == (408, "request_timeout")
    assert time.monotonic() - started < 3


# -- 5: slow and idle connections ----------------------------------------------------------


async def test_slow_headers_and_idle_connections_are_closed(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(http_timeout=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(b"GET /rooms HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    for i in range(25):  # slowloris: a header line every 0.2 s, for at most 5 s
        await asyncio.sleep(0.2)
        if reader.at_eof():
            break
        try:
            writer.write(b"X-Slow-%d: still here\r\n" % i)
            await writer.drain()
        except ConnectionError:
            break
    await closed_within(reader, 5)
    held = time.monotonic() - started
    writer.close()
    assert held < 2.5, f"a slowloris connection was held {held:.1f} s"
    # Silent: connects and says nothing.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await closed_within(reader, 5) < 2.5
    writer.close()
    # Idle keep-alive after one request.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    assert await closed_within(reader, 5) < 2.5
    writer.close()


async def test_game_sockets_outlive_the_http_timeout(start_server: Callable[..., Any]) -> None:
    server = await start_server(http_timeout=0.5)
    async with aiohttp.ClientSession() as session:
        player = await Player.join(session, url(server), name="ann")
        assert await player.updates_for(2.0) >= 30  # four timeouts later, still served
        assert not player.ws.closed


async def test_connections_per_address_are_capped_from_the_moment_they_open(
        cli: Callable[..., Any]) -> None:
    _, base, _ = await cli("--ip-limit-exempt", "none", "--max-connections-per-ip", "3")
    port = int(base.rsplit(":", 1)[1])
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    try:
        await asyncio.sleep(0.1)
        for request in (b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
            status, answer = await raw_http(port, request)  # the fourth: refused at once
            assert (status, json.loads(answer)["error"]) == (429, "too_many_connections")
        held.pop()[1].close()
        for _ in range(50):  # the server sees the close within moments
            await asyncio.sleep(0.05)
            try:
                status, _ = await raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                                 b"Connection: close\r\n\r\n")
            except (ConnectionError, IndexError):
                continue
            if status == 200:
                break
        assert status == 200
    finally:
        for _, writer in held:
            writer.close()


# -- 9: no 500s ----------------------------------------------------------------------------


async def test_hostile_input_gets_4xx_json_and_at_most_one_log_line(
        start_server: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    server = await start_server(auth_secret="s3cret-s3cret-s3cret", admin_token=TOKEN)
    good = sign({"sub": "1", "name": "ann", "exp": time.time() + 60}, "s3cret-s3cret-s3cret")
    deep = b"[" * 2000 + b"]" * 2000
    admin, signed = b"Authorization: Bearer " + TOKEN.encode(), f'"auth": "{good}"'
    _, answer = await raw_http(server.port, post("/matchmake", f'{{"game": "arena", {signed}}}'
                                                  .encode()))
    room = json.loads(answer)["room_id"]
    cases: list[tuple[bytes, int, str]] = [
        (post("/matchmake", deep), 400, "bad_request"),
        (post("/matchmake", b'{"game": "arena", "options": ' + b"[" * 900 + b"]" * 900 + b"}"),
         400, "bad_request"),
        (post("/reconnect", deep), 400, "bad_request"),
        (post(f"/admin/rooms/{room}/kick", deep, admin), 400, "bad_request"),
        (post("/matchmake", b'{"game": "arena"}', b"Authorization: Bearer \xff\xfe.\xc3"),
         401, "auth_invalid"),
        (post("/admin/rooms", b"", b"Authorization: Bearer \xff\xfe", method=b"GET"), 401,
         "unauthorized"),
        (post("/matchmake", b'{"game": "arena", "auth": "\\ud800.x"}'), 400, "bad_request"),
        (post("/matchmake", f'{{"game": "arena", {signed}, "options": {{"x": "\\ud800"}}}}'
              .encode()), 400, "bad_request"),
        (post("/matchmake", f'{{"game": "arena", {signed}, "name": "a\\udfff"}}'.encode()),
         400, "bad_request"),
        (post("/matchmake", f'{{"game": "arena", {signed}, "mode": "create", '
              f'"options": {{"seed": [1, 2]}}}}'.encode()), 400, "invalid_option"),
        (post("/matchmake", f'{{"game": "arena", {signed}, "mode": "create", '
              f'"options": {{"seed": {{"a": 1}}}}}}'.encode()), 400, "invalid_option"),
    ]
    caplog.set_level(logging.INFO)
    for request, status, code in cases:
        got, answer = await raw_http(server.port, request)
        assert (got, json.loads(answer)["error"]) == (status, code), request[:80]
    # Malformed HTTP: aiohttp's parser answers 400 (plain text) before any handler runs.
    for request in (b"GET /static/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /ws?token=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"POST /matchmake HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        got, _ = await raw_http(server.port, request)
        assert got == 400
    records = [r for r in caplog.records if r.name != "aiohttp.access"]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    assert not [r for r in records if r.levelno >= logging.ERROR]
    assert len(records) <= len(cases) + 4  # at most one line for each request


# -- 12: headers ---------------------------------------------------------------------------


async def test_security_and_cache_headers(start_server: Callable[..., Any]) -> None:
    server = await start_server(admin_token=TOKEN)
    base = url(server)
    async with aiohttp.ClientSession() as session:
        for path, cache in (("/", "no-cache"), ("/static/js/main.js", "no-cache"),
                            ("/static/css/style.css", "no-cache"), ("/rooms", "no-store"),
                            ("/monitor", "no-store"), ("/metrics", "no-store")):
            async with session.get(base + path) as resp:
                assert resp.status == 200, path
                assert resp.headers["X-Content-Type-Options"] == "nosniff", path
                assert resp.headers["X-Frame-Options"] == "DENY", path
                assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
                assert resp.headers["Cache-Control"] == cache, path
        async with session.get(base + "/") as resp:
            csp = resp.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            etag = resp.headers["ETag"]
        # A revalidation's 304 replaces the cached page's headers: the same policy.
        async with session.get(base + "/", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
            assert resp.headers["Content-Security-Policy"] == csp
            assert resp.headers["Cache-Control"] == "no-cache"
        for path in ("/static/monitor.html", "/static/./monitor.html",
                     "/static/js/../monitor.html"):
            async with session.get(base + path) as resp:
                assert resp.status == 404, path
    # The pages load no inline script or style: the CSP above needs none.
    for page in (ROOT / "static" / "index.html", ROOT / "gameserver" / "web" / "monitor.html"):
        text = page.read_text()
        assert "<style" not in text and " style=" not in text and "<script>" not in text


async def test_ws_url_never_echoes_a_hostile_host(start_server: Callable[..., Any]) -> None:
    server = await start_server()
    body = b'{"game": "arena"}'
    for host in (b"evil.example/phish?", b"a b", b"x:99999", b"\xff", b"[::1", b"@x"):
        status, answer = await raw_http(server.port, post("/matchmake", body).replace(
            b"Host: 127.0.0.1", b"Host: " + host))
        assert (status, json.loads(answer)["error"]) == (400, "bad_host"), host
    for host in ("game.example:8443", "127.0.0.1", "[::1]:80"):
        status, answer = await raw_http(server.port, post("/matchmake", body).replace(
            b"Host: 127.0.0.1", b"Host: " + host.encode()))
        assert json.loads(answer)["ws_url"].startswith(f"ws://{host}/ws?token="), host
    public = await start_server(public_url="https://play.example")
    status, answer = await raw_http(public.port, post("/matchmake", body).replace(
        b"Host: 127.0.0.1", b"Host: evil.example/x"))
    assert json.loads(answer)["ws_url"].startswith("wss://play.example/ws?token=")
    assert headers.valid_host("a-b.example.com:1") and not headers.valid_host("-a.com")


# -- 13: the admin token -------------------------------------------------------------------


async def test_wrong_admin_tokens_are_throttled_per_address(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(admin_token=TOKEN)
    rooms = url(server) + "/admin/rooms"
    right = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        for i in range(20):
            async with session.get(rooms, headers={"Authorization": f"Bearer guess-{i}"}
                                   ) as resp:
                assert resp.status == 401
        async with session.get(rooms, headers=right) as resp:  # the right one, too late
            assert resp.status == 429
            assert (await resp.json())["error"] == "too_many_attempts"
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Another address is not affected (all of 127.0.0.0/8 is loopback on Linux).
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other, \
            other.get(rooms, headers=right) as resp:
        assert resp.status == 200


async def test_an_admin_token_given_as_a_flag_is_warned_about(cli: Callable[..., Any]) -> None:
    for flag in (["--admin-token", TOKEN], [f"--admin-token={TOKEN}"], ["--admin-tok", TOKEN]):
        _, _, logged = await cli(*flag)
        warning = [line for line in logged if "--admin-token" in line]
        assert warning and "GAMESERVER_ADMIN_TOKEN" in warning[0] and "WARNING" in warning[0]
        assert TOKEN not in "".join(logged)
    _, _, logged = await cli(env={"GAMESERVER_ADMIN_TOKEN": TOKEN})
    assert not [line for line in logged if "WARNING" in line]


# -- 14: display names ---------------------------------------------------------------------


def test_names_are_cleaned_to_something_visible() -> None:
    assert clean_name("  ann  ") == "ann"
    assert clean_name("a\u200db\u200c\ufeffc") == "abc"  # zero-width characters
    assert clean_name("\u202eevil\u202c") == "evil"  # a direction override
    assert clean_name("e\u0301") == "\u00e9"  # NFC
    assert clean_name("Z" + "\u0300" * 50 + "o") == "Z\u0300\u0300o"  # "Zalgo"
    assert clean_name("a  \t b") == "a b"
    assert clean_name("x" * 100) == "x" * MAX_LENGTH
    assert clean_name("\u4e00" * 20) == "\u4e00" * 12  # wide: two columns each
    assert clean_name("\ud800ann") == "ann"
    for invisible in ("", "   ", "\u200b\u200b", "\u0301\u0301", "\u3164", "\u2800" * 3,
                      "\u202e", "\ufdfd" * 3, "\U000e0041"):
        assert clean_name(invisible) == "", repr(invisible)


async def test_matchmaking_cleans_names_and_refuses_invisible_ones(
        start_server: Callable[..., Any]) -> None:
    server = await start_server()
    base = url(server)
    async with aiohttp.ClientSession() as session:
        assert (await matchmake(session, base, name="\u202eann\u200b"))["name"] == "ann"
        assert (await matchmake(session, base))["name"] == "player"  # no name: the default
        for invisible in ("\u200b\u200d", "\u0301" * 30, "\u3164"):
            async with session.post(base + "/matchmake",
                                    json={"game": "arena", "name": invisible}) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"] == "bad_request"
    signed = await start_server(auth_secret="s3cret-s3cret-s3cret")
    token = sign({"sub": "7", "name": "bob\u200d\u202e", "exp": time.time() + 60},
                 "s3cret-s3cret-s3cret")
    async with aiohttp.ClientSession() as session:
        reservation = await matchmake(session, url(signed), auth=token)
        assert reservation["name"] == "bob"
