"""Crazy Eights' page (static/games/cards/) in Chromium: Ann opens it from the lobby,
Bob joins her room from the lobby's room list on a phone and plays at 320 px, and they
play a round to a win by clicking cards, the draw pile, Pass and a suit for an eight;
each page shows its own hand's faces and only the backs of the other's, a spectator
sees no hand at all; then a rematch.

Like tests/test_browser_connect_four.py: Playwright drives Debian's Chromium; skipped
without it, failing when ``CI`` is set. Screenshots go to ``$GAMESERVER_ARTIFACTS``/browser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gameserver.games.cards import Cards
from gameserver.web.keys import MANAGER

from .browsing import Console, shot, state, until

StartServer = Callable[..., Awaitable[Any]]
PAGE = "/play/cards/"
# Ann holds six hearts and an eight on the 9 of hearts; Bob cards that never fit hers.
ANN = [(1, "H"), (2, "H"), (3, "H"), (4, "H"), (5, "H"), (6, "H"), (8, "C")]
BOB = [(10, "C"), (11, "C"), (12, "C"), (13, "C"), (10, "S"), (11, "S"), (12, "S")]
TOP = (9, "H")


def rig(room: Cards, pid: int, faces: list[tuple[int, str]]) -> None:
    """Give ``pid``'s hand these faces, swapping with the cards that had them."""
    held = sorted((c for c in room.cards if c.owner == pid), key=lambda c: c.order)
    for card, (rank, suit) in zip(held, faces, strict=True):
        other = next(c for c in room.cards if (c.rank, c.suit) == (rank, suit))
        card.rank, card.suit, other.rank, other.suit = rank, suit, card.rank, card.suit


async def move(page: Any, me: int, draw_only: bool = False) -> str:
    """Take one turn through the page's UI: a card that fits (an eight last, naming
    hearts), else (or always, ``draw_only``) draw, then play the drawn card if it fits
    (not ``draw_only``) or Pass. What was done."""
    await until(page, f"s.table.state !== 'playing' || (s.table.turn === {me} "
                      "&& s.hand.every(c => c.rank !== null))")
    s = await state(page)
    if s["table"]["state"] != "playing":
        return "over"
    fits = [c for c in s["hand"] if c["playable"] and not draw_only]
    plain = [c for c in fits if c["rank"] != 8]
    done = f"s.table.turn !== {me} || s.table.state !== 'playing'"
    if plain:
        await page.click(f"#hand .card[data-id='{plain[0]['id']}']")
        await until(page, done)
        return "play"
    if fits:
        await page.click(f"#hand .card[data-id='{fits[0]['id']}']")
        await until(page, "s.choosingSuit")
        await page.click("#suits button[data-suit='H']")
        await until(page, done)
        return "eight"
    await page.click("#draw")
    await until(page, "s.table.drawn !== 0 && s.hand.some(c => c.id === s.table.drawn)")
    s = await state(page)
    drawn = next(c for c in s["hand"] if c["id"] == s["table"]["drawn"])
    if drawn["playable"] and not draw_only:
        await page.click(f"#hand .card[data-id='{drawn['id']}']")
        await until(page, done)
        return "draw+play"
    await page.click("#pass")
    await until(page, done)
    return "draw+pass"


