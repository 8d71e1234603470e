"""``connect_four``: the turn-based demo game. Two players take turns dropping discs
into a 7-column, 6-row board; four in a row (across, up, or either diagonal) wins.

Written only against the public Room API, and shaped unlike ``arena``: no inputs and
no movement, only typed room messages, turns enforced by the server, a turn timer,
rounds and rematches, and a slow tick (see :attr:`ConnectFour.tick_rate`).

**Entities** (what a page renders from):

``Board`` (one per room)
    ``cells``: a 42-character string, one character per cell, ``"0"`` empty, ``"1"``
    or ``"2"`` a disc; **row-major from the bottom**: cell ``i`` is column ``i % 7``
    of row ``i // 7``, row 0 the bottom row. ``state``: ``"waiting"`` (for a second
    player), ``"playing"`` or ``"over"`` (the round ended; a rematch starts the
    next). ``turn``: the player id to move (0 when no round is running).
    ``winner``: the round's winner's player id, ``-1`` for a draw, 0 for none yet.
    ``reason``: how the round ended: ``"four"``, ``"draw"``, ``"timeout"`` (the
    player to move ran out of time), ``"resign"``, ``"forfeit"`` (a player left), or
    ``""``. ``line``: the cells of the winning line(s), ascending (more than four when
    one disc completed two lines or five in a row), else ``[]``. ``last``: the cell of
    the last disc dropped, ``-1`` for none. ``moves``: discs on the board. ``round``:
    1, 2, ... in this match. ``turn_ends``: the server tick at which the player to
    move runs out of time (0 when no turn runs): compare it with an update's tick.
    ``seconds_left``: the same as whole seconds, rounded up, for a plain countdown.
    ``winner``, ``reason`` and ``line`` keep the last round's result until the next
    round starts, also after a player left (``state`` is then ``"waiting"``).

``Seat`` (one per player)
    ``pid`` (the player id), ``name``, ``disc`` (1 or 2: the character in ``cells``),
    ``wins`` (rounds won in this match), ``connected`` (False while the player's
    connection is lost and their seat waits for them), ``rematch`` (asked for a
    rematch of the finished round).

**Room messages** (a player's actions; a refusal is an ``invalid_input`` ERROR to the
sender, with a message saying why, and changes nothing):

- ``["drop", column]``: an integer 0-6. Refused: a bad column, no round running
  (waiting for an opponent, or the round is over), not your turn, the column full.
- ``["rematch", anything]``: after a round is over (the body is ignored; send nil).
  When both players asked, the next round starts; the starting player alternates
  (disc 1 starts the first round of a match). Asking twice changes nothing.
- ``["resign", anything]``: give up the running round; the opponent wins it.

**Events** (``broadcast``, with the next update, so a page can animate):
``["joined", {"player", "name", "disc"}]``, ``["left", {"player", "name"}]``,
``["start", {"round", "starter"}]``, ``["move", {"player", "disc", "col", "row",
"cell"}]``, ``["over", {"round", "winner", "reason", "line"}]``, ``["rematch",
{"player"}]`` (that player asked).

**Rules of time and seats.** Each turn lasts ``turn_seconds`` (the room option,
an integer 5-120, default 30; refused otherwise with ``invalid_option``): a player who
runs out of time forfeits the round (``reason`` ``"timeout"``). The clock does not stop
for a lost connection: a dropped player either comes back within the server's
``--reconnect-grace`` or their turn times out as usual; if they never come back, they
leave. A player who leaves (or never comes back) during a round forfeits it; the other
stays seated, the room goes back to ``"waiting"`` and unlocks, and whoever joins next
starts a new match with them (wins back to 0, round 1). The room locks when two
players are seated, so matchmaking sends a third player elsewhere.

**Config** (the welcome's ``client_config``): ``cols`` 7, ``rows`` 6, ``connect`` 4,
``turn_seconds``.
"""

from __future__ import annotations

import math
from typing import Any

from gameserver import Entity, InvalidInput, InvalidOption, Player, Room, message

COLS = 7
ROWS = 6
CONNECT = 4
TURN_SECONDS = 30  # default seconds per move
MIN_TURN_SECONDS, MAX_TURN_SECONDS = 5, 120
EMPTY = "0" * (COLS * ROWS)
# The four directions of a line, as (row step, column step): across, up, and diagonals.
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


