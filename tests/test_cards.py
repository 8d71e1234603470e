"""cards, Crazy Eights with hidden hands: its rules played through ``gameserver.testing``
(what each player receives is what is asserted), and its privacy: no player's replica
ever holds the face of a card outside their hand and the discard pile."""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

import aiohttp
import pytest

from gameserver import InvalidOption, Settings
from gameserver.core.limits import Limits
from gameserver.games.cards import DECK, SUITS, Card, Cards
from gameserver.testing import HarnessPlayer, JoinRefused, RoomHarness

from .client import MatchmakeFailed, Player, matchmake
from .doctables import DOC, table_after

Face = tuple[int, str]
# The tests' players move as fast as the ticks go, faster than the server's default room
# message budget (2 a second) lets a person.
FAST = Limits.from_settings(Settings(message_rate=100.0))


# -- what a player sees --------------------------------------------------------------------

def table(player: HarnessPlayer) -> dict[str, Any]:
    return player.entity("Table").values


def seat(player: HarnessPlayer, of: HarnessPlayer | None = None) -> dict[str, Any]:
    return player.entity("Seat", pid=(of or player).id).values


def cards(player: HarnessPlayer) -> dict[int, dict[str, Any]]:
    return {e.id: e.values for e in player.entities("Card")}


def hand(player: HarnessPlayer, of: HarnessPlayer | None = None) -> list[int]:
    """Card ids in ``of``'s hand as ``player`` sees them, in the order they came."""
    pid = (of or player).id
    held = [(v["order"], i) for i, v in cards(player).items() if v["owner"] == pid]
    return [i for _, i in sorted(held)]


def faces(player: HarnessPlayer) -> list[Face]:
    known = cards(player)
    return [(known[i]["rank"], known[i]["suit"]) for i in hand(player)]


def top(player: HarnessPlayer) -> Face:
    card = cards(player)[table(player)["top"]]
    return card["rank"], card["suit"]


def playable(player: HarnessPlayer, card_id: int) -> bool:
    """The rule, from what the player knows: rank or suit to follow, or an eight."""
    card, t = cards(player)[card_id], table(player)
    return card["rank"] == 8 or card["suit"] == t["suit"] or card["rank"] == top(player)[0]


# -- setting the table (server side, before the next update) ---------------------------------

def swap_face(room: Cards, card: Card, face: Face) -> None:
    """Give ``card`` this face, and the card that had it ``card``'s: still one deck."""
    other = next(c for c in room.cards if (c.rank, c.suit) == face)
    card.rank, card.suit, other.rank, other.suit = face[0], face[1], card.rank, card.suit


def rig(harness: RoomHarness, top_face: Face, **hands: list[Face]) -> None:
    """Put ``top_face`` on the discard pile and these faces in the named players' hands
    (the first cards of each hand; by player name)."""
    room = harness.room
    assert isinstance(room, Cards)
    swap_face(room, room.discard[-1], top_face)
    room.table.suit = top_face[1]
    for name, wanted in hands.items():
        pid = next(p.id for p in harness.players if p.name == name)
        held = sorted((c for c in room.cards if c.owner == pid), key=lambda c: c.order)
        for card, face in zip(held, wanted, strict=False):
            swap_face(room, card, face)


def match(players: int = 2, seed: int = 1, **options: Any
          ) -> tuple[RoomHarness, list[HarnessPlayer]]:
    """A dealt room of ``players`` (ann first, to move), before its first update."""
    harness = RoomHarness(Cards, {"players": players, **options} if players != 2 else options,
                          limits=FAST)
    harness.room.rng = random.Random(seed)  # type: ignore[attr-defined]
    seated = [harness.join(name) for name in ("ann", "bob", "cat", "dan")[:players]]
    return harness, seated


def mover(players: list[HarnessPlayer]) -> HarnessPlayer:
    turn = table(players[0])["turn"]
    return next(p for p in players if p.id == turn)


