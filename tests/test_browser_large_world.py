"""The arena's large world in the browser (issue 14: per-player views), in Debian's
Chromium under Playwright against a real server, as tests/test_browser.py does.

Two pages pick the large world in the lobby and land in one room. Each page's camera
follows its own avatar over the 8000 x 8000 field, the minimap is drawn with the
interest area around the avatar, and each page knows only the players near it: players
over bare WebSockets (which read their own position from their updates with the
reference replica) are joined until one is near the first page and one is far from it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from gameserver.core.replica import Replica

from .browsing import Console, shot, state, until

VIEWPORT = {"width": 1280, "height": 720}
StartServer = Callable[..., Awaitable[Any]]


def clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def cell_of(x: int, y: int, cell: int) -> tuple[int, int]:
    return x // cell, y // cell


def near(a: tuple[int, int], b: tuple[int, int], config: dict[str, Any]) -> bool:
    """Whether b's cell is in the interest area around a (world.interest(cell, reach))."""
    cell, reach = config["interest_cell"], config["interest_reach"]
    (ax, ay), (bx, by) = cell_of(*a, cell), cell_of(*b, cell)
    return abs(ax - bx) <= reach and abs(ay - by) <= reach


class Watcher:
    """A large-world player over a bare WebSocket that keeps its own replica, to know
    where the server put its avatar. It never moves."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: list[Any]) -> None:
        self.ws, self.room, self.pid = ws, welcome[2], welcome[4]
        self.replica = Replica(welcome[6])
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def join(cls, http: aiohttp.ClientSession, base: str, room: str, name: str) -> Watcher:
        async with http.post(f"{base}/matchmake", json={"game": "arena", "mode": "join",
                                                        "room_id": room, "name": name}) as resp:
            assert resp.status == 200, await resp.text()
            reservation = await resp.json()
        ws = await http.ws_connect(reservation["ws_url"])
        welcome = msgpack.unpackb((await ws.receive(timeout=5)).data)
        assert welcome[0] == 10 and welcome[7]["world"] == "large", welcome
        return cls(ws, welcome)

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                data = msgpack.unpackb(msg.data)
                if data[0] in (11, 12):
                    self.replica.apply(data)

    async def position(self) -> tuple[int, int]:
        for _ in range(200):
            for entity in self.replica.entities.values():
                if entity.type == "Avatar" and entity.values["pid"] == self.pid:
                    return entity.values["x"], entity.values["y"]
            await asyncio.sleep(0.01)
        raise AssertionError(f"player {self.pid} never saw its own avatar")

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def lobby_page(context: Any, console: Console, base: str, label: str, name: str,
                     remembered: str = "small") -> Any:
    """A page that picks the large world in the lobby and presses Quick play; the lobby
    had `remembered` chosen (the last choice on this browser)."""
    page = await context.new_page()
    console.watch(page, label)
    await page.goto(base + "/")
    await until(page, "s.screen === 'lobby'")
    assert await page.input_value("#world") == remembered
    await page.fill("#name", name)
    await page.select_option("#world", "large")
    await page.click("#quick-play")
    await until(page, "s.screen === 'game' && s.own !== null && s.camera !== null")
    return page


async def camera_on_own(page: Any) -> dict[str, Any]:
    """The camera centred on the avatar as drawn (kept inside the field) this frame."""
    await until(page, "s.camera.ownFollowed && s.camera.zoom === s.camera.followZoom "
                      "&& s.camera.x === Math.min(Math.max(s.ownRendered.x, s.camera.bounds.minX),"
                      " s.camera.bounds.maxX) && s.camera.y === Math.min(Math.max(s.ownRendered.y,"
                      " s.camera.bounds.minY), s.camera.bounds.maxY)")
    return await state(page)


async def test_large_world_camera_minimap_and_what_each_player_knows(
        start_server: StartServer, browser: Any, artifacts: Path) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    context = await browser.new_context(viewport=VIEWPORT)
    watchers: list[Watcher] = []
    async with aiohttp.ClientSession() as http:
        try:
            # Both pick "Large" in the lobby: Quick play puts them in one large-world room.
            a = await lobby_page(context, console, base, "A", "Alice")
            sa = await state(a)
            config = sa["config"]
            assert (config["world"], config["width"], config["height"]) == ("large", 8000, 8000)
            assert (config["interest_cell"], config["interest_reach"]) == (800, 1)
            b = await lobby_page(context, console, base, "B", "Bob", remembered="large")
            assert (await state(b))["roomId"] == sa["roomId"]
            assert await a.text_content("#scores-title") == "Nearby players"
            assert await a.text_content("#hud-players-label") == "Nearby"

            # The camera follows our own avatar: about 1600 x 900 units of the field in view.
            sa = await camera_on_own(a)
            cam = sa["camera"]
            assert cam["large"] and cam["world"] == {"width": 8000, "height": 8000}
            view = cam["viewport"]
            width, height = view["x1"] - view["x0"], view["y1"] - view["y0"]
            assert 1500 <= width <= 2600 and 850 <= height <= 1500, view
            # Alice walks towards the middle for a second: every frame the camera is on her.
            key, sign = ("ArrowRight", 1) if sa["own"]["x"] < 4000 else ("ArrowLeft", -1)
            start_x, start_cam = sa["ownRendered"]["x"], cam["x"]
            xs = []
            await a.keyboard.down(key)
            for _ in range(10):
                xs.append((await camera_on_own(a))["camera"]["x"])
                await asyncio.sleep(0.1)
            await a.keyboard.up(key)
            sa = await camera_on_own(a)
            moved = (sa["ownRendered"]["x"] - start_x) * sign
            assert moved >= 150, f"Alice moved {moved} units"
            # Near the field's edge the camera stays put, elsewhere it moves with her.
            lo, hi = cam["bounds"]["minX"], cam["bounds"]["maxX"]
            assert sa["camera"]["x"] - start_cam == (clamp(sa["ownRendered"]["x"], lo, hi)
                                                     - clamp(start_x, lo, hi))
            assert xs == sorted(xs, reverse=sign < 0), "the camera never went backwards"

            # The minimap: the whole field, our avatar on it, the interest area around it.
            # (An avatar that just came into view is drawn once interpolation has it: wait
            # for the frame that shows what the state holds.)
            await until(a, "s.camera.minimap !== null && s.ownServer !== null "
                           "&& s.ownRendered.x === s.ownServer.x "
                           "&& s.camera.minimap.avatars === s.avatars.length "
                           "&& s.camera.minimap.orbs === s.orbs")
            sa = await state(a)
            mini = sa["camera"]["minimap"]
            assert mini["own"] == sa["ownRendered"]
            assert mini["box"]["w"] >= 80 and mini["box"]["h"] >= 80
            ax, ay = sa["ownServer"]["x"], sa["ownServer"]["y"]
            area = mini["interest"]
            cx, cy = ax // 800, ay // 800
            assert area == {"x0": max(0, (cx - 1) * 800), "y0": max(0, (cy - 1) * 800),
                            "x1": min(8000, (cx + 2) * 800), "y1": min(8000, (cy + 2) * 800)}
            assert mini["avatars"] == len(sa["avatars"]) and mini["orbs"] == sa["orbs"]

            # What Alice knows is what is near her: Bob only if he is near her, and players
            # joined until one is near her and one is far.
            sb = await state(b)
            bob = (sb["ownServer"]["x"], sb["ownServer"]["y"])
            bob_near = near((ax, ay), bob, config)
            near_one = far_one = None
            # A spawn lands near her about one time in ten (fewer at an edge): enough tries
            # that missing both is practically impossible (0.9 ** 150 < 1e-6).
            for i in range(150):
                if near_one and far_one:
                    break
                w = await Watcher.join(http, base, sa["roomId"], f"w{i}")
                where = await w.position()
                if near((ax, ay), where, config) and near_one is None:
                    near_one = w
                elif not near((ax, ay), where, config) and far_one is None:
                    far_one = w
                else:
                    await w.close()
                    continue
                watchers.append(w)
            assert near_one and far_one, "no player spawned near Alice in 150 tries"
            await until(a, f"s.avatars.some(v => v.pid === {near_one.pid})")
            for _ in range(5):
                pids = {v["pid"] for v in (await state(a))["avatars"]}
                assert far_one.pid not in pids, "a player far away is not in Alice's replica"
                assert (sb["playerId"] in pids) == bob_near, (bob, (ax, ay), pids)
                await asyncio.sleep(0.1)
            # The far player's replica does not have Alice either; the near one's does.
            assert sa["playerId"] not in {e.values["pid"] for e in far_one.replica.entities.values()
                                          if e.type == "Avatar"}
            assert sa["playerId"] in {e.values["pid"] for e in near_one.replica.entities.values()
                                      if e.type == "Avatar"}
            # The scoreboard lists the players she knows of, the minimap shows them.
            sa = await state(a)
            await until(a, f"s.camera.minimap.avatars === {len(sa['avatars'])}")
            assert await a.locator("#scores li").count() == len(sa["avatars"])
            await shot(a, artifacts, "arena-large-world")
            await shot(b, artifacts, "arena-large-world-bob")
            console.check()
        finally:
            for w in watchers:
                await w.close()
            await context.close()