class Board(Entity):
    cells: str = EMPTY  # row-major from the bottom row: "0" empty, "1"/"2" a disc
    state: str = "waiting"  # "waiting" | "playing" | "over"
    turn: int = 0  # the player id to move; 0 when no round runs
    winner: int = 0  # player id; -1 a draw; 0 none (yet)
    reason: str = ""  # "four" | "draw" | "timeout" | "resign" | "forfeit" | ""
    line: list[int] = []  # cells of the winning line(s); always replaced, never mutated
    last: int = -1  # cell of the last disc dropped
    moves: int = 0
    round: int = 0
    turn_ends: int = 0  # server tick at which the player to move runs out of time
    seconds_left: int = 0


class Seat(Entity):
    pid: int = 0
    name: str = ""
    disc: int = 0  # 1 or 2
    wins: int = 0
    connected: bool = True
    rematch: bool = False


def winning_cells(grid: list[int], cell: int) -> list[int]:
    """The cells of every line of ``CONNECT`` or more through ``cell``, ascending; ``[]``
    if there is none. ``grid`` is row-major from the bottom, ``0`` for empty."""
    disc = grid[cell]
    if not disc:
        return []
    row, col = divmod(cell, COLS)
    found: set[int] = set()
    for dr, dc in DIRECTIONS:
        run = [cell]
        for sign in (1, -1):  # walk both ways from the new disc
            r, c = row + sign * dr, col + sign * dc
            while 0 <= r < ROWS and 0 <= c < COLS and grid[r * COLS + c] == disc:
                run.append(r * COLS + c)
                r, c = r + sign * dr, c + sign * dc
        if len(run) >= CONNECT:
            found.update(run)
    return sorted(found)