def take_turn(harness: RoomHarness, players: list[HarnessPlayer], *,
              draw_first: bool = False, pass_drawn: bool = False) -> str:
    """The player to move plays the first playable card of their hand (an eight names its
    own suit), else draws (then plays the drawn card if it fits, unless ``pass_drawn``,
    else passes), else passes; ``draw_first`` draws whenever there is something to draw.
    What they did."""
    p = mover(players)
    refused = len(p.errors)
    fits = [c for c in hand(p) if playable(p, c)]
    did = ""
    if fits and not draw_first:
        did = "play"
        send_play(p, fits[0])
    elif table(p)["draw_count"]:
        p.send("draw", None)
        harness.tick()
        drawn = table(p)["drawn"]
        assert drawn == hand(p)[-1]
        if playable(p, drawn) and not pass_drawn:
            send_play(p, drawn)
            did = "draw+play"
        else:
            p.send("pass", None)
            did = "draw+pass"
    else:
        p.send("pass", None)
        did = "pass"
    assert p.errors[refused:] == []
    harness.tick()
    return did


def send_play(player: HarnessPlayer, card_id: int) -> None:
    rank, suit = cards(player)[card_id]["rank"], cards(player)[card_id]["suit"]
    player.send("play", {"card": card_id, "suit": suit} if rank == 8 else {"card": card_id})


def check_privacy(harness: RoomHarness, players: list[HarnessPlayer]) -> int:
    """Each player's replica has the true face of every card in their hand and on the
    discard pile, and no face of any other card. How many faces were seen."""
    room = harness.room
    assert isinstance(room, Cards)
    seen = 0
    for p in players:
        if not p.connected:
            continue
        for card in room.cards:
            values = cards(p)[card.id]
            assert (values["owner"], values["place"]) == (card.owner, card.place)
            if card.place == "discard" or card.owner == p.id:
                assert (values["rank"], values["suit"]) == (card.rank, card.suit), (p, card)
                seen += 1
            else:
                assert (values["rank"], values["suit"]) == (None, None), (p, card, values)
    return seen


# -- dealing and seats ---------------------------------------------------------------------

def test_two_players_are_dealt_seven_cards_each_and_the_room_locks() -> None:
    harness = RoomHarness(Cards)
    ann = harness.join("ann")
    harness.tick()
    assert ann.config == {"players": 2, "hand": 7, "deck": 52, "eight": 8,
                          "suits": ["C", "D", "H", "S"]}
    assert ann.welcome[5] == 4.0
    assert table(ann)["state"] == "waiting" and table(ann)["draw_count"] == DECK
    assert len(cards(ann)) == DECK and hand(ann) == []
    assert harness.listing == {"locked": False, "metadata": {"state": "waiting", "players": 2}}
    ann.send("draw", None)
    assert ann.errors == [["invalid_input", "waiting for 1 more player"]]
    bob = harness.join("bob")
    assert harness.listing == {"locked": True, "metadata": {"state": "playing", "players": 2}}
    harness.tick()
    for p in (ann, bob):
        t = table(p)
        assert {k: t[k] for k in ("state", "players", "turn", "drawn", "draw_count", "winner",
                                  "reason", "round")} == {
            "state": "playing", "players": 2, "turn": ann.id, "drawn": 0,
            "draw_count": DECK - 2 * 7 - 1, "winner": 0, "reason": "", "round": 1}
        assert len(hand(p, ann)) == len(hand(p, bob)) == 7
        assert seat(p, ann)["cards"] == seat(p, bob)["cards"] == 7
        assert (seat(p, ann)["position"], seat(p, bob)["position"]) == (0, 1)
        discard = [c for c in cards(p).values() if c["place"] == "discard"]
        assert len(discard) == 1 and discard[0]["rank"] in range(1, 14)
        assert t["suit"] == discard[0]["suit"] and t["top"] == next(
            i for i, c in cards(p).items() if c["place"] == "discard")
        assert p.events_of("start") == [{"round": 1, "starter": ann.id}]
    # Seven faces of one's own, none of the other's, the top card for both.
    assert all(r in range(1, 14) and s in SUITS for r, s in faces(ann))
    assert [cards(ann)[i]["rank"] for i in hand(bob)] == [None] * 7
    assert len(set(faces(ann)) | set(faces(bob)) | {top(ann)}) == 15  # one deck
    assert check_privacy(harness, [ann, bob]) == 2 * (7 + 1)
    with pytest.raises(JoinRefused):
        harness.join("cat")


