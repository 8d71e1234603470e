"""``cards``: Crazy Eights with hidden hands, for 2-4 players. The demo of per-player
views: every player sees every card, but a card's face (``rank``, ``suit``) only when it
is in their own hand or face up on the discard pile.

Written only against the public Room API, like ``connect_four``: turn-based room
messages, a slow tick, rounds and rematches; and ``Private`` fields with an
``owner_field``, ``world.reveal`` (a card put on the discard pile) and ``world.conceal``
(discarded cards shuffled back into the draw pile).

**Rules.** A 52-card deck; ``rank`` 1-13 (1 ace, 11 jack, 12 queen, 13 king), ``suit``
``"C"``, ``"D"``, ``"H"`` or ``"S"``. Each player is dealt 7 cards with two players, 5
with three or four; the next card is turned up to start the discard pile (an eight
turned up counts as its own suit). Players move in the order they sat down; the first
seated starts the first round, and the starter moves one seat on with each rematch. On
your turn, either

- **play** a card from your hand that matches the top card's rank or the suit to
  follow (the top card's suit, or the suit named with an eight), or any eight: eights
  are wild and you name the suit the next player must follow; or
- **draw** the top card of the draw pile, then play it if it fits (only it), or
  **pass**. The turn waits for one or the other even when the card cannot be played,
  so that nobody learns whether it could.

``pass`` is also allowed when there is nothing left to draw. Whoever plays their last
card wins the round (``"out"``). When the draw pile runs out, the discard pile except its
top card is shuffled into it, face down again (the cards' faces are dealt anew among
them, so a card's id says nothing about its face once it is back in the pile). If
every player in turn passed with nothing to draw, the round is ``"blocked"``: the
player with the fewest cards wins it (``-1``: a tie, nobody).

**Entities** (what a page renders from):

``Card`` (52 per room, spawned with the room)
    ``owner``: the holding player's id, 0 in the draw pile and on the discard pile.
    ``place``: ``"draw"``, ``"hand"`` or ``"discard"``. ``order``: when it last moved
    (a counter: the discard pile's top card has the highest, a hand is in the order it
    was dealt and drawn; 0 in the draw pile). ``rank`` and ``suit`` are **private**
    (``owner_field = "owner"``): ``None`` for everyone but the card's holder, except on
    the discard pile, where every card is revealed.

``Table`` (one per room)
    ``state``: ``"waiting"`` (for ``players`` players), ``"playing"`` or ``"over"`` (a
    rematch starts the next round). ``players``: how many this room deals for (its
    ``players`` option). ``turn``: the player id to move (0 when no round runs).
    ``top``: the id of the discard pile's top card. ``suit``: the suit to follow.
    ``drawn``: the id of the card the player to move drew this turn (0: none; they
    may then play only it, if it fits, or pass). ``draw_count``: cards in the draw pile. ``winner``:
    the round's winner's player id, ``-1`` a blocked round's tie, 0 none yet.
    ``reason``: ``"out"`` (no cards left), ``"forfeit"`` (the others left),
    ``"blocked"``, or ``""``. ``round``: 1, 2, ... in this match. ``winner`` and
    ``reason`` keep the last round's result until the next round starts.

``Seat`` (one per player)
    ``pid``, ``name``, ``position`` (turn order), ``cards`` (in hand), ``wins`` (rounds
    won in this match), ``connected`` (False while the player's connection is lost),
    ``rematch`` (asked for a rematch of the finished round).

**Room messages** (a refusal is an ``invalid_input`` ERROR to the sender, saying why,
and changes nothing):

- ``["play", {"card": id, "suit": s}]``: ``suit`` (``"C"``, ``"D"``, ``"H"`` or ``"S"``)
  only with an eight, and then required. Refused: no round running, not your turn,
  the card not in your hand, a card that does not match, another card than the one
  you drew this turn.
- ``["draw", nil]``: refused after drawing this turn, or with nothing left to draw.
- ``["pass", nil]``: only after drawing this turn, or with nothing left to draw.
- ``["rematch", nil]``: after a round is over; when every player asked, the next round
  is dealt. Asking twice changes nothing.

**Events** (``broadcast``): ``["joined", {"player", "name"}]``, ``["left", {"player",
"name"}]``, ``["start", {"round", "starter"}]``, ``["play", {"player", "card", "rank",
"suit", "named"}]`` (``named``: the suit named with an eight, else ``""``), ``["draw",
{"player", "card"}]`` (no face: only the drawer sees it), ``["pass", {"player"}]``,
``["reshuffle", {"cards"}]``, ``["over", {"round", "winner", "reason"}]``,
``["rematch", {"player"}]``.

**Seats.** The ``players`` option (an integer 2-4, default 2; refused otherwise with
``invalid_option``) is the room's size: the round is dealt as soon as that many are
seated, and the room locks. ``match_by = {"players": 2}``: quick play only puts a player
in a room of the size they asked for (no option: 2). A player who leaves (or never comes back from a
drop) forfeits: their cards go back into the draw pile, shuffled in (the pile's faces
dealt anew, so what they knew of those cards' ids is worth nothing), and the others
play on; when one player is left they win the round (``"forfeit"``). Once a round ends
with fewer than ``players`` seated, the room goes back to ``"waiting"`` and unlocks, and
whoever fills it starts a new match (wins back to 0). There is no turn clock.

**Config** (the welcome's ``client_config``): ``players``, ``hand`` (cards dealt to
each), ``deck`` 52, ``eight`` 8, ``suits`` ``["C", "D", "H", "S"]``.
"""