class ConnectFour(Room):
    game = "connect_four"
    max_players = 2
    # Turn-based: nothing moves between messages, so updates only need to carry the
    # moves and a seconds countdown. 4 Hz costs a fifth of arena's 20 updates a second
    # and still shows a move to both players within 250 ms (2 Hz would make that half a
    # second, a visible lag after a click).
    tick_rate = 4
    # Between moves nothing happens: a quiet room sends no update and stops ticking
    # while the players think, waking for a move (a message), a seat change, or its own
    # timer (update: the next change of the countdown, and the turn's timeout).
    quiet = True
    entity_types = (Board, Seat)

    def on_create(self, options: dict[str, Any]) -> None:
        seconds = options.get("turn_seconds", TURN_SECONDS)
        if type(seconds) is not int or not MIN_TURN_SECONDS <= seconds <= MAX_TURN_SECONDS:
            raise InvalidOption(f"'turn_seconds' must be an integer from {MIN_TURN_SECONDS} "
                                f"to {MAX_TURN_SECONDS}")
        self.turn_seconds = seconds
        self.turn_ticks = max(1, round(seconds * self.rate))
        self.board = self.world.spawn(Board())
        self.grid = [0] * (COLS * ROWS)  # the rules' copy of board.cells
        self.seats: dict[int, Seat] = {}  # by player id
        self.starter = 0  # who started the current round
        self.set_metadata(state="waiting")

    def client_config(self) -> dict[str, Any]:
        return {"cols": COLS, "rows": ROWS, "connect": CONNECT,
                "turn_seconds": self.turn_seconds}

    def validate_input(self, raw: Any) -> Any:
        raise InvalidInput("connect_four takes no inputs: send a 'drop' message with a column")

    # -- seats -------------------------------------------------------------------------

    def on_join(self, player: Player) -> None:
        disc = 2 if any(s.disc == 1 for s in self.seats.values()) else 1
        self.seats[player.id] = self.world.spawn(Seat(pid=player.id, name=player.name,
                                                      disc=disc))
        self.broadcast("joined", {"player": player.id, "name": player.name, "disc": disc})
        if len(self.seats) == 2:
            self.lock()  # matchmaking sends anyone else to another room
            for seat in self.seats.values():
                seat.wins = 0
            self.board.round = 0
            self._start_round(next(s.pid for s in self.seats.values() if s.disc == 1))

    def on_drop(self, player: Player) -> None:
        self.seats[player.id].connected = False  # the turn clock keeps running

    def on_rejoin(self, player: Player) -> None:
        self.seats[player.id].connected = True

    def on_leave(self, player: Player, consented: bool) -> None:
        seat = self.seats.pop(player.id)
        self.world.remove(seat)
        self.broadcast("left", {"player": player.id, "name": player.name})
        if self.board.state == "playing":
            self._end_round(self._opponent(player.id), "forfeit")
        board = self.board
        board.state, board.turn, board.turn_ends, board.seconds_left = "waiting", 0, 0, 0
        for other in self.seats.values():
            other.rematch = False
        self.unlock()  # a seat is free: the one who stayed may get a new opponent
        self.set_metadata(state="waiting")

    # -- moves -------------------------------------------------------------------------

    @message("drop", int)
    def drop_disc(self, player: Player, col: int) -> None:
        board = self.board
        if not 0 <= col < COLS:
            raise InvalidInput(f"the column must be 0-{COLS - 1}")
        self._check_playing()
        if board.turn != player.id:
            raise InvalidInput("it is not your turn")
        row = next((r for r in range(ROWS) if self.grid[r * COLS + col] == 0), None)
        if row is None:
            raise InvalidInput(f"column {col} is full")
        cell = row * COLS + col
        disc = self.seats[player.id].disc
        self.grid[cell] = disc
        board.cells = "".join(map(str, self.grid))
        board.last = cell
        board.moves += 1
        self.broadcast("move", {"player": player.id, "disc": disc, "col": col, "row": row,
                                "cell": cell})
        line = winning_cells(self.grid, cell)
        if line:
            self._end_round(player.id, "four", line)
        elif board.moves == COLS * ROWS:
            self._end_round(-1, "draw")
        else:
            self._start_turn(self._opponent(player.id))

    @message("resign")
    def resign(self, player: Player, _body: Any) -> None:
        self._check_playing()
        self._end_round(self._opponent(player.id), "resign")

    @message("rematch")
    def ask_rematch(self, player: Player, _body: Any) -> None:
        state = self.board.state
        if state == "waiting":
            raise InvalidInput("waiting for an opponent")
        if state != "over":
            raise InvalidInput("the round is still being played")
        seat = self.seats[player.id]
        if seat.rematch:
            return  # asked already: a second click changes nothing
        seat.rematch = True
        self.broadcast("rematch", {"player": player.id})
        if all(s.rematch for s in self.seats.values()):
            self._start_round(self._opponent(self.starter))  # the starter alternates

    # -- the clock ---------------------------------------------------------------------

    def update(self, dt: float) -> None:
        board = self.board
        if board.state != "playing":
            return
        # This update describes tick self.tick + 1 (the count once this step is done).
        left = board.turn_ends - (self.tick + 1)
        if left <= 0:
            self._end_round(self._opponent(board.turn), "timeout")
        else:
            seconds = board.seconds_left = math.ceil(left / self.rate)
            # The tick whose update shows one second less (or, from 1, the timeout):
            # the first with left <= (seconds - 1) * rate. Until then nothing changes.
            self.wake_at(math.ceil(board.turn_ends - 1 - (seconds - 1) * self.rate))

    # -- rounds ------------------------------------------------------------------------

    def _check_playing(self) -> None:
        state = self.board.state
        if state == "waiting":
            raise InvalidInput("waiting for an opponent")
        if state == "over":
            raise InvalidInput("the round is over: send 'rematch' to play again")

    def _opponent(self, pid: int) -> int:
        return next((p for p in self.seats if p != pid), 0)

    def _start_round(self, starter: int) -> None:
        board = self.board
        self.grid = [0] * (COLS * ROWS)
        self.starter = starter
        board.cells, board.state, board.winner, board.reason = EMPTY, "playing", 0, ""
        board.line, board.last, board.moves = [], -1, 0
        board.round += 1
        for seat in self.seats.values():
            seat.rematch = False
        self._start_turn(starter)
        self.broadcast("start", {"round": board.round, "starter": starter})
        self.set_metadata(state="playing")

    def _start_turn(self, pid: int) -> None:
        board = self.board
        board.turn = pid
        board.turn_ends = self.tick + self.turn_ticks
        board.seconds_left = self.turn_seconds

    def _end_round(self, winner: int, reason: str, line: list[int] | None = None) -> None:
        board = self.board
        board.state, board.winner, board.reason = "over", winner, reason
        board.line = line or []
        board.turn = board.turn_ends = board.seconds_left = 0
        if winner in self.seats:
            self.seats[winner].wins += 1
        self.broadcast("over", {"round": board.round, "winner": winner, "reason": reason,
                                "line": board.line})
        self.set_metadata(state="over")
