"""The JavaScript SDK (static/sdk/): served at /sdk/, typed, and playing on a real server.

Its unit tests (replica, callbacks, prediction, reconnection against a fake socket)
are tests/js/sdk.test.mjs, run with the other Node tests by tests/test_browser.py.
Here: the files the server serves, and two Node bots that load the SDK exactly as
served, join one room, move, and see each other. Without Node these tests skip, or
fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gameserver.web.app import BUILTIN_GAMES, SDK_FILES, load_game

from .browsing import missing
from .readme import block, section, write_coins

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "static" / "sdk"
StartServer = Callable[..., Awaitable[Any]]


def node_command() -> list[str]:
    """Node, with the flag that gives Node 20 and 21 a global WebSocket (22+ has it)."""
    path = shutil.which("node")
    if path is None:
        missing("node is not installed")
    assert path is not None
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    assert major >= 20, f"the SDK needs Node 20+, found {version.stdout.strip()}"
    return [path, "--experimental-websocket"] if major < 22 else [path]


async def test_the_sdk_is_served_with_its_types(start_server: StartServer) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        for name, kind in (("gameserver.js", "application/javascript"),
                           ("gameserver.d.ts", "application/typescript"),
                           ("msgpack.min.js", "application/javascript")):
            async with http.get(f"{base}/sdk/{name}") as resp:
                assert resp.status == 200, name
                assert resp.content_type == kind, name
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["Cache-Control"] == "no-cache"  # revalidated: a deploy shows
                assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
                assert "Access-Control-Allow-Origin" not in resp.headers  # same origin only
                body = await resp.read()
            path, _ = SDK_FILES[name]
            assert body == (ROOT / "static" / path).read_bytes(), name
        # Only the SDK's own files, by name: nothing else of static/ through /sdk/.
        for name in ("package.json", "index.html", "..%2Fjs%2Fmain.js", "..%2Findex.html",
                     "gameserver.JS", ""):
            async with http.get(f"{base}/sdk/{name}") as resp:
                assert resp.status == 404, name


def test_the_declarations_cover_every_export() -> None:
    js = (SDK / "gameserver.js").read_text()
    dts = (SDK / "gameserver.d.ts").read_text()
    exported = set(re.findall(r"^export (?:async )?(?:class|function|const) (\w+)", js, re.M))
    declared = set(re.findall(r"^export declare (?:class|function|const) (\w+)", dts, re.M))
    assert {"Client", "Room", "Predictor", "Interpolator", "Replica"} <= exported
    assert exported == declared
    # The public methods of Client and Room are declared too.
    for cls in ("Client", "Room", "Replay"):
        body = re.search(rf"^export class {cls} \{{\n(.*?)^\}}", js, re.M | re.S)
        assert body, cls
        methods = set(re.findall(r"^  (?:async )?([a-zA-Z]\w*)\(", body.group(1), re.M)) - {
            "constructor"}
        decl = re.search(rf"^export declare class {cls}\b.*?\{{\n(.*?)^\}}", dts, re.M | re.S)
        assert decl, cls
        assert methods <= set(re.findall(r"^  (\w+)[<(]", decl.group(1), re.M)), cls


async def test_node_bots_join_move_and_see_each_other(start_server: StartServer,
                                                      tmp_path: Path) -> None:
    """The e2e test: the SDK as served (saved as a module beside the msgpack it loads)."""
    command = node_command()
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        for name, saved in (("gameserver.js", "gameserver.mjs"),
                            ("msgpack.min.js", "msgpack.min.js")):
            async with http.get(f"{base}/sdk/{name}") as resp:
                assert resp.status == 200
                (tmp_path / saved).write_bytes(await resp.read())
    proc = await asyncio.create_subprocess_exec(
        *command, str(ROOT / "tests" / "js" / "sdk-play.mjs"), base,
        str(tmp_path / "gameserver.mjs"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-4000:]
    seen = json.loads(out.decode().strip().splitlines()[-1])
    print(seen)
    moved = seen["direction"] // 100 * seen["step"] * seen["inputs"]
    # Ann held the key ~0.5 s at 20 Hz: about ten inputs, each one step, all applied.
    assert 6 <= seen["inputs"] <= 14
    assert seen["annServerX"] == seen["startX"] + moved  # away from the walls: no clamping
    assert seen["predictedX"] == seen["annServerX"]
    assert seen["corrections"] == 0, "the prediction never disagreed with the server"
    # Bob saw every step of hers, in order, and draws her where she stopped.
    assert seen["bobSawXs"][-1] == seen["annServerX"]
    assert seen["bobSawXs"] == sorted(seen["bobSawXs"], reverse=seen["direction"] < 0)
    assert seen["bobDrawnX"] == seen["annServerX"]
    assert "bob" in seen["bobJoined"]  # its own joined event is in its first snapshot
    assert seen["annAdded"] == ["ann", "bob"]
    assert seen["annRemoved"] == ["bob"]
    assert seen["chat"] == ["bob: hi ann"]
    assert seen["rttMs"] is not None and seen["rttMs"] < 1000
    assert seen["updatesPerSec"] > 5
    assert seen["statusAfter"] == ["ended", "ended"]


async def test_node_spectators_watch_a_room(start_server: StartServer, tmp_path: Path) -> None:
    """Spectators with the SDK as served: by room id and picked by the server; they see
    the game, cannot play (the SDK throws; the server refuses what gets through), come
    back after a drop, and count in the room listing without taking a seat."""
    command = node_command()
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        for name, saved in (("gameserver.js", "gameserver.mjs"),
                            ("msgpack.min.js", "msgpack.min.js")):
            async with http.get(f"{base}/sdk/{name}") as resp:
                (tmp_path / saved).write_bytes(await resp.read())
    proc = await asyncio.create_subprocess_exec(
        *command, str(ROOT / "tests" / "js" / "sdk-watch.mjs"), base,
        str(tmp_path / "gameserver.mjs"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-4000:]
    seen = json.loads(out.decode().strip().splitlines()[-1])
    print(seen)
    vic = seen["vic"]
    assert vic["spectator"] is True and vic["playerId"] == 0 and vic["id"] == seen["annId"]
    assert vic["name"] is None and vic["token"] is None
    assert seen["wes"] == {"spectator": True, "id": seen["annId"]}
    assert vic["avatars"] == 1, "spectators have no avatar"
    listed = seen["listedWatching"]
    assert listed["players"] == 1 and listed["spectators"] == 2
    assert len(vic["thrown"]) == 2 and all("spectator" in t for t in vic["thrown"])
    assert vic["errors"] == ["spectator", "spectator"]
    assert vic["chat"] == ["ann: hello vic"]
    assert seen["annX"] > seen["startX"] and vic["xs"][-1] == seen["annX"]
    assert vic["reconnected"] == [{"resumed": False}]
    assert vic["afterReconnect"] == {"id": seen["annId"], "playerId": 0, "spectator": True,
                                     "status": "playing"}
    assert "reconnecting" in vic["statuses"]
    assert seen["listedAfterLeave"]["spectators"] == 1
    assert seen["wesStatus"] == "ended"
    assert seen["noSuchRoom"] == "no_such_room"
    assert seen["statusAfter"] == ["ended", "ended"]


async def test_the_readme_example_runs_in_a_page(start_server: StartServer, browser: Any,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's SDK example, against the README's coins game, in Chromium: imported
    from /sdk/ by a page that did not load msgpack (the SDK adds it), under the CSP."""
    write_coins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        server = await start_server(games=(*BUILTIN_GAMES, load_game("coins:Coins")))
    finally:
        sys.modules.pop("coins", None)
    base = str(server.make_url("")).rstrip("/")
    code = block(section("JavaScript SDK"), "js")
    imports = 'import { Client } from "/sdk/gameserver.js";\n'
    assert code.startswith(imports)
    # As a function (the CSP forbids eval), its console captured, leaving after a while.
    script = ("async () => { const lines = [];"
              " const console = { log: (...a) => lines.push(a.join(' ')),"
              " warn: (...a) => lines.push('warn ' + a.join(' ')) };"
              " const before = typeof globalThis.MessagePack;"
              ' const { Client } = await import("/sdk/gameserver.js");\n'
              + code[len(imports):]
              + "\nawait new Promise((resolve) => setTimeout(resolve, 1000)); room.leave();"
              " return { before, lines, x: room.state.ofType('Coin')[0].values.x,"
              " predicted: room.predicted().x, seq: room.seq, ack: room.state.ack }; }")
    context = await browser.new_context()
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(base + "/sdk/")  # a 404 of this origin: a page with nothing loaded
        result = await page.evaluate(script)
    finally:
        await context.close()
    assert not errors, errors
    assert result["before"] == "undefined", "the page had not loaded msgpack itself"
    assert result["lines"][:3] == ["a coin at 50", "ann joined", "the coin is at 51 owned by ann"]
    assert result["lines"][-1] == "You left the room."
    assert (result["x"], result["predicted"], result["seq"], result["ack"]) == (51, 51, 1, 1)
