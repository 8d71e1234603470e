"""The browser client (static/), tested in a real Chromium and with Node.

- The pure modules: ``node --test tests/js/`` (the JavaScript SDK's prediction
  and reconciliation with the arena's rule against a simulated server with a
  150 ms round trip, interpolation, the replica decoder, callbacks and
  reconnection against a fake socket), run from here so ``pytest`` runs them.
- The arena's ``move()`` and the SDK's replica decoder against the server's
  Python originals, on the same inputs.
- The page is built on the SDK: it imports /sdk/gameserver.js and its own code.
- The real thing: Playwright driving Debian's Chromium (``/usr/bin/chromium``;
  Playwright's own browser download is not used) against a real server, some of
  it through a TCP proxy that adds latency or cuts every connection.

Screenshots go to ``$GAMESERVER_ARTIFACTS`` if set, else to a temporary folder;
their paths are printed. Without chromium, node or the ``playwright`` package
these tests are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from gameserver.core.replica import Replica
from gameserver.games.arena import RULES, move
from gameserver.web.keys import MANAGER

from .browsing import RECORD_SENT, Console, missing, sent_kinds, shot, state, until
from .netproxy import LatencyProxy

ROOT = Path(__file__).resolve().parent.parent
JS_TESTS = ROOT / "tests" / "js"
VIEWPORT = {"width": 1280, "height": 720}
StartServer = Callable[..., Awaitable[Any]]



def node() -> str:
    path = shutil.which("node")
    if path is None:
        missing("node is not installed")
    assert path is not None
    return path


def run_node(script: Path, data: Any) -> Any:
    proc = subprocess.run([node(), str(script)], input=json.dumps(data), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- the pure modules ----------------------------------------------------------------


def test_js_unit_tests() -> None:
    """tests/js/*.test.mjs under Node's test runner (netcode, replica, rules)."""
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.mjs"))  # explicit: any Node >= 18
    assert files
    proc = subprocess.run([node(), "--test", *files], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "# fail 0" in proc.stdout


def test_move_matches_python() -> None:
    """static/js/arena-rules.js move() == gameserver/games/arena.py move(), case by case."""
    rng = random.Random(3)
    r, w, h = RULES["player_radius"], RULES["width"], RULES["height"]
    cases: list[list[int]] = [[100, 100, dx, dy, 10] for dx in (-100, -50, -25, 0, 25, 50, 100)
                              for dy in (-100, -37, 0, 37, 100)]
    cases += [[r, r, -100, -100, 10], [w - r, h - r, 100, 100, 10], [w - r - 3, 450, 100, 0, 10]]
    for _ in range(4000):
        cases.append([rng.randint(r, w - r), rng.randint(r, h - r), rng.randint(-100, 100),
                      rng.randint(-100, 100), rng.randint(1, 17)])
    got = run_node(JS_TESTS / "tool-move.mjs", {"rules": RULES, "cases": cases})
    expected = [list(move(x, y, dx, dy, step, RULES)) for x, y, dx, dy, step in cases]
    wrong = [(c, g, e) for c, g, e in zip(cases, got, expected, strict=True) if g != e]
    assert not wrong, f"{len(wrong)} cases differ, e.g. {wrong[:5]}"


async def test_replica_matches_python(start_server: StartServer) -> None:
    """The SDK's Replica rebuilds the world of gameserver/core/replica.py from a real session."""
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    welcome, updates = await record_session(base, seconds=1.6)
    schema = welcome[6]
    replica = Replica(schema)
    expected = []
    for message in updates:
        replica.apply(message)
        view = {str(k): [t, v] for k, (t, v) in replica.view().items()}
        expected.append({"ack": replica.ack, "tick": replica.tick, "view": view,
                         "events": replica.events})
    got = run_node(JS_TESTS / "tool-replica.mjs", {"schema": schema, "updates": updates})
    assert len(got) == len(expected) > 20
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"update {i} differs"
    kinds = {m[0] for m in updates}
    assert kinds == {11, 12}, "the session had a snapshot and deltas"
    assert any(m[0] == 12 and m[6] for m in updates), "something was removed on the way"


# Per-player views (protocol 2): updates with parts, built by hand (the same as
# tests/js/views.test.mjs): a snapshot with a nearby part and a private part; an avatar
# moving between two cells the observer sees (removed and created again); one leaving
# the area while another enters; a private field set, then cleared by a null; a part
# removing what an earlier part creates; a resync snapshot.
VIEW_SCHEMA = [["Avatar", [["x", "i"], ["y", "i"], ["pid", "v"], ["name", "v"]]],
               ["Card", [["owner", "v"], ["rank", "v"], ["suit", "v"]]]]
VIEW_UPDATES: list[list[Any]] = [
    [11, 0, 10, [1, 0, 100, 100, 7, "me"], [],
     [[[2, 0, 900, 100, 8, "near", 3, 1, 7, None, None], [], []], [[], [3, 0b110, 12, "h"], []]]],
    [12, 1, 11, 10, [], [1, 0b1, 10], [], [["joined", [9]]],
     [[[], [], [2]], [[2, 0, 830, 100, 8, "near", 4, 0, 500, 500, 9, "new"], [4, 0b11, 1, -1], []],
      [[], [1, 0b1, 5], []]]],
    [12, 2, 12, 11, [], [3, 0b1, 8], [], [], [[[], [3, 0b110, None, None], []]]],
    [12, 2, 13, 12, [5, 1, 7, None, None], [], [4], [], [[[2, 0, 1610, 100, 8, "near"], [], []],
                                                        [[], [5, 0b10, 3], [2]]]],
    [12, 3, 14, 13, [], [], [], []],
    [11, 3, 20, [1, 0, 115, 100, 7, "me"], [],
     [[[2, 0, 1610, 104, 8, "near", 5, 1, 7, None, None], [], []], [[], [5, 0b110, 3, "s"], []]]],
    [12, 3, 21, 20, [], [2, 0b10, -4], [], [],
     [[[], [], [2]], [[2, 0, 1610, 100, 8, "near"], [], []]]],
]


def python_views(schema: list[Any], updates: list[list[Any]]) -> list[dict[str, Any]]:
    """What gameserver/core/replica.py makes of `updates`, as tool-replica.mjs prints it."""
    replica = Replica(schema)
    views = []
    for message in updates:
        replica.apply(message)
        view = {str(k): [t, v] for k, (t, v) in replica.view().items()}
        views.append({"ack": replica.ack, "tick": replica.tick, "view": view,
                      "events": replica.events})
    return views


def test_replica_matches_python_on_view_parts() -> None:
    """The two replicas apply parts in the same order, to the same world."""
    got = run_node(JS_TESTS / "tool-replica.mjs", {"schema": VIEW_SCHEMA, "updates": VIEW_UPDATES})
    expected = python_views(VIEW_SCHEMA, VIEW_UPDATES)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"update {i} differs"
    assert expected[-1]["view"]["5"] == ["Card", {"owner": 7, "rank": 3, "suit": "s"}]


async def test_replica_matches_python_in_the_large_world(start_server: StartServer) -> None:
    """A real large-world session (arena, options world "large"): an observer who moves sees
    the world through view parts; both replicas rebuild the same world from them."""
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    welcome, updates = await record_session(base, seconds=2.4, options={"world": "large"},
                                            observer_moves=True)
    assert welcome[7]["world"] == "large"
    schema = welcome[6]
    expected = python_views(schema, updates)
    got = run_node(JS_TESTS / "tool-replica.mjs",
                   {"schema": schema, "updates": updates, "uids": True})
    assert len(got) == len(expected) > 30
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert {k: v for k, v in g.items() if k not in ("uids", "added", "removed")} == e, \
            f"update {i} differs"
    assert updates[0][0] == 11 and len(updates[0]) == 6, "the first snapshot has parts"
    assert any(m[0] == 12 and len(m) == 9 for m in updates), "deltas with parts"
    # Its own avatar is always in view: the same entity (uid) all along, even in the
    # updates that move it from one interest cell to another (removed and created again).
    own = next(eid for eid, (t, v) in expected[0]["view"].items()
               if t == "Avatar" and v["pid"] == welcome[4])
    assert {g["uids"][own] for g in got} == {got[0]["uids"][own]}
    assert not any(int(own) in g["added"] or int(own) in g["removed"] for g in got[1:])
    crossed = [m[2] for m in updates if m[0] == 12 and len(m) == 9
               and int(own) in [i for part in m[8] for i in part[2]]
               and int(own) in [i for part in m[8] for i in record_ids(part[0], schema)]]
    print(f"the observer's avatar changed interest cell at ticks {crossed}")


def record_ids(flat: list[Any], schema: list[Any]) -> list[int]:
    """The ids of a flat list of entity records (id, type_index, one value per field)."""
    ids, i = [], 0
    while i < len(flat):
        ids.append(flat[i])
        i += 2 + len(schema[flat[i + 1]][1])
    return ids


async def record_session(base: str, seconds: float, options: dict[str, Any] | None = None,
                         observer_moves: bool = False) -> tuple[list[Any], list[list[Any]]]:
    """One observer's WELCOME and updates while others move, collect orbs, chat and leave.
    `options`: the room's; `observer_moves`: the observer moves too (in the large world its
    interest area moves with it: entities enter and leave its view)."""
    async with aiohttp.ClientSession() as http:

        async def join(**body: Any) -> tuple[aiohttp.ClientWebSocketResponse, list[Any]]:
            if options is not None and body["mode"] == "create":
                body["options"] = options
            async with http.post(f"{base}/matchmake", json={"game": "arena", **body}) as resp:
                assert resp.status == 200, await resp.text()
                reservation = await resp.json()
            ws = await http.ws_connect(reservation["ws_url"])
            msg = await ws.receive(timeout=5)
            return ws, msgpack.unpackb(msg.data)

        observer, welcome = await join(mode="create", name="observer")
        room = welcome[2]
        updates: list[list[Any]] = []

        async def observe() -> None:
            while True:
                msg = await observer.receive()
                if msg.type is not aiohttp.WSMsgType.BINARY:
                    return
                data = msgpack.unpackb(msg.data)
                if data[0] in (11, 12):
                    updates.append(data)

        async def player(name: str, seconds: float, seed: int) -> None:
            ws, _ = await join(mode="join", room_id=room, name=name)
            rng = random.Random(seed)
            dx, dy = 100, 0
            for seq in range(1, int(seconds * 20) + 1):
                if seq % 8 == 0:
                    dx, dy = rng.choice((-100, 0, 100)), rng.choice((-100, 0, 100))
                await ws.send_bytes(msgpack.packb([1, seq, [dx, dy]]))
                if seq == 5:
                    await ws.send_bytes(msgpack.packb([2, "chat", f"hello from {name}"]))
                await asyncio.sleep(0.05)
            await ws.close()

        async def walk() -> None:
            """The observer heads for the nearest cell edge of the large world's grid
            (800 units) along x, so that it crosses it: its area moves."""
            if not observer_moves:
                return
            while not updates:
                await asyncio.sleep(0.01)
            first = Replica(welcome[6])
            first.apply(updates[0])
            at = [(v["x"], v["y"]) for t, v in first.view().values()
                  if t == "Avatar" and v["pid"] == welcome[4]]
            assert at, "the observer's own avatar is in its first snapshot"
            # Along the axis with the nearest inner edge (at most 400 units away, but in
            # the corner cells): 2 s of walking crosses it.
            axis = min((0, 1), key=lambda a: min(abs(e - at[0][a]) for e in range(800, 8000, 800)))
            edge = min(range(800, 8000, 800), key=lambda e: abs(e - at[0][axis]))
            direction = [0, 0]
            direction[axis] = 100 if edge > at[0][axis] else -100
            for seq in range(1, int(seconds * 20) + 1):
                await observer.send_bytes(msgpack.packb([1, seq, direction]))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(observe())
        await asyncio.gather(player("mover", seconds * 0.6, 1), player("other", seconds * 0.3, 2),
                             walk())
        await player("late", seconds * 0.3, 3)
        await asyncio.sleep(0.2)
        await observer.close()
        await asyncio.wait_for(watcher, 5)
        return welcome, updates


# -- the browser ------------------------------------------------------------------------


async def new_page(context: Any, console: Console, url: str, label: str,
                   name: str | None = None) -> Any:
    page = await context.new_page()
    console.watch(page, label)
    await page.goto(url)
    await until(page, "s.screen === 'lobby' || s.screen === 'game'")
    if name is not None:
        await page.fill("#name", name)
    return page


async def settle(page: Any) -> dict[str, Any]:
    """Wait until every input is acknowledged and the prediction rests on the server's position."""
    await until(page, "s.seq === s.ack && s.own && s.ownServer && s.own.x === s.ownServer.x "
                      "&& s.own.y === s.ownServer.y && s.ownRendered.x === s.own.x "
                      "&& s.ownRendered.y === s.own.y")
    return await state(page)


def away_from_wall(x: int) -> tuple[str, int]:
    """The arrow key that leads towards the middle, and its sign on x."""
    return ("ArrowRight", 1) if x < RULES["width"] // 2 else ("ArrowLeft", -1)


async def test_lobby_two_players_play_together(start_server: StartServer, browser: Any,
                                               artifacts: Path) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    context = await browser.new_context(viewport=VIEWPORT)

    # A creates a public room from the lobby; B picks it from the room list.
    a = await new_page(context, console, base + "/", "A", "Alice")
    await a.click("#create-room")
    await until(a, "s.screen === 'game' && s.own !== null")
    room = (await state(a))["roomId"]
    b = await new_page(context, console, base + "/", "B", "Bob")
    await b.wait_for_selector(f"#room-list button[data-room='{room}']")
    await b.click(f"#room-list button[data-room='{room}']")
    await until(b, "s.screen === 'game' && s.own !== null && s.others.length === 1")
    assert (await state(b))["roomId"] == room
    assert await b.evaluate("location.search") == f"?room={room}"

    # The HUD counts updates (20 Hz server) and measures the round trip.
    await until(a, "s.hud.updatesPerSec >= 10 && s.hud.rttMs !== null && s.hud.players === 2")
    await a.wait_for_function("() => document.getElementById('hud-players').textContent === '2'")
    ups = await a.text_content("#hud-ups") or ""
    assert ups.endswith("/s") and int(ups[:-2]) > 0, ups

    # Holding a key on A moves A at once (prediction), and B sees A move smoothly.
    sa = await settle(a)
    start_x = sa["own"]["x"]
    key, sign = away_from_wall(start_x)
    pid_a = sa["playerId"]
    seen: list[float] = []
    await a.keyboard.down(key)
    for _ in range(24):
        sb = await state(b)
        seen += [o["x"] for o in sb["others"] if o["pid"] == pid_a]
        await asyncio.sleep(0.03)
    await a.keyboard.up(key)
    sa = await settle(a)
    moved = (sa["own"]["x"] - start_x) * sign
    assert moved >= 80, f"A moved {moved} units"
    # The prediction needs no correction, but for one: an input of A's that came after
    # its tick (this machine is loaded) was stood in for by the last one (PROTOCOL §2),
    # and the server's position is then a step ahead of A's, rightly.
    seat = server.app[MANAGER].room_hosts[room].engine.seats[pid_a]
    allowed = seat.inputs.stood_in * sa["config"]["step"]
    assert sa["maxCorrection"] <= allowed, \
        f"a correction of {sa['maxCorrection']} ({seat.inputs.stood_in} inputs stood in for)"
    final_x = sa["own"]["x"]
    await until(b, f"s.others.some(o => o.pid === {pid_a} && o.x === {final_x})")
    distinct = sorted(set(seen), reverse=sign < 0)
    assert len(distinct) >= 8, f"B drew A at only {len(distinct)} places: {distinct}"
    assert all((y - x) * sign >= 0 for x, y in itertools.pairwise(seen)), \
        "B's view of A never went backwards"

    # Chat both ways.
    await a.keyboard.press("Enter")
    await a.keyboard.type("hi Bob")
    await a.keyboard.press("Enter")
    await until(b, "s.chat.includes('Alice: hi Bob')")

    # C joins by room id: three players; everyone moves; the H toggle shows raw positions.
    c = await new_page(context, console, base + "/", "C")
    assert await c.input_value("#name") == "Bob", "the last name used is remembered"
    await c.fill("#name", "Carol")
    await shot(c, artifacts, "lobby")
    await c.fill("#join-id", room)
    await c.click("#join-form button[type=submit]")
    await until(c, "s.screen === 'game' && s.others.length === 2")
    await until(a, "s.hud.players === 3")
    keys = {a: away_from_wall((await state(a))["own"]["x"])[0], b: "ArrowDown", c: "ArrowUp"}
    for page, k in keys.items():
        await page.keyboard.down(k)
    await asyncio.sleep(0.5)
    await a.keyboard.press("h")
    await asyncio.sleep(0.3)
    assert (await state(a))["showServer"] is True
    await shot(a, artifacts, "game-3-players-server-positions")
    for page, k in keys.items():
        await page.keyboard.up(k)
    await a.keyboard.press("h")
    await settle(a)
    await asyncio.sleep(0.3)
    await shot(a, artifacts, "game-3-players")
    scores = await a.locator("#scores li").count()
    assert scores == 3

    # Closing a page leaves at once (LEAVE + close 1000 on pagehide), not after a grace.
    await c.close()
    await until(a, "s.hud.players === 2 && s.chat.includes('Carol left.')", timeout=3)
    console.check()
    await context.close()


async def test_a_spectator_watches_the_arena(start_server: StartServer, browser: Any,
                                            artifacts: Path) -> None:
    """The lobby's Watch button: every avatar drawn (none of ours), the field as it is,
    chat read, and nothing sent but pings, whatever keys are pressed."""
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        a = await new_page(context, console, base + "/", "A", "Alice")
        await a.click("#create-room")
        await until(a, "s.screen === 'game' && s.own !== null")
        room = (await state(a))["roomId"]
        pid_a = (await state(a))["playerId"]

        v = await context.new_page()
        console.watch(v, "V")
        await v.add_init_script(RECORD_SENT)
        await v.goto(base + "/")
        watch = f"#room-list button.watch[data-watch='{room}'][data-game='arena']"
        await v.wait_for_selector(watch)
        await v.click(watch)
        await until(v, f"s.screen === 'game' && s.spectator && s.roomId === '{room}' "
                       f"&& s.others.some(o => o.pid === {pid_a})")
        sv = await state(v)
        assert sv["playerId"] == 0 and sv["own"] is None and sv["ownRendered"] is None
        assert sv["hud"]["players"] == 1, "a spectator has no avatar"
        assert await v.evaluate("location.search") == f"?watch={room}"
        assert sv["shareLink"] == f"{base}/?watch={room}"
        assert await v.text_content("#room-kind") == "watching"
        assert await v.text_content("#leave") == "Back to lobby"
        assert await v.is_disabled("#chat-input")
        await until(a, "s.hud.players === 1")
        # A player's view has no camera to move: the whole field, clicks follow no one.
        await a.click("#view")
        sa = await state(a)
        assert sa["camera"]["follow"] is None and sa["camera"]["zoom"] == 1
        assert not await a.is_visible("#camera-bar")
        assert await a.locator("#scores button").count() == 0
        assert await v.is_visible("#camera-bar")

        # Alice moves and chats; the spectator sees both.
        sa = await settle(a)
        start_x = sa["own"]["x"]
        key, sign = away_from_wall(start_x)
        await a.keyboard.down(key)
        await asyncio.sleep(0.4)
        await a.keyboard.up(key)
        sa = await settle(a)
        final_x = sa["own"]["x"]
        assert (final_x - start_x) * sign > 0
        await until(v, f"s.others.some(o => o.pid === {pid_a} && o.x === {final_x})")
        await a.keyboard.press("Enter")
        await a.keyboard.type("hello watchers")
        await a.keyboard.press("Enter")
        await until(v, "s.chat.includes('Alice: hello watchers')")
        # Keys on the spectator's page steer nothing and send nothing.
        await v.keyboard.down("ArrowUp")
        await asyncio.sleep(0.3)
        await v.keyboard.up("ArrowUp")
        await v.keyboard.press("Enter")
        await v.keyboard.type("x")
        await v.keyboard.press("Enter")
        assert set(await sent_kinds(v)) == {3}, "a spectator sends only pings"
        await shot(v, artifacts, "arena-watching")

        # Back to the lobby; a direct /?watch= link watches again.
        await v.click("#leave")
        await until(v, "s.screen === 'lobby' && s.lobbyMessage.includes('stopped watching')")
        await v.goto(f"{base}/?watch={room}")
        await until(v, f"s.screen === 'game' && s.spectator "
                       f"&& s.others.some(o => o.pid === {pid_a})")
        assert (await state(a))["hud"]["players"] == 1
        console.check()
    finally:
        await context.close()


class RawPlayer:
    """An arena player over a bare WebSocket (no page): holds a direction at 20 Hz, and
    reads (and drops) whatever the server sends so that it is never a slow consumer."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: list[Any]) -> None:
        self.ws, self.room, self.pid = ws, welcome[2], welcome[4]
        self.seq = 0
        self.reader = asyncio.create_task(self._drain())

    @classmethod
    async def join(cls, http: aiohttp.ClientSession, base: str, **body: Any) -> RawPlayer:
        async with http.post(f"{base}/matchmake", json={"game": "arena", **body}) as resp:
            assert resp.status == 200, await resp.text()
            reservation = await resp.json()
        ws = await http.ws_connect(reservation["ws_url"])
        welcome = msgpack.unpackb((await ws.receive(timeout=5)).data)
        assert welcome[0] == 10, welcome
        return cls(ws, welcome)

    async def _drain(self) -> None:
        async for _ in self.ws:
            pass

    async def hold(self, dx: int, dy: int, seconds: float) -> None:
        for _ in range(round(seconds * 20)):
            self.seq += 1
            await self.ws.send_bytes(msgpack.packb([1, self.seq, [dx, dy]]))
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


def clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


async def test_a_spectator_follows_a_player(start_server: StartServer, browser: Any,
                                           artifacts: Path) -> None:
    """Watch mode's camera: a click on an avatar follows it (zoomed in, centred on its
    interpolated position, kept inside the field, its name highlighted); Esc, a click on
    empty space or *Free camera* show the whole field again; scoreboard names (focused,
    Enter) and number keys do the same from the keyboard; the followed player leaving
    ends it."""
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    context = await browser.new_context(viewport=VIEWPORT)
    async with aiohttp.ClientSession() as http:
        alice = await RawPlayer.join(http, base, mode="create", name="Alice")
        bob = await RawPlayer.join(http, base, mode="join", room_id=alice.room, name="Bob")
        try:
            v = await new_page(context, console, f"{base}/?watch={alice.room}", "V")
            await until(v, "s.spectator && s.others.length === 2 && s.camera !== null "
                           "&& s.hud.players === 2")
            sv = await state(v)
            free = sv["camera"]
            assert free["follow"] is None and free["zoom"] == 1
            assert await v.is_visible("#camera-hint") and not await v.is_visible("#free-camera")

            async def screen_xy(pid: int) -> tuple[float, float]:
                """Where avatar `pid` is drawn on the page, from the camera the page reports."""
                s = await state(v)
                box = await v.locator("#view").bounding_box()
                assert box is not None
                cam = s["camera"]
                o = next(o for o in s["others"] if o["pid"] == pid)
                return (box["x"] + box["width"] / 2 + (o["x"] - cam["x"]) * cam["scale"],
                        box["y"] + box["height"] / 2 + (o["y"] - cam["y"]) * cam["scale"])

            # A click on Alice follows her: zoomed in, her name highlighted.
            await v.mouse.click(*await screen_xy(alice.pid))
            await until(v, f"s.camera.follow === {alice.pid} && s.camera.zoom === "
                           f"s.camera.followZoom")
            sv = await state(v)
            assert sv["camera"]["followZoom"] == 2 and sv["camera"]["followName"] == "Alice"
            assert sv["camera"]["scale"] == 2 * free["scale"]
            assert await v.text_content("#follow-name") == "Alice"
            assert await v.is_visible("#free-camera")
            following = v.locator("#scores li.following")
            assert await following.count() == 1
            assert "Alice" in (await following.text_content() or "")
            assert await following.locator("button.who").get_attribute("aria-pressed") == "true"

            # Alice walks across the middle of the field: every frame the camera is on her
            # interpolated position, kept inside the field.
            ax = next(o["x"] for o in sv["others"] if o["pid"] == alice.pid)
            sign = 1 if ax < RULES["width"] // 2 else -1
            target = RULES["width"] // 2 + sign * 250  # well inside the camera's bounds
            walk = asyncio.create_task(alice.hold(sign * 100, 0, abs(target - ax) / RULES["speed"]))
            samples: list[tuple[float, float, float]] = []
            while not walk.done():
                s = await state(v)
                cam = s["camera"]
                o = next(o for o in s["others"] if o["pid"] == alice.pid)
                b = cam["bounds"]
                assert cam["follow"] == alice.pid and cam["zoom"] == 2
                assert cam["x"] == clamp(o["x"], b["minX"], b["maxX"]), (cam, o)
                assert cam["y"] == clamp(o["y"], b["minY"], b["maxY"]), (cam, o)
                samples.append((cam["x"], o["x"], b["minX"]))
                await asyncio.sleep(0.04)
            await walk
            tracked = sorted({x for x, ox, _ in samples if x == ox}, reverse=sign < 0)
            assert len(tracked) >= 8, f"the camera followed Alice through only {tracked}"
            xs = [x for x, _, _ in samples]
            assert all((b - a) * sign >= 0 for a, b in itertools.pairwise(xs)), \
                "the camera never went backwards"
            await shot(v, artifacts, "arena-watching-follow")

            # Esc: the whole field again.
            await v.keyboard.press("Escape")
            await until(v, "s.camera.follow === null && s.camera.zoom === 1")
            sv = await state(v)
            assert sv["camera"]["scale"] == free["scale"]
            assert (sv["camera"]["x"], sv["camera"]["y"]) == (free["x"], free["y"])
            assert await v.locator("#scores li.following").count() == 0
            assert not await v.is_visible("#free-camera")

            # From the keyboard: Tab to Bob's name in the scoreboard, Enter; the Free camera
            # button; then a number key (the scoreboard's rank).
            bob_name = v.locator(f"#scores button.who[data-pid='{bob.pid}']")
            await bob_name.focus()
            await asyncio.sleep(0.6)  # the scoreboard refreshes: the focus stays on Bob
            assert await bob_name.evaluate("(el) => el === document.activeElement")
            await v.keyboard.press("Enter")
            await until(v, f"s.camera.follow === {bob.pid} && s.camera.zoom === 2")
            assert await v.text_content("#follow-name") == "Bob"
            await v.click("#free-camera")
            await until(v, "s.camera.follow === null && s.camera.zoom === 1")
            names = await v.locator("#scores button.who").all_text_contents()
            await v.keyboard.press(str(names.index("Alice") + 1))
            await until(v, f"s.camera.follow === {alice.pid} && s.camera.zoom === 2")

            # A click on empty space: the whole field.
            sv = await state(v)
            box = await v.locator("#view").bounding_box()
            assert box is not None
            drawn = [await screen_xy(o["pid"]) for o in sv["others"]]
            corners = [(box["x"] + dx * box["width"], box["y"] + dy * box["height"])
                       for dx in (0.1, 0.9) for dy in (0.25, 0.9)]
            empty = max(corners, key=lambda c: min(abs(c[0] - x) + abs(c[1] - y)
                                                   for x, y in drawn))
            await v.mouse.click(*empty)
            await until(v, "s.camera.follow === null && s.camera.zoom === 1")

            # Following Bob, who leaves: the whole field again.
            await v.click(f"#scores button.who[data-pid='{bob.pid}']")
            await until(v, f"s.camera.follow === {bob.pid} && s.camera.zoom === 2")
            await bob.close()
            await until(v, "s.camera.follow === null && s.camera.zoom === 1 "
                           "&& s.others.length === 1")
            assert await v.is_visible("#camera-hint")
            console.check()
        finally:
            await alice.close()
            await bob.close()
            await context.close()


async def test_private_link_and_lobby_errors(start_server: StartServer, browser: Any,
                                             artifacts: Path) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    console.allow_http_errors("/matchmake", 404, 409)
    context = await browser.new_context(viewport=VIEWPORT)

    # A private room: not listed, but its link opens straight into it.
    a = await new_page(context, console, base + "/", "A", "Host")
    await a.check("#create-private")
    await a.click("#create-room")
    await until(a, "s.screen === 'game' && s.own !== null")
    sa = await state(a)
    assert sa["private"] is True
    link = sa["shareLink"]
    assert link == f"{base}/?room={sa['roomId']}"
    assert await a.input_value("#share-link") == link
    async with aiohttp.ClientSession() as http, http.get(f"{base}/rooms") as resp:
        assert sa["roomId"] not in {r["room_id"] for r in (await resp.json())["rooms"]}
    # ... here on a phone, which steers with the on-screen stick (analog: half a push
    # moves half a step per input).
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                                      is_mobile=True, device_scale_factor=2)
    await phone.add_init_script(RECORD_SENT)
    b = await new_page(phone, console, link, "B")
    await until(b, "s.screen === 'game' && s.others.length === 1")
    assert (await state(b))["roomId"] == sa["roomId"]
    await until(a, "s.hud.players === 2")
    assert await b.is_visible("#stick")
    s0 = await settle(b)
    box = await b.locator("#stick").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _, sign = away_from_wall(s0["own"]["x"])
    await b.mouse.move(cx, cy)
    await b.mouse.down()
    await b.mouse.move(cx + sign * box["width"] / 4, cy)  # half way to the rim
    await asyncio.sleep(0.5)
    await shot(b, artifacts, "game-phone")
    await b.mouse.up()
    s1 = await settle(b)
    sent = await b.evaluate("() => window.__sent.map((b) => window.MessagePack.decode(b))")
    pushes = [m[2] for m in sent if m[0] == 1 and s0["seq"] < m[1] <= s1["seq"]]
    assert len(pushes) >= 6 and pushes[-1] is None  # moves, then the let-go null
    half = s0["config"]["input_max"] // 2
    assert all(abs(dx - sign * half) <= 2 and dy == 0 for dx, dy in pushes[:-1]), pushes
    x, y = s0["own"]["x"], s0["own"]["y"]
    for dx, dy in pushes[:-1]:  # the rules on what the stick sent: each a step of about half
        x, y = move(x, y, dx, dy, s0["config"]["step"], RULES)
    assert abs(x - s0["own"]["x"]) >= 5 * (s0["config"]["step"] // 2 - 1)
    # A push that reached the loaded server after its tick was stood in for by the last
    # one (PROTOCOL §2): the server is then that many steps ahead, rightly.
    seat = server.app[MANAGER].room_hosts[sa["roomId"]].engine.seats[(await state(b))["playerId"]]
    assert abs(s1["own"]["x"] - x) <= seat.inputs.stood_in * s0["config"]["step"], \
        f"at {s1['own']['x']}, not {x} ({seat.inputs.stood_in} inputs stood in for)"
    assert s1["own"]["y"] == y == s0["own"]["y"]

    # A full room: its link shows why it can't be joined.
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/matchmake", json={
                "game": "arena", "mode": "create", "private": True, "name": "holder",
                "options": {"max_players": 1}}) as resp:
            assert resp.status == 200
            full = await resp.json()
        holder = await http.ws_connect(full["ws_url"])  # takes the only seat
        c = await new_page(context, console, f"{base}/?room={full['room_id']}", "C")
        await until(c, "s.screen === 'lobby' && s.lobbyMessage.includes('full')")
        assert "full" in (await c.text_content("#lobby-message") or "")
        assert await c.is_visible("#lobby-message")
        assert await c.input_value("#join-id") == full["room_id"]
        assert await c.evaluate("location.search") == ""
        await shot(c, artifacts, "lobby-room-full")
        await holder.close()

    # A room that does not exist.
    await c.goto(f"{base}/?room=no-such-room")
    await until(c, "s.screen === 'lobby' && s.lobbyMessage.includes(\"doesn't exist\")")
    # Join by id with an empty field: a message, no request.
    await c.fill("#join-id", "")
    await c.click("#join-form button[type=submit]")
    await until(c, "s.lobbyMessage.includes('Enter a room id')")
    console.check()
    await context.close()
    await phone.close()


async def test_latency_prediction_and_reconnect(start_server: StartServer, browser: Any,
                                                artifacts: Path) -> None:
    """Through a proxy adding 75 ms each way (150 ms round trip): own movement is
    predicted at once and never corrected; then the network drops and the client
    reconnects to its seat; then the server shuts down and the client says so."""
    server = await start_server()
    proxy = LatencyProxy(server.host, server.port, delay=0.075)
    base = await proxy.start()
    console = Console()
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await new_page(context, console, base + "/", "P", "Laggy")
        await page.click("#quick-play")
        await until(page, "s.screen === 'game' && s.own !== null")
        await until(page, "s.hud.rttMs !== null && s.hud.rttMs >= 140")
        s0 = await settle(page)
        key, sign = away_from_wall(s0["own"]["x"])

        # Predicted at once: the own position moves before the server could have seen the key.
        await page.keyboard.down(key)
        await until(page, f"s.own.x !== {s0['own']['x']}", timeout=2)
        early = await state(page)
        assert early["ownServer"]["x"] == s0["own"]["x"], "server had not moved us yet"
        await asyncio.sleep(0.8)
        await page.keyboard.press("h")
        await asyncio.sleep(0.15)
        await shot(page, artifacts, "game-150ms-rtt-server-positions")
        await page.keyboard.up(key)
        await page.keyboard.press("h")
        s1 = await settle(page)
        assert (s1["own"]["x"] - s0["own"]["x"]) * sign >= 100
        assert s1["maxCorrection"] == 0, "no correction at 150 ms RTT"

        # The network drops while the key is held: "reconnecting", then back in the same
        # room and seat. Inputs lost on the way are resent after the server's ack: every
        # input is applied exactly once, and the prediction still never needs correcting.
        await page.keyboard.down(key)
        await asyncio.sleep(0.3)
        proxy.cut()
        await until(page, "s.status === 'reconnecting'", timeout=3)
        assert await page.is_visible("#reconnect-banner")
        assert "Reconnecting" in (await page.text_content("#reconnect-text") or "")
        await until(page, "s.status === 'playing' && s.reconnects === 1", timeout=10)
        s2 = await state(page)
        assert s2["roomId"] == s1["roomId"]
        assert not await page.is_visible("#reconnect-banner")
        print(f"reconnected: token={s1['canResume']} player {s1['playerId']} -> {s2['playerId']}")
        await asyncio.sleep(0.4)
        await page.keyboard.up(key)
        s3 = await settle(page)
        assert not [line for line in s3["chat"] if line.startswith("Server:")], s3["chat"]
        if s1["canResume"]:
            assert s2["playerId"] == s1["playerId"], "resumed the same seat"
            inputs = s3["seq"] - s1["seq"] - 1  # moves: the last input is the let-go null
            assert inputs >= 10
            step = s3["config"]["step"]
            assert (s3["own"]["x"] - s1["own"]["x"]) * sign == step * inputs
            assert s3["maxCorrection"] == 0
        else:
            assert s3["own"] is not None
        console.check()

        # The server shuts down: the player is told it is going away (1001) while retrying.
        console.allowed.append(lambda text: "ERR_CONNECTION" in text
                               or "WebSocket connection to" in text
                               or "Failed to load resource" in text)
        await server.close()
        await until(page, "s.status === 'reconnecting' && s.statusInfo.text.includes('going away')",
                    timeout=5)
        assert "going away" in (await page.text_content("#reconnect-why") or "")
        await shot(page, artifacts, "game-server-going-away")
        console.check()
    finally:
        await context.close()
        await proxy.close()


# Every animation frame, where page A drew its own avatar (checks that a reconnection blends).
TRACK_OWN = """() => {
  window.__track = [];
  const frame = () => {
    const s = window.__game.state();
    window.__track.push([performance.now(), s.ownRendered, s.status]);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""


async def test_reconnecting_banner_retry_now_and_away_players(start_server: StartServer,
                                                              browser: Any,
                                                              artifacts: Path) -> None:
    """Page A plays through a proxy, page B directly, in one room. A's network drops and
    stays down: A shows a banner counting down to its next attempt; B shows A dimmed and
    "reconnecting" on the field and in the scoreboard. Meanwhile the server moves A's avatar
    farther than the snap distance. The network comes back during a long wait: "Retry now"
    reconnects A at once, to the same seat and score; A's own avatar glides to the server's
    position over a few frames instead of jumping; B no longer marks A."""
    server = await start_server()
    proxy = LatencyProxy(server.host, server.port)
    base_a = await proxy.start()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    console.allowed.append(lambda text: "WebSocket connection to" in text
                           or "ERR_CONNECTION" in text or "Failed to load resource" in text)
    context = await browser.new_context(viewport=VIEWPORT)
    loop = asyncio.get_running_loop()
    try:
        a = await new_page(context, console, base_a + "/", "A", "Alice")
        await a.click("#create-room")
        await until(a, "s.screen === 'game' && s.own !== null")
        sa = await settle(a)
        pid = sa["playerId"]
        b = await new_page(context, console, f"{base}/?room={sa['roomId']}", "B")
        await until(b, f"s.screen === 'game' && s.others.some(o => o.pid === {pid} && !o.away)")
        room = server.app[MANAGER].room_hosts[sa["roomId"]].room
        avatar = room.players[pid].data["avatar"]
        avatar.score = 7  # a score to keep
        await until(a, f"s.avatars.some(v => v.pid === {pid} && v.score === 7)")
        await a.evaluate(TRACK_OWN)

        # Down: every attempt fails after 0.6 s without reaching the server (not at once).
        proxy.refusing = 0.6
        proxy.cut()
        await until(a, "s.status === 'reconnecting' && s.reconnectBanner !== null", timeout=3)
        assert await a.is_visible("#retry-now")
        assert re.fullmatch(r"Reconnecting… (next try in \d+\.\d s|trying now)",
                            (await state(a))["reconnectBanner"]["text"])
        await until(b, f"s.others.some(o => o.pid === {pid} && o.away)", timeout=3)
        assert "reconnecting" in (await b.text_content("#scores li.away") or "")
        await shot(b, artifacts, "arena-player-away")
        # The server moves A's avatar meanwhile, by more than the prediction's snapDistance.
        x0 = avatar.x
        avatar.x = x0 + 300 if x0 + 300 <= RULES["width"] - RULES["player_radius"] else x0 - 300

        # Past the quick attempts, a longer wait: the banner counts it down.
        await until(a, "s.status === 'reconnecting' "
                       "&& s.statusInfo.retryAt - performance.now() > 700", timeout=30)
        first = (await state(a))["reconnectBanner"]["text"]
        await asyncio.sleep(0.2)
        second = (await state(a))["reconnectBanner"]["text"]
        assert first != second and "next try in" in first, (first, second)
        await shot(a, artifacts, "arena-reconnecting-banner")
        assert proxy.refused >= 3

        # The network is back: "Retry now" reconnects before the planned attempt.
        proxy.refusing = None
        left = await a.evaluate(
            "() => window.__game.state().statusInfo.retryAt - performance.now()")
        clicked = loop.time()
        await a.click("#retry-now")
        await until(a, "s.status === 'playing' && s.reconnects === 1", timeout=5)
        took = loop.time() - clicked
        assert took * 1000 < left, f"back in {took:.2f} s; the next try was {left:.0f} ms away"
        s2 = await state(a)
        assert s2["playerId"] == pid and s2["roomId"] == sa["roomId"]
        assert not await a.is_visible("#reconnect-banner")
        assert [v["score"] for v in s2["avatars"] if v["pid"] == pid] == [7]
        await until(b, f"s.others.some(o => o.pid === {pid} && !o.away) "
                       "&& !document.querySelector('#scores li.away')", timeout=3)

        # A's own avatar glided from where it was drawn to the server's new position.
        await until(a, f"s.ownRendered.x === {avatar.x} && !s.blending", timeout=3)
        track = await a.evaluate("() => window.__track")
        xs = [(t, own["x"]) for t, own, _ in track if own]
        steps = [abs(x2 - x1) for (_, x1), (_, x2) in itertools.pairwise(xs)]
        moving = [t for (t, x1), (_, x2) in itertools.pairwise(xs) if x1 != x2]
        print(f"own avatar: largest move in one frame {max(steps):.1f} units, "
              f"moving for {moving[-1] - moving[0]:.0f} ms over {len(moving)} frames")
        assert xs[0][1] == x0 and xs[-1][1] == avatar.x
        assert max(steps) <= 120, "no jump: blended over several frames"
        assert len(moving) >= 4 and 100 <= moving[-1] - moving[0] <= 400
        console.check()
    finally:
        await context.close()
        await proxy.close()


def test_static_files_are_plain_modules() -> None:
    """No build step: index.html loads the vendored msgpack and plain ES modules."""
    index = (ROOT / "static" / "index.html").read_text()
    assert '<script src="/static/vendor/msgpack.min.js"></script>' in index
    assert '<script type="module" src="/static/js/main.js"></script>' in index
    vendor = ROOT / "static" / "vendor"
    for name in ("msgpack.min.js", "msgpack.LICENSE", "README.md"):
        assert (vendor / name).is_file(), name
    assert "ISC" in (vendor / "README.md").read_text()


def test_the_arena_page_imports_only_the_sdk_and_its_own_game_code() -> None:
    """Connection, replica and netcode come from /sdk/gameserver.js; static/js/ keeps the
    lobby, rendering, input and the arena's rule (no copy of the SDK's parts)."""
    js = ROOT / "static" / "js"
    seen: set[str] = set()
    todo = ["main.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = (js / name).read_text()
        for spec in re.findall(r'^\s*(?:import|export)\b[^;]*?\bfrom "([^"]+)"', source, re.M):
            if spec == "/sdk/gameserver.js":
                continue
            assert spec.startswith("./"), f"{name} imports {spec}"
            todo.append(spec[2:])
    assert seen == {"main.js", "game.js", "input.js", "render.js", "minimap.js", "arena-rules.js"}
    assert '"/sdk/gameserver.js"' in (js / "main.js").read_text()
    for gone in ("session.js", "netcode.js", "replica.js", "protocol.js", "wire.js"):
        assert not (js / gone).exists(), f"static/js/{gone}: the SDK has it"