@pytest.mark.parametrize("players", [3, 4])
def test_three_or_four_players_are_dealt_five_each(players: int) -> None:
    harness, seated = match(players)
    harness.tick()
    first = seated[0]
    assert first.config["players"] == players and first.config["hand"] == 5
    assert table(first)["draw_count"] == DECK - 5 * players - 1
    assert [len(hand(first, p)) for p in seated] == [5] * players
    assert [seat(first, p)["position"] for p in seated] == list(range(players))
    assert harness.listing["locked"] is True and harness.room.max_players == players
    check_privacy(harness, seated)


def test_a_room_for_three_waits_for_the_third() -> None:
    harness = RoomHarness(Cards, {"players": 3})
    ann, bob = harness.join("ann"), harness.join("bob")
    harness.tick()
    assert table(bob)["state"] == "waiting" and hand(ann) == []
    bob.send("play", {"card": 1})
    assert bob.errors == [["invalid_input", "waiting for 1 more player"]]
    harness.join("cat")
    harness.tick()
    assert table(ann)["state"] == "playing" and len(hand(ann)) == 5


@pytest.mark.parametrize("players", [1, 5, 0, "3", 3.0, True, None])
def test_the_players_option_is_an_integer_from_2_to_4(players: Any) -> None:
    with pytest.raises(InvalidOption, match="'players' must be an integer from 2 to 4"):
        RoomHarness(Cards, {"players": players})


def test_inputs_are_refused_moves_are_messages() -> None:
    _, (ann, _) = match()
    seq = ann.input("draw")
    assert ann.errors == [["invalid_input", "cards takes no inputs: send 'play', 'draw' or "
                                            "'pass' messages", seq]]


# -- playing -------------------------------------------------------------------------------

def test_a_card_matching_the_suit_or_the_rank_is_played_and_the_turn_moves_on() -> None:
    harness, (ann, bob) = match()
    rig(harness, (9, "H"), ann=[(2, "H"), (5, "C")], bob=[(5, "S")])
    harness.tick()
    heart, club = hand(ann)[:2]
    ann.send("play", {"card": heart})  # the suit
    harness.tick()
    for p in (ann, bob):
        assert table(p)["top"] == heart and table(p)["suit"] == "H" and table(p)["turn"] == bob.id
        assert cards(p)[heart] | {"order": 0} == {"owner": 0, "place": "discard", "order": 0,
                                                  "rank": 2, "suit": "H"}
        assert seat(p, ann)["cards"] == 6 and len(hand(p, ann)) == 6
        assert p.events_of("play") == [{"player": ann.id, "card": heart, "rank": 2,
                                        "suit": "H", "named": ""}]
    spade = hand(bob)[0]
    bob.send("play", {"card": spade})
    assert bob.errors == [["invalid_input",
                           "the 5 of spades does not match: play a heart, a 2 or an eight"]]
    rig(harness, (2, "H"), bob=[(2, "S")])  # the rank
    harness.tick()
    bob.send("play", {"card": spade})
    harness.tick()
    assert bob.errors[1:] == [] and top(ann) == (2, "S") and table(ann)["suit"] == "S"
    assert table(ann)["turn"] == ann.id
    assert club in hand(ann)


def test_refusals_say_why_and_change_nothing() -> None:
    harness, (ann, bob) = match()
    rig(harness, (9, "H"), ann=[(5, "C"), (8, "D"), (9, "C")])
    harness.tick()
    club, eight, nine = hand(ann)[:3]
    draw_pile = next(i for i, c in cards(ann).items() if c["place"] == "draw")
    before = cards(ann)
    bob.send("play", {"card": hand(bob)[0]})
    bob.send("draw", None)
    bob.send("pass", None)
    assert bob.errors == [["invalid_input", "it is not your turn"]] * 3
    cases: list[tuple[Any, str]] = [
        ({"card": hand(bob)[0]}, f"card {hand(bob)[0]} is not in your hand"),
        ({"card": draw_pile}, f"card {draw_pile} is not in your hand"),
        ({"card": table(ann)["top"]}, f"card {table(ann)['top']} is not in your hand"),
        ({"card": 9999}, "card 9999 is not in your hand"),
        ({"card": club}, "the 5 of clubs does not match: play a heart, a 9 or an eight"),
        ({"card": nine, "suit": "C"}, "only an eight names a suit"),
        ({"card": eight}, "an eight is wild: name the suit to follow (C, D, H or S)"),
        ({"card": eight, "suit": "X"}, "the suit must be one of C, D, H, S"),
        ({"card": eight, "suit": "H", "x": 1}, "a 'play' message takes only 'card' and 'suit'"),
        (club, "a 'play' message takes {\"card\": id} (and \"suit\" with an eight)"),
        ({"card": "3"}, "a 'play' message takes {\"card\": id} (and \"suit\" with an eight)"),
        ({"card": True}, "a 'play' message takes {\"card\": id} (and \"suit\" with an eight)"),
        (None, "a 'play' message takes {\"card\": id} (and \"suit\" with an eight)"),
    ]
    for body, error in cases:
        ann.send("play", body)
        assert ann.errors[-1] == ["invalid_input", error], body
    ann.send("pass", None)
    assert ann.errors[-1] == ["invalid_input", "draw a card first: you may pass after "
                                               "drawing, or when there is nothing left to draw"]
    harness.tick()
    assert len(ann.errors) == len(cases) + 1
    assert cards(ann) == before and table(ann)["turn"] == ann.id
    assert ann.events_of("play") == []
    ann.send("play", {"card": nine})  # and a good one still goes through
    harness.tick()
    assert top(bob) == (9, "C")


