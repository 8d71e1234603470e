"""Recordings (--record): every update a room sends, on disk, off the tick path, exact."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gameserver import Entity, Room
from gameserver.client import open_recording
from gameserver.core import codec, recording
from gameserver.core.replica import Replica
from gameserver.games.arena import Arena
from gameserver.host.recorder import Recorder, RecordOptions
from gameserver.testing import RoomHarness
from gameserver.web.app import BUILTIN_GAMES
from gameserver.web.keys import MANAGER

from .client import Player, matchmake, url

TOKEN = "a-very-secret-admin-token"


def files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def replay_views(messages: list[list[Any]], schema: list[Any]) -> dict[int, Any]:
    """The state after each update, by tick, as a client's replica holds it."""
    replica, views = Replica(schema), {}
    for message in messages:
        replica.apply(message)
        views[replica.tick] = replica.view()
    return views


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_recorded_match_replays_exactly_what_a_live_client_saw(
        start_server: Callable[..., Any], session: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    server = await start_server(record=str(tmp_path), empty_room_grace=0.2,
                                admin_token=TOKEN)
    base = url(server)
    ann = await Player.join(session, base, name="ann", options={"seed": 7})
    bob = await Player.join(session, base, mode="join", room_id=ann.room_id, name="bob")
    watching = await matchmake(session, base, mode="spectate", room_id=ann.room_id)
    eve = await Player.connect(session, watching["ws_url"])  # sees what anyone sees, ack 0
    for i in range(30):  # about 1.5 s of play, with chat in the events
        await ann.send_input(100, 0 if i % 10 else 50)
        await bob.send_input(-100, 30)
        if i == 12:
            await ann.send(2, "chat", "recorded?")
        await asyncio.sleep(0.05)
    await ann.until(lambda: ann.replica.ack == 30)
    await eve.updates_for(0.3)
    live = [m for _, m in eve.updates]
    for p in (ann, bob, eve):
        await p.send(4)  # LEAVE: the room empties, is disposed, and its recording closed
    manager = server.app[MANAGER]
    await until(lambda: ann.room_id not in manager.room_hosts)
    await asyncio.sleep(0.3)

    [path] = files(tmp_path)
    assert path.name.startswith("arena-") and path.name.endswith(f"-{ann.room_id}.gsrec")
    head, frames = recording.read(path.read_bytes())
    assert (head["room_id"], head["game"], head["tick_rate"]) == (ann.room_id, "arena", 20.0)
    assert head["schema"] == eve.welcome[6] and head["config"] == eve.welcome[7]
    assert frames[0][0] == recording.KEYFRAME
    recorded = replay_views([m for _, m in recording.updates(frames)], head["schema"])
    seen = replay_views(live, eve.welcome[6])
    assert len(seen) > 20
    # Every tick a live client saw is in the recording, in exactly that state.
    assert {t: recorded.get(t) for t in seen} == seen
    chats = [e for _, m in recording.updates(frames) for e in m[-1] if e[0] == "chat"]
    assert chats == [["chat", [ann.player_id, "ann", "recorded?"]]]

    # The Python client reads it as a room: seek anywhere, or play it in time.
    replay = open_recording(path.read_bytes())
    assert (replay.game, replay.room_id) == ("arena", ann.room_id)
    deltas = [(ms, recording.message(kind, tail)[2]) for kind, ms, tail in frames
              if kind == recording.DELTA]
    for ms, tick in (deltas[len(deltas) // 2], deltas[len(deltas) // 3], deltas[-1]):
        replay.seek(ms)  # backwards and forwards
        assert replay.tick == tick and replay.state.view() == recorded[tick]
    assert [e.body for e in replay.events if e.kind == "chat"] == \
        [[ann.player_id, "ann", "recorded?"]]
    replay.seek(0)
    async for _ in replay.play(speed=1000):
        pass
    assert replay.time == replay.duration and replay.state.view() == recorded[max(recorded)]

    # Listed and downloadable with the admin token, and only with it.
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(f"{base}/admin/recordings", headers=auth) as resp:
        listing = await resp.json()
    assert listing["recording"] is True
    assert [(r["name"], r["bytes"]) for r in listing["recordings"]] == \
        [(path.name, path.stat().st_size)]
    async with session.get(f"{base}/admin/recordings/{path.name}", headers=auth) as resp:
        assert resp.status == 200 and await resp.read() == path.read_bytes()
    async with session.get(f"{base}/admin/recordings/{path.name}") as resp:
        assert resp.status == 401
    for name in ("..%2F" + path.name, "nothing.gsrec", ".hidden.gsrec", "x.txt"):
        async with session.get(f"{base}/admin/recordings/{name}", headers=auth) as resp:
            assert resp.status == 404, name


def test_seeking_to_a_keyframe_gives_the_state_of_playing_up_to_it(tmp_path: Path) -> None:
    harness = RoomHarness(Arena, options={"seed": 3})
    ann = harness.join("ann")
    engine = harness.engine
    frames = [(recording.KEYFRAME, 0, engine.snapshot_tail())]  # as a recording starts
    for tick in range(1, 121):
        ann.input([100 if tick % 40 < 20 else -100, 50])
        engine.tick()  # the engine alone: these frames are the only updates made
        frames.append((recording.DELTA, tick, engine.collect()))  # the next update's bytes
        if tick % 25 == 0:
            frames.append((recording.KEYFRAME, tick, engine.snapshot_tail()))
    schema = engine.room.world.schema()
    whole = replay_views([m for _, m in recording.updates(frames)], schema)
    middle = next(i for i, f in enumerate(frames) if f[0] == recording.KEYFRAME and f[1] >= 50)
    sought = replay_views([m for _, m in recording.updates(frames, middle)], schema)
    assert min(sought) == frames[middle][1]
    assert {t: whole[t] for t in sought} == sought  # from the middle, the very same states
    assert len(sought) < len(whole)


class Plain(Entity):
    n: int = 0


class Unrecorded(Room):
    game = "unrecorded"
    entity_types = (Plain,)
    record = False


async def test_a_game_can_opt_out_and_the_disk_never_stalls_a_room(
        start_server: Callable[..., Any], session: aiohttp.ClientSession, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    server = await start_server(games=(*BUILTIN_GAMES, Unrecorded), record=str(tmp_path))
    base = url(server)
    quiet = await Player.join(session, base, game="unrecorded", name="q")
    assert server.app[MANAGER].room_hosts[quiet.room_id].recorder is None

    # A disk that falls behind: the room's recording stops, the game goes on.
    ann = await Player.join(session, base, name="ann")
    host = server.app[MANAGER].room_hosts[ann.room_id]
    assert host.recorder is not None
    slow = Recorder(host.engine, RecordOptions(tmp_path / "slow", buffer_limit=2000,
                                               flush_every=3600))
    (tmp_path / "slow").mkdir()
    with caplog.at_level(logging.WARNING, logger="gameserver.recorder"):
        slow.start()
        host.recorder = slow  # what the tick loop writes to from its next start
        for _ in range(200):
            slow.update(b"\x00" * 64)
    assert slow.stopped and "recording stopped" in caplog.text
    rate = await ann.rate(0.5)
    assert rate > 15  # still ticking and sending at 20 Hz
    await slow.close()


async def test_parts_rotate_by_size_and_each_plays_alone(tmp_path: Path) -> None:
    harness = RoomHarness(Arena, options={"seed": 1})
    harness.join("ann")
    recorder = Recorder(harness.engine, RecordOptions(tmp_path, max_bytes=800,
                                                      flush_every=3600, compress=True))
    recorder.start()
    for _ in range(12):
        for _ in range(10):
            harness.engine.tick()
            recorder.update(harness.engine.collect())
        await recorder.flush()
    await recorder.close()
    parts = files(tmp_path)
    assert len(parts) >= 2 and all(p.name.endswith(".gsrec.gz") for p in parts)
    for part in parts:
        head, frames = recording.read(gzip.decompress(part.read_bytes()))
        assert frames[0][0] == recording.KEYFRAME  # plays on its own from its start
        replay = open_recording(part.read_bytes())  # gzipped: opened as it is
        replay.seek(replay.duration)
        assert replay.tick == recording.message(*frames[-1][::2])[2]
        replay_views([m for _, m in recording.updates(frames)], head["schema"])
    assert {recording.read(gzip.decompress(p.read_bytes()))[0]["part"] for p in parts} == \
        set(range(1, len(parts) + 1))


async def test_closing_during_a_write_loses_nothing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The room closes while the flush loop's write is still on the disk: close() waits
    for that write instead of cancelling it, so its updates are in the file."""
    harness = RoomHarness(Arena, options={"seed": 1})
    harness.join("ann")
    recorder = Recorder(harness.engine, RecordOptions(tmp_path, flush_every=0.01))
    write = recorder._write
    writing = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_write(path: Path, data: bytes) -> None:  # in the executor's thread
        loop.call_soon_threadsafe(writing.set)
        time.sleep(0.2)
        write(path, data)

    monkeypatch.setattr(recorder, "_write", slow_write)
    recorder.start()
    ticks = []
    for _ in range(5):
        harness.engine.tick()
        recorder.update(harness.engine.collect())
        ticks.append(harness.room.tick)
    await asyncio.wait_for(writing.wait(), 2)  # the loop has taken them and is writing
    await recorder.close()
    [path] = files(tmp_path)
    _, frames = recording.read(path.read_bytes())
    recorded = [m[2] for _, m in recording.updates(frames) if m[0] == codec.S_DELTA]
    assert recorded == ticks


def test_a_cut_file_reads_up_to_the_cut_and_garbage_is_refused() -> None:
    data = recording.header("r", "arena", 20.0, [["T", [["x", "i"]]]], {}, 0.0)
    data += recording.keyframe(0, b"\x00\x90\x90")
    whole = data + recording.delta(50, b"\x01\x00\x90\x90\x90\x90")
    head, frames = recording.read(whole[:-3])
    assert head["room_id"] == "r" and [f[0] for f in frames] == [recording.KEYFRAME]
    with pytest.raises(recording.RecordingError):
        recording.read(b"\x93\x01\x02\x03")
    with pytest.raises(recording.RecordingError):
        recording.read(recording.delta(0, b""))