async def test_two_players_play_a_round_to_a_win(start_server: StartServer, browser: Any,
                                                 artifacts: Path) -> None:
    # Clicks come faster than a person's: above the default room-message budget.
    server = await start_server(message_rate=10.0)
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    desktop = await browser.new_context(viewport={"width": 1280, "height": 720})
    # Bob's phone: the lobby is wider than a phone (about 510 px), so he picks the room
    # there at a width it fits, and the game page then has to fit 320 px.
    phone = await browser.new_context(viewport={"width": 800, "height": 640}, has_touch=True,
                                      device_scale_factor=2)
    try:
        # Ann comes through the lobby, which links to this game's page.
        ann = await desktop.new_page()
        console.watch(ann, "ann")
        await ann.goto(base + "/")
        await until(ann, "s.screen === 'lobby' && s.pages.cards !== undefined")
        assert "cards" in (await state(ann))["games"]
        await ann.click("#play-cards")
        await ann.wait_for_url(base + PAGE)
        await until(ann, "s.screen === 'start'")
        await ann.fill("#name", "Ann")
        await ann.click("#quick-play")
        await until(ann, "s.screen === 'game' && s.table !== null")
        assert (await state(ann))["turnText"] == "Waiting for 1 more player…"
        room_id = (await state(ann))["roomId"]

        # Bob, on a phone, picks her room from the lobby's list.
        bob = await phone.new_page()
        console.watch(bob, "bob")
        await bob.goto(base + "/")
        await bob.fill("#name", "Bob")
        button = f"#room-list button[data-room='{room_id}'][data-game='cards']"
        await bob.wait_for_selector(button)
        await bob.click(button)
        await bob.wait_for_url(f"{base}{PAGE}?room={room_id}")
        await bob.set_viewport_size({"width": 320, "height": 640})
        await until(bob, "s.screen === 'game' && s.table && s.table.state === 'playing'")
        ann_id, bob_id = (await state(ann))["playerId"], (await state(bob))["playerId"]

        # Deal the hands this test plays (the deal happened as Bob sat down).
        room = server.app[MANAGER].room_hosts[room_id].room
        assert isinstance(room, Cards)
        top = room.discard[-1]
        other = next(c for c in room.cards if (c.rank, c.suit) == TOP)
        top.rank, top.suit, other.rank, other.suit = TOP[0], TOP[1], top.rank, top.suit
        room.table.suit = "H"
        rig(room, ann_id, ANN)
        rig(room, bob_id, BOB)
        for page, faces in ((ann, ANN), (bob, BOB)):
            shown = [[r, s] for r, s in faces]
            await until(page, f"JSON.stringify(s.hand.map(c => [c.rank, c.suit])) === "
                              f"'{_json(shown)}' && s.top.rank === 9 && s.top.suit === 'H'")
            # Its own hand's faces, the other's backs, never a face it must not know.
            s = await state(page)
            assert s["hiddenFaces"] == 0 and s["cards"] == 52
            assert [x["name"] for x in s["seats"]] == ["Ann", "Bob"]
            assert len(await page.query_selector_all("#hand .card")) == 7
            assert await page.locator(".seat .n").all_inner_texts() == ["7", "7"]
            assert await page.inner_text("#draw-count") == "37"
        await until(ann, "s.turnText === 'Your turn: play a card, or draw'")
        await until(bob, "s.turnText === \"Ann's turn\"")
        assert await bob.evaluate("document.documentElement.scrollWidth <= innerWidth"), \
            "the page fits a 320 px phone"
        await shot(bob, artifacts, "cards-phone-playing")

        # Vic watches: the table and the hand sizes, no faces but the discard pile's.
        vic = await desktop.new_page()
        console.watch(vic, "vic")
        await vic.goto(f"{base}{PAGE}?watch={room_id}")
        await until(vic, "s.spectator && s.table && s.table.state === 'playing' "
                         "&& s.top && s.top.rank === 9")
        sv = await state(vic)
        assert sv["hand"] == [] and sv["hiddenFaces"] == 0 and sv["playerId"] == 0
        assert not await vic.is_visible("#hand") and not await vic.is_visible("#play-buttons")

        # Out of turn: the server refuses, and the page says why.
        await bob.click("#hand .card >> nth=0")
        await until(bob, "s.message === 'it is not your turn'")

        moves: list[str] = []
        for _ in range(30):
            s = await state(ann)
            if s["table"]["state"] != "playing":
                break
            if s["table"]["turn"] == ann_id:
                moves.append("ann:" + await move(ann, ann_id))
            else:
                moves.append("bob:" + await move(bob, bob_id, draw_only=True))
            for page in (ann, bob):
                assert (await state(page))["hiddenFaces"] == 0
        print("moves:", moves)
        # Bob only draws, so the suit stays hearts: six hearts, then the eight.
        assert moves[::2] == ["ann:play"] * 6 + ["ann:eight"]
        assert moves[1::2] == ["bob:draw+pass"] * 6

        for page, text in ((ann, "You win (no cards left)"), (bob, "Ann wins (no cards left)")):
            await until(page, f"s.table.state === 'over' && s.table.winner === {ann_id}")
            s = await state(page)
            assert s["turnText"] == f"{text}. Round 1 is over.", s["turnText"]
            assert s["table"]["reason"] == "out"
            assert [x["wins"] for x in s["seats"]] == [1, 0]
            assert await page.is_visible("#rematch")
        await until(vic, "s.table.state === 'over' && s.turnText.startsWith('Ann wins')")
        assert (await state(vic))["hiddenFaces"] == 0
        await shot(ann, artifacts, "cards-won")
        await shot(bob, artifacts, "cards-phone-lost")

        # Rematch: both ask; round 2 is dealt and Bob starts it.
        await ann.click("#rematch")
        await until(ann, "s.seats.find(x => x.pid === s.playerId).rematch")
        await bob.click("#rematch")
        for page in (ann, bob):
            await until(page, f"s.table.round === 2 && s.table.state === 'playing' "
                              f"&& s.table.turn === {bob_id} && s.hand.length === 7 "
                              "&& s.hand.every(c => c.rank !== null) && s.hiddenFaces === 0")
        console.check()
    finally:
        await desktop.close()
        await phone.close()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def test_the_page_is_plain_files_on_the_sdk() -> None:
    """No build step and nothing inline (the CSP would block it): one module that imports
    only the SDK, its own stylesheet, and the shared theme."""
    folder = Path(__file__).resolve().parent.parent / "static" / "games" / "cards"
    assert sorted(p.name for p in folder.iterdir()) == ["cards.css", "cards.js", "index.html"]
    html = (folder / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="cards.js">']
    assert not re.search(r"<style|\sstyle=|\son\w+=", html, re.I), "inline style or handler"
    source = (folder / "cards.js").read_text()
    assert re.findall(r'^import .* from "([^"]+)";', source, re.M) == ["/sdk/gameserver.js"]