def test_an_eight_is_wild_and_names_the_suit_to_follow() -> None:
    harness, (ann, bob) = match()
    rig(harness, (9, "H"), ann=[(8, "C")], bob=[(3, "D"), (4, "H"), (8, "S")])
    harness.tick()
    ann.send("play", {"card": hand(ann)[0], "suit": "D"})  # an eight on a heart
    harness.tick()
    assert table(bob)["suit"] == "D" and top(bob) == (8, "C")
    assert bob.events_of("play")[0]["named"] == "D"
    diamond, heart, eight = hand(bob)[:3]
    bob.send("play", {"card": heart})
    assert bob.errors == [["invalid_input",
                           "the 4 of hearts does not match: play a diamond or an eight"]]
    bob.send("play", {"card": eight, "suit": "S"})  # an eight on an eight
    harness.tick()
    assert table(ann)["suit"] == "S" and top(ann) == (8, "S")
    assert table(ann)["turn"] == ann.id
    assert diamond in hand(bob)


def test_after_drawing_a_card_that_does_not_fit_the_turn_waits_for_a_pass() -> None:
    harness, (ann, bob) = match()
    rig(harness, (9, "H"), ann=[(2, "C")])
    room = harness.room
    assert isinstance(room, Cards)
    swap_face(room, room.draw_pile[-1], (3, "S"))  # the next card drawn
    harness.tick()
    drawn = room.draw_pile[-1].id
    ann.send("draw", None)
    harness.tick()
    assert hand(ann)[-1] == drawn and faces(ann)[-1] == (3, "S")
    for p in (ann, bob):
        # Bob sees what he would see had it fitted: a card drawn, Ann still to move.
        assert table(p)["turn"] == ann.id and table(p)["drawn"] == drawn
        assert table(p)["draw_count"] == DECK - 15 - 1 and seat(p, ann)["cards"] == 8
        assert p.events_of("draw") == [{"player": ann.id, "card": drawn}]  # and no face
    assert cards(bob)[drawn]["rank"] is None and cards(bob)[drawn]["owner"] == ann.id
    ann.send("play", {"card": drawn})
    ann.send("play", {"card": hand(ann)[0]})
    assert ann.errors == [
        ["invalid_input", "the 3 of spades does not match: play a heart, a 9 or an eight"],
        ["invalid_input", "you drew this turn: play the card you drew, or pass"]]
    ann.send("pass", None)
    harness.tick()
    for p in (ann, bob):
        assert table(p)["turn"] == bob.id and table(p)["drawn"] == 0
        assert p.events_of("pass") == [{"player": ann.id}]