from __future__ import annotations

import random
from typing import Any

from gameserver import Entity, InvalidInput, InvalidOption, Player, Private, Room, message

SUITS = ("C", "D", "H", "S")
SUIT_NAMES = {"C": "club", "D": "diamond", "H": "heart", "S": "spade"}
RANKS = range(1, 14)  # 1 ace .. 13 king
RANK_NAMES = {1: "ace", 11: "jack", 12: "queen", 13: "king"}
EIGHT = 8
DECK = len(SUITS) * len(RANKS)
MIN_PLAYERS, MAX_PLAYERS = 2, 4
DEFAULT_PLAYERS = 2
HAND_OF_TWO = 7  # dealt to each of two players
HAND_OF_MORE = 5  # dealt to each of three or four


def hand_size(players: int) -> int:
    """Cards dealt to each player (the common rule: 7 for two players, else 5)."""
    return HAND_OF_TWO if players == 2 else HAND_OF_MORE


def rank_name(rank: int) -> str:
    return RANK_NAMES.get(rank, str(rank))


def face_name(rank: int, suit: str) -> str:
    """``"queen of spades"``: for refusals sent to the card's holder only."""
    return f"{rank_name(rank)} of {SUIT_NAMES[suit]}s"


class Card(Entity):
    owner_field = "owner"  # a plain class attribute: whose player id unlocks rank and suit
    owner: int = 0  # the holding player's id; 0 in the draw pile and on the discard pile
    place: str = "draw"  # "draw" | "hand" | "discard"
    order: int = 0  # when it last moved: the discard pile's top has the highest
    rank: Private[int] = 0
    suit: Private[str] = ""


class Table(Entity):
    state: str = "waiting"  # "waiting" | "playing" | "over"
    players: int = DEFAULT_PLAYERS  # seats this room deals for
    turn: int = 0  # the player id to move; 0 when no round runs
    top: int = 0  # id of the discard pile's top card
    suit: str = ""  # the suit to follow: the top card's, or the one named with an eight
    drawn: int = 0  # id of the card the player to move drew this turn
    draw_count: int = 0
    winner: int = 0  # player id; -1 a tie (blocked); 0 none (yet)
    reason: str = ""  # "out" | "forfeit" | "blocked" | ""
    round: int = 0


class Seat(Entity):
    pid: int = 0
    name: str = ""
    position: int = 0  # turn order
    cards: int = 0
    wins: int = 0
    connected: bool = True
    rematch: bool = False


def play_body(body: Any) -> tuple[int, str | None]:
    """A ``play`` message's body as ``(card id, named suit or None)``."""
    if not isinstance(body, dict) or type(body.get("card")) is not int:
        raise InvalidInput("a 'play' message takes {\"card\": id} (and \"suit\" with an eight)")
    if set(body) - {"card", "suit"}:
        raise InvalidInput("a 'play' message takes only 'card' and 'suit'")
    suit = body.get("suit")
    if suit is not None and suit not in SUITS:
        raise InvalidInput("the suit must be one of C, D, H, S")
    return body["card"], suit


