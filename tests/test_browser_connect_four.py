"""Connect Four's page (static/games/connect_four/) in Chromium: two players, one
arriving through the lobby, the other on a phone, play a round to four in a row by
clicking columns, see the same result, and start a rematch, watched by a spectator who
came through the lobby's Watch button and cannot play; a third joins from the lobby's
room list; a private room's link; a watch link to a room that does not exist.

Like tests/test_browser.py: Playwright drives Debian's Chromium; skipped without it,
failing when ``CI`` is set. Screenshots go to ``$GAMESERVER_ARTIFACTS``/browser.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .browsing import RECORD_SENT, Console, sent_kinds, shot, state, until

StartServer = Callable[..., Awaitable[Any]]
PAGE = "/play/connect_four/"
C_PING = 3


async def drop(page: Any, col: int) -> None:
    """Wait for our turn, then click the column."""
    await until(page, "s.board.state === 'playing' && s.board.turn === s.playerId")
    await page.click(f"#board .column[data-col='{col}']")


async def test_two_players_play_a_round_and_a_rematch(start_server: StartServer, browser: Any,
                                                      artifacts: Path) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    desktop = await browser.new_context(viewport={"width": 1280, "height": 720})
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                                      is_mobile=True, device_scale_factor=2)
    try:
        # Ann comes through the lobby, which lists every game and links to this one's page.
        ann = await desktop.new_page()
        console.watch(ann, "ann")
        await ann.goto(base + "/")
        await until(ann, "s.screen === 'lobby' && s.pages.connect_four !== undefined")
        assert (await state(ann))["games"] == ["arena", "cards", "connect_four"]
        await ann.click("#play-connect_four")
        await ann.wait_for_url(base + PAGE)
        await until(ann, "s.screen === 'start'")
        await ann.fill("#name", "Ann")
        await ann.click("#quick-play")
        await until(ann, "s.screen === 'game' && s.board !== null")
        assert "Waiting for an opponent" in (await state(ann))["turnText"]
        room = (await state(ann))["roomId"]

        # The lobby lists her room; its join button leads to this page with ?room=.
        lobby = await desktop.new_page()
        console.watch(lobby, "lobby")
        await lobby.goto(base + "/")
        await lobby.wait_for_selector(f"#room-list button[data-room='{room}']"
                                      "[data-game='connect_four']")
        await lobby.close()

        # Bob, on a phone, opens the page directly and quick play finds Ann's room.
        bob = await phone.new_page()
        console.watch(bob, "bob")
        await bob.goto(base + PAGE)
        await until(bob, "s.screen === 'start'")
        await bob.fill("#name", "Bob")
        await bob.click("#quick-play")
        await until(bob, "s.screen === 'game' && s.board && s.board.state === 'playing'")
        assert (await state(bob))["roomId"] == room
        assert await bob.evaluate("location.search") == f"?room={room}"
        sa, sb = await state(ann), await state(bob)
        ann_id, bob_id = sa["playerId"], sb["playerId"]
        # Disc 1 (the first seated) starts round 1, and both pages say so with a countdown.
        await until(ann, f"s.board.turn === {ann_id} && s.turnText.startsWith('Your turn')")
        await until(bob, "/^Ann's turn · \\d+ s$/.test(s.turnText)")
        assert [s["name"] for s in (await state(bob))["seats"]] == ["Ann", "Bob"]
        fits = await bob.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert fits, "the page fits a 390 px phone"

        # Vic watches: the lobby lists the room with its spectators and a Watch button,
        # which opens this page with ?watch=: the board, names, turn and countdown, read-only.
        vic = await desktop.new_page()
        console.watch(vic, "vic")
        await vic.add_init_script(RECORD_SENT)
        await vic.goto(base + "/")
        watch_button = f"#room-list button.watch[data-watch='{room}'][data-game='connect_four']"
        await vic.wait_for_selector(watch_button)
        listed = [r for r in (await state(vic))["rooms"] if r["room_id"] == room]
        assert listed and listed[0]["spectators"] == 0 and listed[0]["players"] == 2
        await vic.click(watch_button)
        await vic.wait_for_url(f"{base}{PAGE}?watch={room}")
        await until(vic, f"s.spectator && s.roomId === '{room}' && s.board "
                         "&& s.board.state === 'playing'")
        sv = await state(vic)
        assert sv["playerId"] == 0 and sv["watching"] and sv["statusText"] == "watching"
        assert sv["screen"] == "game"
        assert [s["name"] for s in sv["seats"]] == ["Ann", "Bob"]
        await until(vic, "/^Ann's turn · \\d+ s$/.test(s.turnText)")
        assert await vic.is_visible("#watching")
        assert await vic.is_visible("#back-to-lobby")
        for hidden in ("#rematch", "#resign", "#leave", "#share-link", "#start"):
            assert not await vic.is_visible(hidden), hidden
        assert await vic.locator("#board .column:disabled").count() == 7
        assert not any(s["name"].endswith("(you)") for s in sv["seats"])
        # The lobby counts the spectator; a spectator holds no seat.
        counter = await desktop.new_page()
        console.watch(counter, "counter")
        await counter.goto(base + "/")
        await until(counter, f"s.rooms.some(r => r.room_id === '{room}' && r.spectators === 1 "
                             "&& r.players === 2)")
        await counter.wait_for_selector(f"#room-list li:has(button.watch[data-watch='{room}']) "
                                        ".watchers:has-text('1 watching')")
        await shot(counter, artifacts, "lobby-room-list-watch")
        await counter.close()
        # A click on a column does nothing: no move is sent, nothing changes.
        await vic.click("#board .column[data-col='3']", force=True)
        await vic.evaluate("() => document.querySelector(\"#board .column[data-col='4']\").click()")
        await asyncio.sleep(0.3)
        sv = await state(vic)
        assert sv["board"]["moves"] == 0 and sv["message"] == ""
        assert set(await sent_kinds(vic)) == {C_PING}, "a spectator sends only pings"

        # Out of turn: the server refuses, and the page says why.
        await bob.click("#board .column[data-col='3']")
        await until(bob, "s.message === 'it is not your turn'")

        # Ann stacks column 0, Bob plays column 1: Ann has four in a row up column 0.
        for _ in range(3):
            await drop(ann, 0)
            await drop(bob, 1)
        await until(ann, "s.board.moves === 6")
        await until(vic, "s.board.moves === 6 && s.board.cells[0] === '1' "
                         "&& s.board.cells[1] === '2'")
        await shot(bob, artifacts, "connect-four-phone-playing")
        await shot(vic, artifacts, "connect-four-watching")
        await drop(ann, 0)
        for page, you in ((ann, "You win"), (bob, "Ann wins")):
            await until(page, f"s.board.state === 'over' && s.board.winner === {ann_id}")
            s = await state(page)
            assert s["board"]["line"] == [0, 7, 14, 21]
            assert s["board"]["reason"] == "four"
            assert s["turnText"].startswith(f"{you} (four in a row)")
            won = await page.eval_on_selector_all(
                "#board .cell.win", "cells => cells.map(c => Number(c.dataset.cell))")
            assert sorted(won) == [0, 7, 14, 21]
            assert await page.is_visible("#rematch")
            assert not await page.is_visible("#resign")
            assert [x["wins"] for x in s["seats"]] == [1, 0]
        # The spectator sees the same result: the winner and the line, and no buttons.
        await until(vic, f"s.board.state === 'over' && s.board.winner === {ann_id}")
        sv = await state(vic)
        assert sv["board"]["line"] == [0, 7, 14, 21]
        assert sv["turnText"].startswith("Ann wins (four in a row)"), sv["turnText"]
        won = await vic.eval_on_selector_all(
            "#board .cell.win", "cells => cells.map(c => Number(c.dataset.cell))")
        assert sorted(won) == [0, 7, 14, 21]
        for hidden in ("#rematch", "#resign", "#leave"):
            assert not await vic.is_visible(hidden), hidden
        assert [x["wins"] for x in sv["seats"]] == [1, 0]
        await shot(vic, artifacts, "connect-four-watching-over")
        await shot(ann, artifacts, "connect-four-won")
        await shot(bob, artifacts, "connect-four-phone-lost")

        # Rematch: both ask; round 2 starts with the other player (Bob) to move.
        await ann.click("#rematch")
        await until(ann, "s.seats.find(x => x.pid === s.playerId).rematch")
        assert await ann.is_disabled("#rematch")
        await bob.click("#rematch")
        for page in (ann, bob):
            await until(page, f"s.board.round === 2 && s.board.state === 'playing' "
                              f"&& s.board.turn === {bob_id} && s.board.moves === 0")
            assert await page.locator("#board .cell.win").count() == 0
        await drop(bob, 3)
        await until(ann, "s.board.cells[3] === '2' && s.board.turn === s.playerId")
        await until(vic, "s.board.round === 2 && s.board.cells[3] === '2' "
                         "&& /^Ann's turn · \\d+ s$/.test(s.turnText)")
        assert set(await sent_kinds(vic)) == {C_PING}, "still only pings"
        # Back to the lobby: the spectator leaves (LEAVE on pagehide); the game goes on.
        await vic.click("#back-to-lobby")
        await vic.wait_for_url(base + "/")
        await until(vic, "s.screen === 'lobby'")

        # Bob resigns round 2; then leaves, and Ann waits for a new opponent.
        await bob.click("#resign")
        await until(ann, "s.board.state === 'over' && s.board.reason === 'resign' "
                         "&& s.turnText.startsWith('You win (resigned)')")
        await bob.click("#leave")
        await until(bob, "s.screen === 'start' && s.message === 'You left the game.'")
        await until(ann, "s.board.state === 'waiting' && s.seats.length === 1")

        # Carol picks Ann's room from the lobby's list: its page opens in that room, and
        # a new match starts (wins back to 0).
        carol = await desktop.new_page()
        console.watch(carol, "carol")
        await carol.goto(base + "/")
        await carol.fill("#name", "Carol")
        await carol.click(f"#room-list button[data-room='{room}']")
        await carol.wait_for_url(f"{base}{PAGE}?room={room}")
        await until(carol, f"s.roomId === '{room}' && s.board && s.board.state === 'playing'")
        await until(ann, "s.board.round === 1 && s.seats.map(x => x.name).join() === 'Ann,Carol' "
                         "&& s.seats.every(x => x.wins === 0)")
        console.check()
    finally:
        await desktop.close()
        await phone.close()


async def test_a_private_game_by_link(start_server: StartServer, browser: Any) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    console.allow_http_errors("/matchmake", 404, 409)
    context = await browser.new_context()
    try:
        host = await context.new_page()
        console.watch(host, "host")
        await host.goto(base + PAGE)
        await host.click("#create")
        await until(host, "s.screen === 'game' && s.board !== null")
        link = (await state(host))["shareLink"]
        assert link == f"{base}{PAGE}?room={(await state(host))['roomId']}"
        guest = await context.new_page()
        console.watch(guest, "guest")
        await guest.goto(link)  # straight into the room, no start screen
        await until(guest, "s.screen === 'game' && s.board && s.board.state === 'playing'")
        await until(host, "s.board.state === 'playing'")
        # A third player's link: the room is locked with two, so the page says so.
        third = await context.new_page()
        console.watch(third, "third")
        await third.goto(link)
        await until(third, "s.screen === 'start' && s.message !== ''")
        assert await third.evaluate("location.search") == ""
        print("third player told:", (await state(third))["message"])
        # A watch link to a room that does not exist: the start screen says so.
        nobody = await context.new_page()
        console.watch(nobody, "nobody")
        await nobody.goto(f"{base}{PAGE}?watch=NOSUCHROOM")
        await until(nobody, "s.screen === 'start' && s.message !== ''")
        assert "doesn't exist" in (await state(nobody))["message"]
        assert not (await state(nobody))["spectator"]
        assert await nobody.evaluate("location.search") == ""
        console.check()
    finally:
        await context.close()


def test_the_page_is_plain_files_on_the_sdk() -> None:
    """No build step and nothing inline (the CSP would block it): one module that imports
    only the SDK, its own stylesheet, and the shared theme."""
    folder = Path(__file__).resolve().parent.parent / "static" / "games" / "connect_four"
    assert sorted(p.name for p in folder.iterdir()) == [
        "connect_four.css", "connect_four.js", "index.html"]
    html = (folder / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="module" src="connect_four.js">']
    assert not re.search(r"<style|\sstyle=|\son\w+=", html, re.I), "inline style or handler"
    source = (folder / "connect_four.js").read_text()
    assert re.findall(r'^import .* from "([^"]+)";', source, re.M) == ["/sdk/gameserver.js"]
