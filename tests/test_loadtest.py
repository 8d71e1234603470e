"""The load tester against a real server, and the pure helpers of the bench runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import pytest

from gameserver.core.room import Player
from gameserver.games.arena import Arena
from loadtest import bench, roombench, roomticks, wsclient
from loadtest.cli import build_parser, options_from, write_reports
from loadtest.cli import main as cli_main
from loadtest.options import Options, bot_kind, plan_groups, sampled_indices, split_groups
from loadtest.procstat import parse_proc_stat
from loadtest.runner import Runner, summary_table
from loadtest.stats import percentile

REPORT_KEYS = ("connected", "failed", "disconnected", "latency_ms", "updates_per_s",
               "bytes_in_per_client_s", "bytes_out_per_client_s", "server_tick_ms",
               "duration_s", "options")


async def _load(start_server: Callable[..., Any], **kw: Any) -> dict[str, Any]:
    server = await start_server(max_players=64)
    url = str(server.make_url("")).rstrip("/")
    opts = Options(url=url, ramp=100.0, duration=3.0, warmup=0.5, input_rate=20.0,
                   seed=7, quiet=True, **kw)
    return await Runner(opts).run()


def _check(report: dict[str, Any], players: int) -> None:
    for key in REPORT_KEYS:
        assert key in report, key
    assert report["connected"] == players
    assert report["failed"] == 0 and report["disconnected"] == 0, report["failures"]
    assert report["clients_in_window"] == players
    assert 2.5 <= report["duration_s"] <= 4.5
    ups = report["updates_per_s"]
    assert ups["median"] >= 17, ups  # the server ticks at 20 Hz
    assert ups["min"] >= 15, ups
    assert ups["median"] <= 21, ups
    lat = report["latency_ms"]
    assert lat["samples"] > players * 20  # ~20 inputs/s each for 3 s
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["p50"] < 200  # one tick is 50 ms; loopback adds little
    assert report["bytes_in_per_client_s"] > 0 and report["bytes_out_per_client_s"] > 0
    # 20 inputs/s of ~16 bytes each, framed and masked
    assert 200 < report["bytes_out_per_client_s"] < 800
    assert report["server_tick_ms"]["p50"] is not None
    assert report["server_tick_ms"]["p99"] >= report["server_tick_ms"]["p50"]
    sample = report["sample"]
    assert sample["bots"] >= 1
    assert sample["replica_errors"] == 0
    assert sample["avatar_checks"] > 20 and sample["avatar_mismatches"] == 0
    assert sample["bytes_per_moving_entity"] > 0
    assert report["server"]["cpu_s"] is not None
    assert [p["t"] for p in report["timeline"]] == list(range(1, len(report["timeline"]) + 1))
    assert any(p["phase"] == "window" for p in report["timeline"])


@pytest.mark.timeout(60)
async def test_rooms_of_eight_over_two_workers(start_server: Callable[..., Any],
                                               tmp_path: Path) -> None:
    report = await _load(start_server, players=24, per_room=8, workers=2, sample=0.1)
    _check(report, 24)
    assert report["loadgen"]["workers"] == 2
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    write_reports(report, str(json_path), str(html_path))
    assert json.loads(json_path.read_text())["connected"] == 24
    page = html_path.read_text()
    assert page.count("<svg") >= 5 and "<polyline" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        report["options"]["url"], "")  # self-contained: nothing to fetch


@pytest.mark.timeout(60)
async def test_one_room_split_over_two_workers(start_server: Callable[..., Any]) -> None:
    report = await _load(start_server, players=30, one_room=True, workers=2, sample=2)
    _check(report, 30)
    assert report["server"]["rooms"] == 1
    assert report["sample"]["bots"] == 2


@pytest.mark.timeout(30)
async def test_spectators_watch_and_hold_no_seat(start_server: Callable[..., Any]) -> None:
    server = await start_server(max_players=64, max_spectators=8)
    url = str(server.make_url("")).rstrip("/")
    opts = Options(url=url, players=2, one_room=True, spectators=3, ramp=100.0, duration=1.5,
                   warmup=0.5, input_rate=20.0, seed=3, quiet=True)
    runner = Runner(opts)
    report = await runner.run()
    assert report["failed"] == 0 and report["disconnected"] == 0, report["failures"]
    assert report["connected"] == report["clients_in_window"] == 2  # players only
    spec = report["spectators"]
    assert spec["requested"] == spec["connected"] == spec["clients_in_window"] == 3
    assert spec["failed"] == spec["disconnected"] == 0
    assert spec["updates_per_s"]["min"] >= 15  # the room's 20 Hz, like the players
    assert spec["updates_total"] >= 3 * 20 and spec["bytes_in_per_client_s"] > 0
    assert report["updates_total"] < 2 * 21 * 2  # spectator updates are not counted there
    # the room (created with max_players 2) as /stats saw it in the run: full, 3 watching
    rooms = (runner.last_stats or {})["rooms"]
    assert [(r["players"], r["spectators"]) for r in rooms] == [(2, 3)]
    assert any(p["spectators_connected"] == 3 and p["spectator_updates_per_s"] > 0
               for p in report["timeline"] if p["phase"] == "window")


class Tagged(Arena):
    """The arena, keeping the options every room was created with and every player sent."""

    game = "tagged"
    match_by = ("world",)
    created: ClassVar[list[dict[str, Any]]] = []
    joined: ClassVar[list[dict[str, Any]]] = []

    def on_create(self, options: dict[str, Any]) -> None:
        super().on_create(options)
        Tagged.created.append(dict(options))

    def on_join(self, player: Player) -> None:
        super().on_join(player)
        Tagged.joined.append(dict(player.options))


@pytest.mark.timeout(30)
async def test_options_go_in_every_bots_matchmaking(start_server: Callable[..., Any]) -> None:
    Tagged.created.clear()
    Tagged.joined.clear()
    server = await start_server((Tagged,), max_players=64)
    url = str(server.make_url("")).rstrip("/")
    options = {"world": "large", "max_players": 99, "note": [1, "x"]}
    opts = Options(url=url, game="tagged", game_options=options, players=5, per_room=3,
                   ramp=100.0, duration=1.0, warmup=0.3, input_rate=20.0, seed=5, quiet=True)
    report = await Runner(opts).run()
    assert report["connected"] == 5 and report["failed"] == 0, report["failures"]
    assert report["updates_per_s"]["min"] >= 15
    # rooms of --per-room: its max_players wins over the one in --options
    assert Tagged.created == [{**options, "max_players": 3}, {**options, "max_players": 2}]
    assert sorted(map(len, Tagged.joined)) == [3] * 5  # creators and joiners alike
    assert {json.dumps(o, sort_keys=True) for o in Tagged.joined} == {
        json.dumps({**options, "max_players": n}, sort_keys=True) for n in (3, 2, 99)}
    assert report["options"]["game_options"] == options
    table = summary_table(report)
    assert table.splitlines()[0].split() == [
        "game", "tagged", "{\"world\":", "\"large\",", "\"max_players\":", "99,",
        "\"note\":", "[1,", "\"x\"]}"]


def test_options_must_be_a_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    parse = build_parser().parse_args
    assert options_from(parse(["--options", '{"world": "large"}'])).game_options == {
        "world": "large"}
    assert options_from(parse([])).game_options == {}
    for bad, says in (("[1, 2]", "must be a JSON object"), ('"large"', "must be a JSON object"),
                      ("{world: large}", "not JSON")):
        with pytest.raises(SystemExit) as exited:
            cli_main(["--options", bad, "--players", "1"])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "--options" in err and says in err, err


# -- pure helpers --------------------------------------------------------------------

def test_frames_and_acks() -> None:
    for n in (0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1):
        packed = wsclient.pack_uint(n)
        assert packed == msgpack.packb(n)
        assert wsclient.read_uint(b"\x98\x0c" + packed + b"\x00", 2) == n
    assert wsclient.read_uint(b"\xc0", 0) == -1
    small = wsclient.mask_frame(wsclient.OP_BINARY, b"\x93\x01\x05\x92\x10\x20")
    assert small[0] == 0x82 and small[1] == 0x80 | 6 and small[2:6] == wsclient.MASK_KEY
    unmasked = bytes(b ^ wsclient.MASK_KEY[i % 4] for i, b in enumerate(small[6:]))
    assert msgpack.unpackb(unmasked) == [1, 5, [16, 32]]


def _unmask(data: bytes) -> tuple[int, bytes]:
    """A client frame as the server reads it: (first byte, payload)."""
    opcode, start, end = wsclient.frame_at(bytes((data[0], data[1] & 0x7F)) + data[2:], 0)
    assert opcode == data[0] & 0x0F and end == len(data) - 4  # the key is not counted
    key, masked = data[start:start + 4], data[start + 4:]
    return data[0], bytes(b ^ key[i % 4] for i, b in enumerate(masked))


@pytest.mark.parametrize("n", [0, 1, 5, 125, 126, 65535, 65536])
def test_client_frames_of_any_size_and_server_frames_in_parts(n: int) -> None:
    payload = bytes(i % 251 for i in range(n))
    assert _unmask(wsclient.frame(payload)) == (0x82, payload)
    assert _unmask(wsclient.frame(payload, wsclient.OP_CONTINUATION, fin=False)) == (0x00, payload)
    zero = wsclient.frame(payload, wsclient.OP_PING, mask=bytes(4))
    assert zero.endswith(bytes(4) + payload)  # a zero key leaves the payload as is
    # the same payload as a server (unmasked) frame, arriving a byte at a time
    server = zero[:1] + bytes((zero[1] & 0x7F,)) + zero[2:-n - 4] + payload
    whole = len(server) + 2
    for cut in (*range(min(len(server), 11)), len(server) - 1):
        # incomplete: what is missing (the next read's bound) never reaches past the frame
        assert cut + 2 < wsclient.frame_at(b"xx" + server[:cut], 2)[2] <= whole
    assert wsclient.frame_at(b"xx" + server, 2) == (wsclient.OP_PING, whole - n, whole)
    assert wsclient.close_code(b"\x03\xe8bye") == 1000 and wsclient.close_code(b"") == 1005
    assert wsclient.frame_at(bytes((0x88, 0))) == (wsclient.OP_CLOSE, 2, 2)


def test_plans() -> None:
    assert sampled_indices(100, 0.05) == frozenset({0, 20, 40, 60, 80})
    assert sampled_indices(10, 0.01) == frozenset({0})  # at least one
    assert sampled_indices(10, 3) == frozenset({0, 3, 6})
    groups = plan_groups(Options(players=20, per_room=8))
    assert [len(g.bots) for g in groups] == [8, 8, 4]
    split = split_groups(groups, 2)
    assert sorted(sum(len(g.bots) for g in w) for w in split) == [8, 12]
    one = split_groups(plan_groups(Options(players=5, one_room=True)), 2)
    assert [w[0].bots for w in one] == [(0, 2, 4), (1, 3)]
    # spectators get the indices after the players', dealt round-robin over the rooms
    opts = Options(players=20, per_room=8, spectators=5, idle_players=3)
    groups = plan_groups(opts)
    assert [g.spectators for g in groups] == [(20, 23), (21, 24), (22,)]
    assert [bot_kind(opts, i) for i in (0, 16, 17, 19, 20)] == [
        "player", "player", "idle", "idle", "spectator"]
    one = split_groups(plan_groups(Options(players=5, one_room=True, spectators=3)), 2)
    assert [w[0].spectators for w in one] == [(5, 7), (6,)]


def test_bench_helpers() -> None:
    stat = "4242 (python -m (x) y) S 1 2 3 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 3 0"
    assert parse_proc_stat(stat, 100) == (2.5, 0.75)
    assert bench.parse_serving_line(
        "gameserver: serving on http://127.0.0.1:40131/ (Ctrl-C to stop)") == 40131
    assert bench.parse_serving_line("something else") is None
    report = {"failed": 0, "disconnected": 0, "updates_per_s": {"min": 19.5, "median": 20.0},
              "server_tick_ms": {"p50": 1.0, "p99": 24.0}}
    assert bench.service_level_held(report)
    assert not bench.service_level_held({**report, "server_tick_ms": {"p50": 1, "p99": 25.0}})
    assert not bench.service_level_held({**report, "updates_per_s": {"min": 18.9}})
    rows = [{"cpu_us": 10.0, "held": True}, {"cpu_us": 30.0, "held": False},
            {"cpu_us": 12.0, "held": True}]
    assert bench.median_row(rows) == {"cpu_us": 12.0, "held": "2/3"}
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile([], 50) is None
    table = bench.markdown_table([{"scenario": "S1", "cpu_us": 12.345, "held": "3/3"}])
    assert "| S1 | 12.3 |" in table and table.count("\n") == 2


def test_bench_scenarios_by_name() -> None:
    s3 = bench.lookup("S3", 200)
    assert s3 is not None and (s3.players, s3.per_room) == (400, None)
    opts = s3.options("http://x", 5.0, 1.0, 1, (1,))
    assert (opts.one_room, opts.players, opts.game_options) == (True, 400, {"world": "large"})
    assert opts.create_options(400) == {"world": "large", "max_players": 400}
    sized = {k: bench.lookup(k, 200) for k in ("S3@50", "S2@7", "S2@400", "S1")}
    assert {k: (v.players, v.game_options) for k, v in sized.items() if v} == {
        "S3@50": (50, {"world": "large"}), "S2@7": (7, {}), "S2@400": (400, {}),
        "S1": (200, {})}
    for bad in ("S3@501", "S2@0", "S3@", "S4", "s3", "S1@8"):
        assert bench.lookup(bad, 200) is None, bad
    cond = {k: "-" for k in ("date", "commit", "cpu", "cpus", "kernel", "python", "aiohttp",
                             "uvloop", "msgpack")}
    blank = {k: None for k, _ in bench.COLUMNS}
    rows = [{**blank, "key": k, "scenario": name, "bytes_client_s": b} for k, name, b in (
        ("S2@400", "S2 one room of 400", 36000.0),
        ("S3", "S3 one room of 400, large world", 9000.0),
        ("S3@50", "S3 one room of 50, large world", 2000.0))]
    doc = bench.render_markdown(rows, cond, "python -m loadtest.bench", 1, 5.0, "pinned")
    assert ("S3 one room of 400, large world: 9,000 B/s against 36,000 in "
            "S2 one room of 400 (25%); S3 one room of 50, large world: 2,000 B/s") in doc
    assert "--options '{\"world\": \"large\"}'" in doc
    assert "views (issue 14), S3 against S2 at the\n  same size: not run" in \
        bench.render_markdown(rows[:1], cond, "c", 1, 5.0, "pinned")


def test_bench_refuses_unknown_scenarios_before_starting_anything(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.main(["--scenarios", "S1,S2@400,S3,S3@9000,S5", "--out", ""])
    assert exited.value.code == 2
    assert "unknown scenarios: S3@9000, S5 (" in capsys.readouterr().err


def test_bench_keeps_hand_written_notes() -> None:
    first = bench.keep_notes("# Generated 1\n", "")
    assert first.endswith(bench.NOTES_MARKER + "\n")
    edited = first + "\n## Profile\nhand-written\n"
    second = bench.keep_notes("# Generated 2\n", edited)
    assert second.startswith("# Generated 2") and second.endswith("## Profile\nhand-written\n")
    assert "Generated 1" not in second


def test_spectator_cost_derivation() -> None:
    from loadtest import spectators as sp

    def row(case: str, cpu: float, spec: float = 0.0, idle: float = 0.0) -> dict[str, Any]:
        return {"case": case, "cpu_per_s": cpu, "player_ups": 160.0, "idle_ups": idle,
                "spec_ups": spec}

    rows = [row("base", 0.02), row("spec", 0.05, spec=4000), row("idle", 0.06, idle=4000),
            row("base", 0.01), row("spec", 0.04, spec=4000), row("idle", 0.05, idle=4000)]
    s = sp.summarise(rows)
    assert s["spec_us"] == pytest.approx(7.5) and s["idle_us"] == pytest.approx(10.0)
    assert s["ratio"] == pytest.approx(0.75)
    assert [p["spec_us"] for p in s["per_repeat"]] == pytest.approx([7.5, 7.5])
    assert sp.derive(0.1, 0.2, 0) is None
    opts = sp.case_options("idle", "http://x", 200, 5.0, 1, ())
    assert (opts.players, opts.idle_players, opts.spectators, opts.one_room) == (208, 200, 0, True)
    opts = sp.case_options("spec", "http://x", 200, 5.0, 1, ())
    assert (opts.players, opts.idle_players, opts.spectators) == (8, 0, 200)


async def test_roomticks_measures_empty_rooms_ticking_on_one_task() -> None:
    result = await roomticks.measure(rooms=4, seconds=0.5, warmup=0.2)
    assert result["rooms"] == 4 and 7 <= result["room_ticks"] <= 44  # 4 rooms x ~10 ticks
    assert 15 <= result["rate_hz"] <= 25 and result["cpu_us_per_room_tick"] > 0
    await asyncio.sleep(0.1)  # the rooms' task ends at its next deadline (50 ms) after them
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "rooms" and not t.done()]


def test_roomticks_refuses_silly_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        roomticks.main(["--rooms", "0"])
    assert "--rooms is 1..10000" in capsys.readouterr().err


def test_roombench_drives_the_servers_own_path_and_times_each_stage(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Inputs go through the receive chain and are applied (acks, positions); every
    stage is timed; a large world's views show up as parts and as fewer bytes."""
    room = roombench.Bench(Arena, 20, {})
    before = {pid: (s.player.data["avatar"].x, s.player.data["avatar"].y)
              for pid, s in room.host.engine.seats.items()}
    spent = room.run(12)
    seats = room.host.engine.seats
    assert {s.player.ack for s in seats.values()} == {12}
    assert all((s.player.data["avatar"].x, s.player.data["avatar"].y) != before[pid]
               for pid, s in seats.items())
    assert spent["bytes"] > 0 and all(t.writes >= 12 for t in room.transports)
    small = roombench.main(["--players", "40", "--ticks", "30", "--warmup", "5",
                            "--repeats", "1", "--json"])
    large = roombench.main(["--players", "40", "--ticks", "30", "--warmup", "5",
                            "--repeats", "1", "--json", "--options", '{"world": "large"}'])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [small, large]
    for row in rows:
        assert all(row[stage] > 0 for stage in ("receive", "tick", "collect", "send"))
        assert row["total"] >= row["receive"] + row["tick"]
    assert small["parts"] == 0 < large["parts"]
    assert 0 < large["bytes_per_update"] < small["bytes_per_update"]
    roombench.main(["--game", "loadtest.movement:Movement", "--players", "3", "--ticks", "2",
                    "--warmup", "0", "--repeats", "1"])
    assert "loadtest.movement:Movement {}, 3 players: receive" in capsys.readouterr().out


@pytest.mark.parametrize("args, error", [
    (["--players", "0"], "--players is 1..5000"),
    (["--options", "[1]"], "must be a JSON object"),
    (["--options", "{"], "not JSON"),
    (["--game", "arena.py"], "expected module:Class"),
])
def test_roombench_refuses_silly_arguments(args: list[str], error: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        roombench.main(args)
    assert error in capsys.readouterr().err