def test_a_playable_drawn_card_may_be_played_or_passed_and_nothing_else() -> None:
    harness, (ann, bob) = match()
    rig(harness, (9, "H"), ann=[(2, "H")], bob=[(3, "H")])
    room = harness.room
    assert isinstance(room, Cards)
    swap_face(room, room.draw_pile[-1], (9, "S"))  # matches the top card's rank
    swap_face(room, room.draw_pile[-2], (4, "H"))
    harness.tick()
    heart = hand(ann)[0]
    ann.send("draw", None)
    harness.tick()
    drawn = table(ann)["drawn"]
    assert drawn == hand(ann)[-1] and table(bob)["turn"] == ann.id
    ann.send("draw", None)
    ann.send("play", {"card": heart})
    assert ann.errors == [["invalid_input", "you drew this turn: play the card you drew, "
                                            "or pass"]] * 2
    ann.send("play", {"card": drawn})
    harness.tick()
    assert top(bob) == (9, "S") and table(bob)["turn"] == bob.id and table(bob)["drawn"] == 0
    bob.send("draw", None)  # the 4 of hearts does not fit the 9 of spades
    harness.tick()
    bob.send("pass", None)
    harness.tick()
    assert table(bob)["turn"] == ann.id
    swap_face(room, room.draw_pile[-1], (5, "S"))
    harness.tick()
    ann.send("draw", None)
    harness.tick()
    ann.send("pass", None)  # keep it
    harness.tick()
    assert ann.errors[2:] == [] and table(bob)["turn"] == bob.id
    assert bob.events_of("pass") == [{"player": bob.id}, {"player": ann.id}]
    assert seat(bob, ann)["cards"] == 8


def test_playing_the_last_card_wins_and_a_rematch_deals_again() -> None:
    harness, (ann, bob) = match()
    hearts = [(r, "H") for r in (1, 2, 3, 4, 5, 6, 7)]
    rig(harness, (9, "H"), ann=hearts, bob=[(r, "C") for r in (1, 2, 3, 4, 5, 6, 7)])
    harness.tick()
    for n in range(7):
        assert table(ann)["turn"] == ann.id
        ann.send("play", {"card": hand(ann)[0]})
        harness.tick()
        if n < 6:  # bob draws, and keeps what he drew
            take_turn(harness, [ann, bob], draw_first=True, pass_drawn=True)
    for p in (ann, bob):
        t = table(p)
        assert {k: t[k] for k in ("state", "winner", "reason", "turn", "round")} == {
            "state": "over", "winner": ann.id, "reason": "out", "turn": 0, "round": 1}
        assert p.events_of("over") == [{"round": 1, "winner": ann.id, "reason": "out"}]
        assert seat(p, ann)["wins"] == 1 and seat(p, ann)["cards"] == 0
        assert hand(p, ann) == []
    assert harness.listing["metadata"]["state"] == "over"
    bob.send("draw", None)
    assert bob.errors == [["invalid_input", "the round is over: send 'rematch' to play again"]]
    bob.send("rematch", None)
    bob.send("rematch", None)  # twice: changes nothing
    harness.tick()
    assert ann.events_of("rematch") == [{"player": bob.id}] and seat(ann, bob)["rematch"]
    assert table(ann)["state"] == "over"
    ann.send("rematch", None)
    harness.tick()
    for p in (ann, bob):
        t = table(p)
        assert {k: t[k] for k in ("state", "round", "turn", "winner", "reason")} == {
            "state": "playing", "round": 2, "turn": bob.id, "winner": 0, "reason": ""}
        assert len(hand(p, ann)) == len(hand(p, bob)) == 7
        assert seat(p, ann)["wins"] == 1 and not seat(p, ann)["rematch"]
        assert p.events_of("start")[-1] == {"round": 2, "starter": bob.id}
    ann.send("rematch", None)
    assert ann.errors == [["invalid_input", "the round is still being played"]]
    check_privacy(harness, [ann, bob])


def test_the_discard_pile_is_shuffled_back_face_down_when_the_draw_pile_runs_out() -> None:
    harness, players = match(3, seed=7)
    harness.tick()
    room = harness.room
    assert isinstance(room, Cards)
    ann = players[0]
    while not ann.events_of("reshuffle"):  # everyone draws every turn: the pile runs out
        assert table(ann)["state"] == "playing"
        before = [(c.id, c.rank, c.suit) for c in room.discard]
        take_turn(harness, players, draw_first=True)
        check_privacy(harness, players)
    [event] = ann.events_of("reshuffle")
    t = table(ann)
    # The pile ran out at the draw; the discards but the top are the new draw pile.
    assert event["cards"] == t["draw_count"] > 0
    reshuffled = [c for c in room.cards if c.place == "draw"]
    assert {c.id for c in reshuffled} <= {i for i, _, _ in before}
    assert Counter((c.rank, c.suit) for c in reshuffled) == Counter(
        (r, s) for i, r, s in before if i != t["top"] and i in {c.id for c in reshuffled})
    for p in players:
        for c in reshuffled:
            assert cards(p)[c.id] == {"owner": 0, "place": "draw", "order": 0,
                                      "rank": None, "suit": None}
    assert [c.id for c in room.discard] == [t["top"]]
    # The faces were dealt anew among the reshuffled cards (seeded: some moved).
    old = {i: (r, s) for i, r, s in before}
    assert any(old[c.id] != (c.rank, c.suit) for c in reshuffled)
    for _ in range(5):  # and play goes on
        take_turn(harness, players)
        check_privacy(harness, players)


