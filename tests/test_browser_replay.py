"""The replay player (/replay) in Debian's Chromium: a recorded arena match, opened from
a file and by URL, sought to the middle, where the page's replica must hold exactly the
state a live spectator had at that tick; play, pause, speed, follow and the timeline.
Without chromium or playwright this is skipped, or fails when ``CI`` is set."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest

from gameserver.core import recording
from gameserver.core.replica import Replica
from gameserver.web import app as web_app
from gameserver.web.keys import MANAGER

from .browsing import Console, shot
from .client import Player, matchmake

StartServer = Callable[..., Awaitable[Any]]
TOKEN = "replay-admin-token-for-tests"
VIEWPORT = {"width": 1280, "height": 720}


async def replay_state(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("window.__replay.state()")
    return result


async def until_replay(page: Any, expression: str, timeout: float = 10.0) -> None:
    script = (f"() => {{ if (!window.__replay) return false; "
              f"const s = window.__replay.state(); return {expression}; }}")
    try:
        await page.wait_for_function(script, timeout=timeout * 1000)
    except Exception as exc:
        if "Timeout" not in type(exc).__name__:
            raise
        now = json.dumps(await replay_state(page))[:3000]
        raise AssertionError(f"not true after {timeout} s: {expression}\nstate: {now}") from None


def views(messages: list[list[Any]], schema: list[Any]) -> dict[int, Any]:
    """The live replica's state after every update, by tick, as JSON sees it."""
    replica, out = Replica(schema), {}
    for message in messages:
        replica.apply(message)
        out[replica.tick] = json.loads(json.dumps(
            {str(k): [t, v] for k, (t, v) in replica.view().items()}))
    return out


ROOT = Path(__file__).resolve().parent.parent


def test_the_replay_page_imports_only_the_sdk_and_the_arena_renderer() -> None:
    """No copy of the SDK's reader or the arena's drawing: /sdk/gameserver.js and render.js."""
    source = (ROOT / "static" / "js" / "replay.js").read_text()
    imports = re.findall(r'^\s*import\b[^;]*?\bfrom "([^"]+)"', source, re.M)
    assert sorted(imports) == ["./render.js", "/sdk/gameserver.js"]
    html = (ROOT / "static" / "replay.html").read_text()
    assert '<script type="module" src="/static/js/replay.js"></script>' in html
    assert "<style" not in html and " style=" not in html, "the CSP allows no inline styles"