class Cards(Room):
    game = "cards"
    max_players = MAX_PLAYERS  # lowered to the 'players' option by on_create
    match_by = {"players": DEFAULT_PLAYERS}  # quick play keeps 2-, 3- and 4-player rooms apart
    # Turn-based like connect_four: nothing moves between messages; 4 updates a second
    # show a move to everyone within 250 ms at a fifth of arena's cost.
    tick_rate = 4
    quiet = True  # no clock: nothing happens between moves, so no updates and no ticks
    entity_types = (Table, Seat, Card)

    def on_create(self, options: dict[str, Any]) -> None:
        players = options.get("players", DEFAULT_PLAYERS)
        if type(players) is not int or not MIN_PLAYERS <= players <= MAX_PLAYERS:
            raise InvalidOption(f"'players' must be an integer from {MIN_PLAYERS} "
                                f"to {MAX_PLAYERS}")
        self.max_players = players  # type: ignore[misc]  # matchmaking seats exactly this many
        # The deck's secrets come from the OS: a predictable shuffle would give hands away.
        # Tests swap in a seeded random.Random.
        self.rng: random.Random = random.SystemRandom()
        self.table = self.world.spawn(Table(players=players, draw_count=DECK))
        self.seats: dict[int, Seat] = {}  # by player id
        self.cards = [self.world.spawn(Card()) for _ in range(DECK)]  # faces set at the deal
        self.draw_pile: list[Card] = list(self.cards)  # the top is last
        self.discard: list[Card] = []  # the top is last
        self.moved = 0  # the counter behind Card.order
        self.passes = 0  # turns passed in a row with nothing to draw
        self.starter = 0  # who started the current round
        self.set_metadata(state="waiting", players=players)

    def client_config(self) -> dict[str, Any]:
        players = self.table.players
        return {"players": players, "hand": hand_size(players), "deck": DECK,
                "eight": EIGHT, "suits": list(SUITS)}

    def validate_input(self, raw: Any) -> Any:
        raise InvalidInput("cards takes no inputs: send 'play', 'draw' or 'pass' messages")

    # -- seats -------------------------------------------------------------------------

    def on_join(self, player: Player) -> None:
        position = 1 + max((s.position for s in self.seats.values()), default=-1)
        self.seats[player.id] = self.world.spawn(Seat(pid=player.id, name=player.name,
                                                      position=position))
        self.broadcast("joined", {"player": player.id, "name": player.name})
        if len(self.seats) == self.table.players:
            self.lock()  # matchmaking sends anyone else to another room
            for seat in self.seats.values():
                seat.wins = 0
            self.table.round = 0
            self._start_round(self._in_turn_order()[0].pid)

    def on_drop(self, player: Player) -> None:
        self.seats[player.id].connected = False  # their turn waits: there is no clock

    def on_rejoin(self, player: Player) -> None:
        self.seats[player.id].connected = True

    def on_leave(self, player: Player, consented: bool) -> None:
        table = self.table
        order = self._in_turn_order()
        seat = self.seats.pop(player.id)
        self.world.remove(seat)
        self.broadcast("left", {"player": player.id, "name": player.name})
        # Their hand goes back into the draw pile, shuffled in.
        hand = [c for c in self.cards if c.owner == player.id]
        for card in hand:
            card.owner, card.place, card.order = 0, "draw", 0
        self._shuffle_in(hand)
        if table.state == "playing":
            self.passes = 0
            if len(self.seats) == 1:
                self._end_round(next(iter(self.seats)), "forfeit")
            elif table.turn == player.id:
                self._next_turn(order, player.id)
        if table.state != "playing":
            self._wait()

    # -- moves -------------------------------------------------------------------------

    @message("play", play_body)
    def play(self, player: Player, body: tuple[int, str | None]) -> None:
        card_id, named = body
        table = self.table
        self._check_turn(player)
        card = self.world.entities.get(card_id)
        if not isinstance(card, Card) or card.owner != player.id:
            raise InvalidInput(f"card {card_id} is not in your hand")
        if table.drawn and card.id != table.drawn:
            raise InvalidInput("you drew this turn: play the card you drew, or pass")
        if card.rank == EIGHT:
            if named is None:
                raise InvalidInput("an eight is wild: name the suit to follow (C, D, H or S)")
        elif named is not None:
            raise InvalidInput("only an eight names a suit")
        elif not self._playable(card):
            raise InvalidInput(f"the {face_name(card.rank, card.suit)} does not match: "
                               f"{self._what_matches()}")
        seat = self.seats[player.id]
        self._to_discard(card)
        table.suit = named or card.suit
        table.drawn = 0
        seat.cards -= 1
        self.passes = 0
        self.broadcast("play", {"player": player.id, "card": card.id, "rank": card.rank,
                                "suit": card.suit, "named": named or ""})
        if seat.cards == 0:
            self._end_round(player.id, "out")
            return
        self._refill()
        self._next_turn(self._in_turn_order(), player.id)

    @message("draw")
    def draw(self, player: Player, _body: Any) -> None:
        table = self.table
        self._check_turn(player)
        if table.drawn:
            raise InvalidInput("you drew this turn: play the card you drew, or pass")
        if not self.draw_pile:
            raise InvalidInput("there is nothing left to draw: play a card or pass")
        card = self._give(self.seats[player.id])
        self.passes = 0
        # Play it or pass, whether it fits or not: ending the turn at once for a card
        # that does not fit would tell everyone what it is not.
        table.drawn = card.id
        self.broadcast("draw", {"player": player.id, "card": card.id})
        self._refill()  # at once, so that draw_count shows what is left to draw

    @message("pass")
    def pass_turn(self, player: Player, _body: Any) -> None:
        table = self.table
        self._check_turn(player)
        if not table.drawn:
            if self.draw_pile:
                raise InvalidInput("draw a card first: you may pass after drawing, or when "
                                   "there is nothing left to draw")
            self.passes += 1
        self.broadcast("pass", {"player": player.id})
        if self.passes >= len(self.seats):  # a whole round of nobody able to move
            fewest = min(s.cards for s in self.seats.values())
            least = [s.pid for s in self.seats.values() if s.cards == fewest]
            self._end_round(least[0] if len(least) == 1 else -1, "blocked")
        else:
            self._next_turn(self._in_turn_order(), player.id)

    @message("rematch")
    def ask_rematch(self, player: Player, _body: Any) -> None:
        state = self.table.state
        if state == "waiting":
            raise InvalidInput(self._waiting_text())
        if state != "over":
            raise InvalidInput("the round is still being played")
        seat = self.seats[player.id]
        if seat.rematch:
            return  # asked already: a second click changes nothing
        seat.rematch = True
        self.broadcast("rematch", {"player": player.id})
        if all(s.rematch for s in self.seats.values()):
            self._start_round(self._after(self._in_turn_order(), self.starter))

    # -- the rules -----------------------------------------------------------------------

    def _playable(self, card: Card) -> bool:
        top = self.discard[-1]
        return card.rank == EIGHT or card.suit == self.table.suit or card.rank == top.rank

    def _what_matches(self) -> str:
        top, suit = self.discard[-1], SUIT_NAMES[self.table.suit]
        if top.rank == EIGHT:
            return f"play a {suit} or an eight"
        return f"play a {suit}, a {rank_name(top.rank)} or an eight"

    def _check_turn(self, player: Player) -> None:
        state = self.table.state
        if state == "waiting":
            raise InvalidInput(self._waiting_text())
        if state == "over":
            raise InvalidInput("the round is over: send 'rematch' to play again")
        if self.table.turn != player.id:
            raise InvalidInput("it is not your turn")

    def _waiting_text(self) -> str:
        missing = self.table.players - len(self.seats)
        return f"waiting for {missing} more player{'s' if missing != 1 else ''}"

    def _in_turn_order(self) -> list[Seat]:
        return sorted(self.seats.values(), key=lambda s: s.position)

    def _after(self, order: list[Seat], pid: int) -> int:
        """Who moves after ``pid``: the next in ``order`` (the turn order as it was, which
        may still list ``pid`` after they left) who is still seated."""
        at = next((i for i, s in enumerate(order) if s.pid == pid), -1)
        for step in range(1, len(order) + 1):
            seat = order[(at + step) % len(order)]
            if seat.pid in self.seats and seat.pid != pid:
                return seat.pid
        return pid

    def _next_turn(self, order: list[Seat], pid: int) -> None:
        self.table.turn = self._after(order, pid)
        self.table.drawn = 0

    # -- the cards -----------------------------------------------------------------------

    def _tick_order(self) -> int:
        self.moved += 1
        return self.moved

    def _give(self, seat: Seat) -> Card:
        card = self.draw_pile.pop()
        card.owner, card.place, card.order = seat.pid, "hand", self._tick_order()
        seat.cards += 1
        self.table.draw_count = len(self.draw_pile)
        return card

    def _to_discard(self, card: Card) -> None:
        card.owner, card.place, card.order = 0, "discard", self._tick_order()
        self.world.reveal(card)
        self.discard.append(card)
        self.table.top = card.id

    def _refill(self) -> None:
        """An empty draw pile takes the discard pile but its top card, face down."""
        if self.draw_pile or len(self.discard) < 2:
            return
        cards, self.discard = self.discard[:-1], self.discard[-1:]
        # Everyone saw these faces go by on the discard pile: deal the faces anew among
        # the cards, or each card's id would say what it is when someone draws it.
        faces = [(c.rank, c.suit) for c in cards]
        self.rng.shuffle(faces)
        for card, (rank, suit) in zip(cards, faces, strict=True):
            self.world.conceal(card)
            card.owner, card.place, card.order, card.rank, card.suit = 0, "draw", 0, rank, suit
        self.draw_pile = cards
        self.table.draw_count = len(cards)
        self.broadcast("reshuffle", {"cards": len(cards)})

    def _shuffle_in(self, cards: list[Card]) -> None:
        """Shuffle face-down ``cards`` into the draw pile. The faces of the whole pile are
        dealt anew among its cards: whoever knew these cards' faces by their ids (the
        player who held them, and anyone they tell) knows nothing of the pile's."""
        pile = self.draw_pile + cards
        faces = [(c.rank, c.suit) for c in pile]
        self.rng.shuffle(faces)
        self.rng.shuffle(pile)
        for card, (rank, suit) in zip(pile, faces, strict=True):
            card.rank, card.suit = rank, suit
        self.draw_pile = pile
        self.table.draw_count = len(pile)

    def _deal(self) -> None:
        faces = [(rank, suit) for suit in SUITS for rank in RANKS]
        self.rng.shuffle(faces)
        for card, (rank, suit) in zip(self.cards, faces, strict=True):
            self.world.conceal(card)
            card.owner, card.place, card.order, card.rank, card.suit = 0, "draw", 0, rank, suit
        self.draw_pile, self.discard = list(self.cards), []
        order = self._in_turn_order()
        for seat in order:
            seat.cards = 0
        for _ in range(hand_size(len(order))):
            for seat in order:
                self._give(seat)
        first = self.draw_pile.pop()
        self._to_discard(first)
        self.table.suit = first.suit  # an eight turned up counts as its own suit
        self.table.draw_count = len(self.draw_pile)

    # -- rounds --------------------------------------------------------------------------

    def _start_round(self, starter: int) -> None:
        table = self.table
        self.starter = starter
        self._deal()
        table.state, table.winner, table.reason = "playing", 0, ""
        table.turn, table.drawn = starter, 0
        table.round += 1
        self.passes = 0
        for seat in self.seats.values():
            seat.rematch = False
        self.broadcast("start", {"round": table.round, "starter": starter})
        self.set_metadata(state="playing")

    def _end_round(self, winner: int, reason: str) -> None:
        table = self.table
        table.state, table.winner, table.reason = "over", winner, reason
        table.turn = table.drawn = 0
        if winner in self.seats:
            self.seats[winner].wins += 1
        self.broadcast("over", {"round": table.round, "winner": winner, "reason": reason})
        self.set_metadata(state="over")
        if len(self.seats) < table.players:
            self._wait()

    def _wait(self) -> None:
        """Too few players for a round: wait, unlocked, for the room to fill again."""
        table = self.table
        table.state, table.turn, table.drawn = "waiting", 0, 0
        for seat in self.seats.values():
            seat.rematch = False
        self.unlock()
        self.set_metadata(state="waiting")