def test_a_round_where_nobody_can_move_is_blocked() -> None:
    harness, (ann, bob) = match()
    harness.tick()
    room = harness.room
    assert isinstance(room, Cards)
    while table(ann)["draw_count"]:  # nobody plays: the discard pile stays one card
        take_turn(harness, [ann, bob], draw_first=True, pass_drawn=True)
    assert not ann.events_of("reshuffle")
    p = mover([ann, bob])
    p.send("draw", None)
    assert p.errors[-1] == ["invalid_input", "there is nothing left to draw: play a card "
                                             "or pass"]
    p.send("pass", None)
    harness.tick()
    assert table(ann)["state"] == "playing"
    rest = mover([ann, bob])
    rest.send("pass", None)
    harness.tick()
    counts = {seat(ann, x)["cards"]: x.id for x in (ann, bob)}
    expected = counts[min(counts)] if len(counts) == 2 else -1
    assert {k: table(bob)[k] for k in ("state", "winner", "reason")} == {
        "state": "over", "winner": expected, "reason": "blocked"}


def test_a_whole_game_keeps_every_hand_private() -> None:
    """Three players to a win, with a reshuffle on the way; after every update each
    player knows exactly its own hand's faces and the discard pile's."""
    harness, players = match(3, seed=3)
    harness.tick()
    seen = check_privacy(harness, players)
    turns = 0
    while table(players[0])["state"] == "playing":
        draw_first = turns < 60  # a long opening: the draw pile runs out
        take_turn(harness, players, draw_first=draw_first)
        seen += check_privacy(harness, players)
        turns += 1
        assert turns < 500
    assert players[0].events_of("reshuffle")
    assert table(players[0])["reason"] == "out" and seen > 100
    # What each player learned of the others' hands: their sizes, never a face.
    for p in players:
        for other in players:
            if other is not p:
                assert {cards(p)[i]["rank"] for i in hand(p, other)} <= {None}


# -- leaving -------------------------------------------------------------------------------

def test_a_player_who_leaves_forfeits_and_the_others_play_on() -> None:
    harness, (ann, bob, cat) = match(3)
    harness.tick()
    room = harness.room
    assert isinstance(room, Cards)
    assert table(bob)["turn"] == ann.id
    left = hand(bob, ann)
    known = dict(zip(left, faces(ann), strict=True))  # what Ann could tell a friend
    pile = Counter((c.rank, c.suit) for c in room.draw_pile) + Counter(known.values())
    ann.leave()  # on her turn
    harness.tick()
    assert Counter((c.rank, c.suit) for c in room.draw_pile) == pile
    by_id = {c.id: (c.rank, c.suit) for c in room.cards}
    assert any(by_id[i] != face for i, face in known.items())  # faces dealt anew
    for p in (bob, cat):
        assert p.events_of("left") == [{"player": ann.id, "name": "ann"}]
        assert table(p)["turn"] == bob.id and table(p)["state"] == "playing"
        assert table(p)["draw_count"] == DECK - 15 - 1 + 5
        assert all(cards(p)[i]["place"] == "draw" and cards(p)[i]["owner"] == 0 for i in left)
        assert [s.values["name"] for s in p.entities("Seat")] == ["bob", "cat"]
    assert harness.listing["locked"] is True  # no one joins mid-round
    check_privacy(harness, [bob, cat])
    take_turn(harness, [bob, cat])
    assert table(bob)["turn"] == cat.id
    cat.leave()  # the last opponent: bob wins
    harness.tick()
    t = table(bob)
    assert {k: t[k] for k in ("state", "winner", "reason", "turn")} == {
        "state": "waiting", "winner": bob.id, "reason": "forfeit", "turn": 0}
    assert bob.events_of("over") == [{"round": 1, "winner": bob.id, "reason": "forfeit"}]
    assert seat(bob)["wins"] == 1
    assert harness.listing == {"locked": False, "metadata": {"state": "waiting", "players": 3}}
    bob.send("rematch", None)
    assert bob.errors == [["invalid_input", "waiting for 2 more players"]]
    dan, eve = harness.join("dan"), harness.join("eve")  # a new match
    harness.tick()
    assert table(bob)["state"] == "playing" and table(bob)["round"] == 1
    assert seat(bob)["wins"] == 0 and table(bob)["turn"] == bob.id  # the first seated
    assert [seat(bob, p)["position"] for p in (bob, dan, eve)] == [1, 2, 3]
    check_privacy(harness, [bob, dan, eve])