def recordings(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.gsrec"))


async def record_match(start_server: StartServer, session: aiohttp.ClientSession,
                       folder: Path) -> tuple[str, Path, dict[int, Any], Player, Player]:
    server = await start_server(record=str(folder), empty_room_grace=0.2, admin_token=TOKEN)
    base = str(server.make_url("")).rstrip("/")
    ann = await Player.join(session, base, name="ann", options={"seed": 11})
    bob = await Player.join(session, base, mode="join", room_id=ann.room_id, name="bob")
    watching = await matchmake(session, base, mode="spectate", room_id=ann.room_id)
    eve = await Player.connect(session, watching["ws_url"])  # a live spectator
    for i in range(56):  # ~2.8 s: keyframes at 0, 1 and 2 s
        await ann.send_input(100 if i < 30 else -60, 40 if i % 14 < 7 else -40)
        await bob.send_input(-100, 60 if i < 28 else -100)
        if i == 20:
            await ann.send(2, "chat", "hello replay")
        await asyncio.sleep(0.05)
        await eve.drain()
    await eve.updates_for(0.3)
    live = views([m for _, m in eve.updates], eve.welcome[6])
    for p in (ann, bob, eve):
        await p.send(4)  # LEAVE: the room empties, closes, and its recording is complete
    manager = server.app[MANAGER]
    for _ in range(250):
        if ann.room_id not in manager.room_hosts:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    [path] = recordings(folder)
    return base, path, live, ann, bob


async def test_a_recorded_arena_match_replays_in_the_browser(
        start_server: StartServer, browser: Any, artifacts: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A keyframe every second, so that seeking to the middle starts from one of them.
    options = web_app.record_options
    monkeypatch.setattr(web_app, "record_options", lambda settings: dataclasses.replace(
        options(settings), keyframe_every=1.0) if settings.record else None)
    async with aiohttp.ClientSession() as session:
        base, path, live, ann, bob = await record_match(start_server, session, tmp_path / "rec")
        async with session.get(f"{base}/replay") as resp:
            assert resp.status == 200
            assert "script-src 'self'" in resp.headers.get("Content-Security-Policy", "")
            assert "replay.js" in await resp.text()
    head, frames = recording.read(path.read_bytes())
    assert (head["game"], head["room_id"]) == ("arena", ann.room_id)
    keyframes = [ms for kind, ms, _ in frames if kind == recording.KEYFRAME]
    assert len(keyframes) >= 3, keyframes
    assert len(live) > 40

    console = Console()
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        console.watch(page, "R")
        await page.goto(f"{base}/replay")
        await until_replay(page, "!s.loaded")
        await page.set_input_files("#file", str(path))
        await until_replay(page, "s.loaded")
        s = await replay_state(page)
        assert (s["game"], s["roomId"]) == ("arena", ann.room_id)
        assert s["duration"] == frames[-1][1]
        assert not s["playing"]

        # Seek to the middle with the slider: exactly the live state at that tick, reached
        # from a keyframe that is not the first.
        middle = (s["start"] + s["duration"]) // 2
        assert any(0 < k <= middle for k in keyframes[1:])
        await page.eval_on_selector(
            "#seek", "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }",
            middle)
        await until_replay(page, f"s.time === {middle}")
        s = await replay_state(page)
        assert s["tick"] in live, (s["tick"], sorted(live)[:3])
        assert s["view"] == live[s["tick"]]
        pids = {v[1]["name"]: v[1]["pid"] for v in s["view"].values() if v[0] == "Avatar"}
        assert pids == {"ann": ann.player_id, "bob": bob.player_id}
        await shot(page, artifacts, "replay-middle")

        # The timeline: both joins and the chat; a click jumps there.
        timeline = s["timeline"]
        assert any(t.endswith("ann joined") for t in timeline), timeline
        assert any(t.endswith("bob joined") for t in timeline), timeline
        chat = next(i for i, t in enumerate(timeline) if t.endswith("ann: hello replay"))
        await page.click(f"#timeline li[data-index='{chat}']")
        chat_ms = int(await page.get_attribute(f"#timeline li[data-index='{chat}']", "data-ms")
                      or -1)
        await until_replay(page, f"s.time === {chat_ms}")
        s = await replay_state(page)
        assert s["view"] == live[s["tick"]]

        # Play, then pause: time runs, then stands still, on a state the live room had.
        await page.select_option("#speed", "2")
        await page.click("#play")
        await until_replay(page, f"s.playing && s.speed === 2 && s.time > {chat_ms + 300}")
        await page.click("#play")
        await until_replay(page, "!s.playing")
        s = await replay_state(page)
        await asyncio.sleep(0.2)
        assert (await replay_state(page))["time"] == s["time"], "paused"
        assert s["view"] == live[s["tick"]]
        assert await page.text_content("#play") == "Play"

        # Follow a player by clicking their name.
        await page.click(f"#players li[data-pid='{bob.player_id}']")
        await until_replay(page, f"s.following === {bob.player_id}")
        await page.wait_for_selector(f"#players li.followed[data-pid='{bob.player_id}']")
        await shot(page, artifacts, "replay-following")

        # Played to the end, it stops there.
        await page.select_option("#speed", "8")
        await page.click("#play")
        await until_replay(page, f"!s.playing && s.time === {s['duration']}")
        s = await replay_state(page)
        assert s["tick"] == recording.message(*frames[-1][::2])[2]

        # By URL: /admin/recordings/... needs the token, sent as a header only.
        console.allow_http_errors("/admin/recordings/", 401)
        await page.goto(f"{base}/replay?url=/admin/recordings/{path.name}")
        await until_replay(page, "!s.loaded && s.status.includes('admin token')")
        await page.fill("#token", TOKEN)
        await page.click("#load")
        await until_replay(page, f"s.loaded && s.duration === {frames[-1][1]}")
        assert TOKEN not in page.url
        await page.fill("#url", "http://example.invalid/x.gsrec")
        await page.click("#load")
        await until_replay(page, "s.status.includes('same origin')")
        console.check()
    finally:
        await context.close()


async def test_another_game_shows_its_entities_and_a_cut_file_plays_to_the_cut(
        start_server: StartServer, browser: Any, tmp_path: Path) -> None:
    """Not the arena: a table of entities. A file cut mid-frame (still being written) opens."""
    pack = msgpack.Packer(use_bin_type=True).pack
    schema = [["Dot", [["x", "i"], ["label", "v"]]]]
    data = recording.header("r9", "dots", 10, schema, {}, 1700000000.0)
    data += recording.keyframe(0, pack(0) + pack([1, 0, 5, "a"]) + pack([["joined", [1, "a"]]]))
    for tick in range(1, 21):
        created = [2, 0, 7, "b"] if tick == 10 else []
        events = [["chat", [1, "a", "hi"]]] if tick == 15 else []
        data += recording.delta(tick * 100, pack(tick) + pack(tick - 1) + pack(created)
                                + pack([1, 1, 1]) + pack([]) + pack(events))
    path = tmp_path / "dots-cut.gsrec"
    await asyncio.to_thread(path.write_bytes, data[:-4])  # the last frame is cut short
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        console.watch(page, "R")
        await page.goto(f"{base}/replay")
        await page.set_input_files("#file", str(path))
        await until_replay(page, "s.loaded")
        s = await replay_state(page)
        assert (s["game"], s["duration"], s["tick"]) == ("dots", 1900, 0)
        assert s["timeline"] == ["0:00.0a joined", "0:01.5a: hi"]
        assert await page.is_hidden("#field") and await page.is_visible("#entities")
        await page.click("#timeline li[data-index='1']")
        await until_replay(page, "s.time === 1500")
        s = await replay_state(page)
        assert s["view"] == {"1": ["Dot", {"x": 20, "label": "a"}],
                             "2": ["Dot", {"x": 7, "label": "b"}]}
        await page.wait_for_function(
            "() => document.querySelectorAll('#entities tbody tr').length === 2")
        console.check()
    finally:
        await context.close()