def test_leaving_after_a_round_and_before_one() -> None:
    harness = RoomHarness(Cards)
    ann = harness.join("ann")
    ann.leave()  # alone, before the deal
    bob, cat = harness.join("bob"), harness.join("cat")
    harness.tick()
    assert table(bob)["state"] == "playing" and table(bob)["turn"] == bob.id
    bob.send("play", {"card": hand(bob)[0]})  # whatever happens, bob may leave
    bob.leave()
    harness.tick()
    assert table(cat)["state"] == "waiting" and table(cat)["winner"] == cat.id
    discard = [c for c in cards(cat).values() if c["place"] == "discard"]
    # Bob's hand went back into the draw pile.
    assert table(cat)["draw_count"] + len(hand(cat)) + len(discard) == DECK


def test_a_dropped_player_keeps_the_seat_and_one_who_never_returns_forfeits() -> None:
    harness, (ann, bob) = match()
    harness.tick()
    ann.drop()
    harness.tick()
    assert seat(bob, ann)["connected"] is False and table(bob)["turn"] == ann.id
    ann.reconnect()
    harness.tick()
    assert seat(bob, ann)["connected"] is True and len(faces(ann)) == 7
    assert all(f[0] is not None for f in faces(ann))  # the snapshot brings her hand back
    check_privacy(harness, [ann, bob])
    bob.drop()
    harness.advance(harness.limits.reconnect_grace)
    harness.tick()
    assert {k: table(ann)[k] for k in ("state", "winner", "reason")} == {
        "state": "waiting", "winner": ann.id, "reason": "forfeit"}


def test_the_protocol_document_lists_the_config_and_options() -> None:
    keys = {key for row in table_after(DOC, "| cards key | meaning |")
            for key in re.findall(r"`([a-z_]+)`", row[0])}
    assert keys == set(RoomHarness(Cards).join().config)
    assert "`cards` reads `players`" in DOC


async def test_quick_play_keeps_room_sizes_apart(session: aiohttp.ClientSession,
                                                base: str) -> None:
    async with session.get(f"{base}/games") as resp:
        listed = await resp.json()
    assert "cards" in listed["games"] and listed["pages"]["cards"] == "/play/cards/"
    ann, bob = [await Player.join(session, base, game="cards", name=name,
                                  options={"players": 3}) for name in ("ann", "bob")]
    two = await Player.join(session, base, game="cards", name="cat", options={"players": 2})
    assert ann.room_id == bob.room_id != two.room_id  # match_by: a 3-player room is apart
    assert (ann.config["players"], ann.config["hand"], two.config["hand"]) == (3, 5, 7)
    dan = await Player.join(session, base, game="cards", name="dan", options={"players": 3})
    assert dan.room_id == ann.room_id

    def table_of(player: Player) -> dict[str, Any]:
        return next((e.values for e in player.replica.entities.values() if e.type == "Table"),
                    {})

    await dan.until(lambda: table_of(dan).get("state") == "playing")
    mine = [e.values for e in dan.replica.entities.values()
            if e.type == "Card" and e.values["owner"] == dan.player_id]
    assert len(mine) == 5 and all(c["rank"] in range(1, 14) for c in mine)
    # Full and locked: the next one asking for three gets a room of their own.
    eve = await matchmake(session, base, game="cards", name="eve", options={"players": 3})
    assert eve["room_id"] != ann.room_id
    with pytest.raises(MatchmakeFailed) as refused:
        await matchmake(session, base, game="cards", mode="create", options={"players": 5})
    assert refused.value.status == 400 and refused.value.body["error"] == "invalid_option"
    for player in (ann, bob, two, dan):
        await player.ws.close()
