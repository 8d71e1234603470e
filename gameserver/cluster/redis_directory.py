"""The room directory in Redis: rooms, seats and reservations shared by every node.

Every step that checks and changes capacity is one Lua script, so Redis runs
it atomically and concurrent joins from any number of nodes never over-fill
a room. Times are Redis's own clock (``TIME``), read inside the scripts: the
nodes' monotonic clocks cannot be compared, and their wall clocks need not
agree. A :class:`Reservation`'s ``expires_at`` stays a deadline on the
caller's ``time.monotonic()`` (as with :class:`MemoryDirectory`); it travels
to Redis as a time-to-live.

Keys, under a prefix ``P`` (``--cluster-prefix``, default ``gs``):

========================  =====================================================
``P:room:ID``             hash: game, max, private, locked, meta (JSON), node,
                          created (wall-clock seconds), seq and born (see below),
                          watchers (connected spectators), match (the options it
                          is matched by, canonical JSON; "" for none)
``P:seated:ID``           set: the seats taken in the room (redeemed reservation tokens)
``P:res:ID``              sorted set: the room's reservation tokens by expiry
``P:resv:TOKEN``          string: the reservation (JSON), with a TTL
``P:pass:TOKEN``          string: a spectator's pass (the room id), with a TTL
``P:pending``             sorted set: ``"ID TOKEN"`` of every reservation by expiry
``P:public``              sorted set: public room ids by creation time
``P:public:GAME``         the same, per game
``P:node:NODE``           hash with a TTL: url, players, rooms, draining (cluster.py)
``P:nodes``               set: node ids, so that dead nodes can be swept
``P:node-rooms:NODE``     set: the rooms a node hosts
``P:load``                sorted set: seats (players + reservations) per node
========================  =====================================================

Seats are sets of tokens, not counters, so that counts converge after a fault
(issue 11): releasing a seat removes its token (a retry cannot free it twice),
and the hosting node, the only writer of its rooms' seat sets, periodically
sends the exact set it hosts (:meth:`reconcile`). Each write of the host carries
a number from the node's own sequence; the room keeps the highest (``seq``),
and a reconcile applies only if no later write has landed, so a reconcile
delayed in a frozen Redis cannot overwrite a newer join. ``born`` is the
sequence number of the room's listing, so that :meth:`prune` never drops a
room listed after its snapshot.

A room whose node's presence key is gone (the node died) is left out of
listings and refused by ``reserve`` at once; :meth:`drop_node` deletes it.
A room on a draining node is listed as locked. The scripts build key names
from the prefix, so they need one Redis server (or a primary with replicas),
not Redis Cluster's sharding.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gameserver.core.directory import Reservation, RoomListing, match_key
from gameserver.host.matchmaker import DirectoryUnavailable

_PRELUDE = """
local P = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- Drop a room's expired reservations; the node's load follows.
local function drop_expired(room, node, t)
  local rz = P .. ':res:' .. room
  local gone = redis.call('ZRANGEBYSCORE', rz, '-inf', '(' .. t)
  if #gone > 0 then
    for _, tok in ipairs(gone) do
      redis.call('ZREM', P .. ':pending', room .. ' ' .. tok)
      redis.call('DEL', P .. ':resv:' .. tok)
    end
    redis.call('ZREMRANGEBYSCORE', rz, '-inf', '(' .. t)
    redis.call('ZINCRBY', P .. ':load', -#gone, node)
  end
end
-- Delete a room with its reservations; returns 1 if it existed.
local function drop_room(room)
  local rk = P .. ':room:' .. room
  local info = redis.call('HMGET', rk, 'node', 'game')
  if not info[1] then return 0 end
  local rz, sk = P .. ':res:' .. room, P .. ':seated:' .. room
  local toks = redis.call('ZRANGE', rz, 0, -1)
  for _, tok in ipairs(toks) do
    redis.call('ZREM', P .. ':pending', room .. ' ' .. tok)
    redis.call('DEL', P .. ':resv:' .. tok)
  end
  local seats = #toks + redis.call('SCARD', sk)
  if seats > 0 and redis.call('ZSCORE', P .. ':load', info[1]) then
    redis.call('ZINCRBY', P .. ':load', -seats, info[1])
  end
  redis.call('DEL', rk, rz, sk)
  redis.call('ZREM', P .. ':public', room)
  redis.call('ZREM', P .. ':public:' .. info[2], room)
  redis.call('SREM', P .. ':node-rooms:' .. info[1], room)
  return 1
end
-- A room as an array for Python, or false if it or its node is gone. States
-- preset to false hide the rooms of nodes the caller found unreachable.
local function listing(room, t, states)
  local f = redis.call('HMGET', P .. ':room:' .. room,
                       'node', 'game', 'max', 'private', 'locked', 'meta', 'created',
                       'watchers', 'match')
  if not f[1] then return false end
  local state = states[f[1]]
  if state == nil then
    state = redis.call('HGET', P .. ':node:' .. f[1], 'draining') or false
    states[f[1]] = state
  end
  if not state then return false end
  local locked = f[5]
  if state == '1' then locked = '1' end
  local pending = redis.call('ZCOUNT', P .. ':res:' .. room, t, '+inf')
  local players = redis.call('SCARD', P .. ':seated:' .. room)
  return {room, f[2], f[3], f[4], locked, f[6], tostring(players), tostring(pending), f[7], f[1],
          f[8] or '0', f[9] or ''}
end
-- States for listing(): ARGV from index i on are nodes to hide.
local function hidden(i)
  local states = {}
  for j = i, #ARGV do states[ARGV[j]] = false end
  return states
end
-- Record a write of the host numbered seq (the room keeps the highest).
local function bump(rk, seq)
  if tonumber(redis.call('HGET', rk, 'seq') or '0') < seq then
    redis.call('HSET', rk, 'seq', seq)
  end
end
"""

_ADD = _PRELUDE + """
local room, node, game, private = ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local rk = P .. ':room:' .. room
redis.call('HSET', rk, 'node', node, 'game', game, 'max', ARGV[5], 'private', private,
           'locked', ARGV[7], 'meta', ARGV[8], 'created', ARGV[9], 'born', ARGV[10],
           'match', ARGV[11])
bump(rk, tonumber(ARGV[10]))
if #ARGV > 11 then  -- listed again with its seats (cluster.py, after Redis lost it)
  local sk = P .. ':seated:' .. room
  local before = redis.call('SCARD', sk)
  for i = 12, #ARGV do redis.call('SADD', sk, ARGV[i]) end
  local added = redis.call('SCARD', sk) - before
  if added > 0 then redis.call('ZINCRBY', P .. ':load', added, node) end
end
redis.call('SADD', P .. ':node-rooms:' .. node, room)
if private == '0' then
  redis.call('ZADD', P .. ':public', ARGV[9], room)
  redis.call('ZADD', P .. ':public:' .. game, ARGV[9], room)
end
return 1
"""

_REMOVE = _PRELUDE + "return drop_room(ARGV[2])"

_UPDATE = _PRELUDE + """
local rk = P .. ':room:' .. ARGV[2]
if redis.call('EXISTS', rk) == 0 then return 0 end
redis.call('HSET', rk, 'locked', ARGV[3], 'meta', ARGV[4], 'watchers', ARGV[5])
return 1
"""

_GET = _PRELUDE + "return listing(ARGV[2], now(), hidden(3))"

_ROOMS = _PRELUDE + """
local t, states, out = now(), hidden(3), {}
local zkey = P .. ':public'
if ARGV[2] ~= '' then zkey = zkey .. ':' .. ARGV[2] end
for _, room in ipairs(redis.call('ZRANGE', zkey, 0, -1)) do
  local l = listing(room, t, states)
  if l then out[#out + 1] = l end
end
return out
"""

# ARGV: P, room, token, ttl seconds, reservation JSON
_RESERVE = _PRELUDE + """
local room, token, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local rk = P .. ':room:' .. room
local info = redis.call('HMGET', rk, 'node', 'max', 'locked')
if not info[1] then return 'no_such_room' end
local draining = redis.call('HGET', P .. ':node:' .. info[1], 'draining')
if not draining then return 'no_such_room' end
local t = now()
drop_expired(room, info[1], t)
if info[3] == '1' or draining == '1' then return 'room_locked' end
local rz = P .. ':res:' .. room
local seated = redis.call('SCARD', P .. ':seated:' .. room)
if seated + redis.call('ZCARD', rz) >= tonumber(info[2]) then return 'room_full' end
redis.call('ZADD', rz, t + ttl, token)
redis.call('ZADD', P .. ':pending', t + ttl, room .. ' ' .. token)
redis.call('SET', P .. ':resv:' .. token, ARGV[5], 'PX', math.floor(ttl * 1000) + 5000)
redis.call('ZINCRBY', P .. ':load', 1, info[1])
return false
"""

# ARGV: P, token, node, seq. Returns {reservation JSON, seconds left} or nil. Only
# the room's own node redeems: a token sent elsewhere is left for the right one.
_REDEEM = _PRELUDE + """
local token = ARGV[2]
local dk = P .. ':resv:' .. token
local d = redis.call('GET', dk)
if not d then return false end
local room = cjson.decode(d)['room_id']
local rk = P .. ':room:' .. room
local node = redis.call('HGET', rk, 'node')
if node ~= ARGV[3] then return false end
redis.call('DEL', dk)
local rz = P .. ':res:' .. room
local score = redis.call('ZSCORE', rz, token)
if not score then return false end
redis.call('ZREM', rz, token)
redis.call('ZREM', P .. ':pending', room .. ' ' .. token)
local left = tonumber(score) - now()
if left < 0 then
  redis.call('ZINCRBY', P .. ':load', -1, node)
  return false
end
redis.call('SADD', P .. ':seated:' .. room, token)
bump(rk, tonumber(ARGV[4]))
return {d, tostring(left)}
"""

# ARGV: P, room, seat token, seq. Idempotent: a retried release frees nothing twice.
_RELEASE = _PRELUDE + """
local rk = P .. ':room:' .. ARGV[2]
local node = redis.call('HGET', rk, 'node')
if not node then return 0 end
bump(rk, tonumber(ARGV[4]))
if redis.call('SREM', P .. ':seated:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('ZINCRBY', P .. ':load', -1, node)
return 1
"""

# ARGV: P, node, seq, then per room: id, locked, meta JSON, seat count, seat tokens...
# Sets each room's seats to what its node hosts, unless a later write of the node
# (seq) has landed. Returns the ids of rooms that are not in Redis (to list again).
_RECONCILE = _PRELUDE + """
local node, seq, gone, i = ARGV[2], tonumber(ARGV[3]), {}, 4
while i <= #ARGV do
  local room, n = ARGV[i], tonumber(ARGV[i + 3])
  local rk, sk = P .. ':room:' .. room, P .. ':seated:' .. room
  local owner = redis.call('HGET', rk, 'node')
  if not owner then
    gone[#gone + 1] = room
  elseif owner == node and tonumber(redis.call('HGET', rk, 'seq') or '0') <= seq then
    local before = redis.call('SCARD', sk)
    redis.call('DEL', sk)
    for j = i + 4, i + 3 + n do redis.call('SADD', sk, ARGV[j]) end
    redis.call('HSET', rk, 'locked', ARGV[i + 1], 'meta', ARGV[i + 2], 'seq', seq)
    if n ~= before then redis.call('ZINCRBY', P .. ':load', n - before, node) end
  end
  i = i + 4 + n
end
return gone
"""

# ARGV: P, node, seq, hosted room ids... Drops the node's rooms it no longer hosts
# (listed before seq: a room listed since is not in the caller's snapshot), then
# recounts the node's seats from the rooms' seat and reservation sets.
_PRUNE = _PRELUDE + """
local node, seq, keep, dropped = ARGV[2], tonumber(ARGV[3]), {}, 0
for i = 4, #ARGV do keep[ARGV[i]] = true end
local nr = P .. ':node-rooms:' .. node
for _, room in ipairs(redis.call('SMEMBERS', nr)) do
  if not keep[room] then
    local born = redis.call('HGET', P .. ':room:' .. room, 'born')
    if not born then
      redis.call('SREM', nr, room)
    elseif tonumber(born) <= seq then
      dropped = dropped + drop_room(room)
    end
  end
end
if redis.call('EXISTS', P .. ':node:' .. node) == 1 then
  local seats = 0
  for _, room in ipairs(redis.call('SMEMBERS', nr)) do
    seats = seats + redis.call('SCARD', P .. ':seated:' .. room)
                  + redis.call('ZCARD', P .. ':res:' .. room)
  end
  redis.call('ZADD', P .. ':load', seats, node)
end
return dropped
"""

# ARGV: P, batch size. Returns the ids of rooms that lost a reservation.
_EXPIRE = _PRELUDE + """
local gone = redis.call('ZRANGEBYSCORE', P .. ':pending', '-inf', '(' .. now(),
                        'LIMIT', 0, tonumber(ARGV[2]))
local rooms, out = {}, {}
for _, m in ipairs(gone) do
  local sp = string.find(m, ' ', 1, true)
  local room, tok = string.sub(m, 1, sp - 1), string.sub(m, sp + 1)
  redis.call('ZREM', P .. ':pending', m)
  redis.call('DEL', P .. ':resv:' .. tok)
  if redis.call('ZREM', P .. ':res:' .. room, tok) == 1 then
    local node = redis.call('HGET', P .. ':room:' .. room, 'node')
    if node then redis.call('ZINCRBY', P .. ':load', -1, node) end
    if not rooms[room] then rooms[room] = true; out[#out + 1] = room end
  end
end
return out
"""

_PENDING = _PRELUDE + "return redis.call('ZCOUNT', P .. ':pending', now(), '+inf')"

# ARGV: P, node, force. Deletes a node's presence, rooms and load entry; unless
# forced, only if its presence has expired (it may have come back since the check).
_DROP_NODE = _PRELUDE + """
local node = ARGV[2]
if ARGV[3] ~= '1' and redis.call('EXISTS', P .. ':node:' .. node) == 1 then return -1 end
local n = 0
for _, room in ipairs(redis.call('SMEMBERS', P .. ':node-rooms:' .. node)) do
  n = n + drop_room(room)
end
redis.call('DEL', P .. ':node-rooms:' .. node, P .. ':node:' .. node)
redis.call('SREM', P .. ':nodes', node)
redis.call('ZREM', P .. ':load', node)
return n
"""

# ARGV: P, then pairs of node and presence beat count: nodes to skip until they beat again.
# The live, non-draining nodes with the fewest seats.
_LEAST_LOADED = _PRELUDE + """
local entries = redis.call('ZRANGE', P .. ':load', 0, -1, 'WITHSCORES')
local skip = {}
for i = 2, #ARGV, 2 do skip[ARGV[i]] = ARGV[i + 1] end
local out, best = {}, nil
for i = 1, #entries, 2 do
  local node, seats = entries[i], tonumber(entries[i + 1])
  if best ~= nil and seats > best then break end
  local f = redis.call('HMGET', P .. ':node:' .. node, 'draining', 'beat')
  if f[1] == '0' and (skip[node] == nil or skip[node] ~= f[2]) then
    best = seats
    out[#out + 1] = node
  end
end
return out
"""

EXPIRE_BATCH = 1000
RECONCILE_BATCH = 2000  # arguments per reconcile script call: bounded work per call
TIMEOUT = 2.0  # seconds, over the client's socket timeout: a bound on any one call

# What makes Redis unavailable, as opposed to a bug in a script (ResponseError).
UNAVAILABLE = (ConnectionError, TimeoutError, OSError, asyncio.TimeoutError,
               RedisConnectionError, RedisTimeoutError, ReadOnlyError)


class RedisDirectory:
    """The :class:`~gameserver.core.directory.Directory` of a cluster, in one Redis.

    ``node`` is the node that uses it: only that node redeems and releases its
    rooms' seats. ``hidden`` holds nodes whose rooms this node leaves out of
    listings (cluster.py: found unreachable). ``on_status(ok, exc)`` hears the
    outcome of every call, so that an outage is noticed once, wherever it shows.
    """

    def __init__(self, redis: Redis, prefix: str = "gs", node: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self.node = node
        self.hidden: set[str] = set()
        self.on_status: Callable[[bool, BaseException | None], None] = lambda ok, exc: None
        self._seq = 0  # this node's writes to its rooms' seats, numbered
        self._inflight: set[int] = set()
        self._calls: set[asyncio.Future[Any]] = set()  # calls not yet answered
        s = redis.register_script
        self._add, self._remove, self._update = s(_ADD), s(_REMOVE), s(_UPDATE)
        self._get, self._rooms = s(_GET), s(_ROOMS)
        self._reserve, self._redeem, self._release = s(_RESERVE), s(_REDEEM), s(_RELEASE)
        self._expire, self._pending = s(_EXPIRE), s(_PENDING)
        self._drop_node, self._least_loaded = s(_DROP_NODE), s(_LEAST_LOADED)
        self._reconcile, self._prune = s(_RECONCILE), s(_PRUNE)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def call(self, awaitable: Awaitable[Any]) -> Any:
        """Await a Redis call, bounded; DirectoryUnavailable if Redis cannot answer."""
        call = asyncio.ensure_future(awaitable)
        self._calls.add(call)
        call.add_done_callback(self._answered)
        try:
            # The call runs in its own task, awaited through asyncio.wait: a caller that
            # is cancelled (say while redis-py connects) is never kept from seeing its
            # cancellation, which asyncio.wait_for can lose before Python 3.12, and then
            # RoomManager.stop would wait for housekeeping until the shutdown timeout.
            done, _ = await asyncio.wait({call}, timeout=TIMEOUT)
            if not done:
                raise TimeoutError(f"no answer within {TIMEOUT} s")
            result = call.result()
        except UNAVAILABLE as exc:
            self.on_status(False, exc)
            raise DirectoryUnavailable(f"Redis is unavailable: {exc or type(exc).__name__}"
                                       ) from exc
        self.on_status(True, None)
        return result

    def _answered(self, call: asyncio.Future[Any]) -> None:
        self._calls.discard(call)
        if not call.cancelled():
            call.exception()  # retrieved: a caller that timed out has already reported it

    async def settle(self, timeout: float) -> None:
        """Wait (bounded) for calls whose callers stopped waiting: a write that lands
        after the node has left Redis would bring it back."""
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=timeout)

    async def _run(self, script: Any, *args: Any) -> Any:
        return await self.call(script(keys=[], args=[self.prefix, *args]))

    def _begin(self) -> int:
        """Number a write to this node's seats; in flight until _end."""
        self._seq += 1
        self._inflight.add(self._seq)
        return self._seq

    def snapshot_seq(self) -> int:
        """The number a reconcile of state read now carries: below every write in flight,
        whose effect the caller's state may not show yet."""
        return min(self._inflight) - 1 if self._inflight else self._seq

    # -- the Directory protocol ----------------------------------------------------

    async def add(self, listing: RoomListing, seats: list[str] | None = None) -> None:
        """List a room; ``seats``: the tokens of its seated players, when it is listed
        again after Redis lost it."""
        seq = self._begin()
        try:
            await self._run(self._add, listing.room_id, listing.node, listing.game,
                            listing.max_players, int(listing.private), int(listing.locked),
                            json.dumps(listing.metadata), repr(listing.created_at), seq,
                            match_key(listing.match), *(seats or ()))
        finally:
            self._inflight.discard(seq)

    async def remove(self, room_id: str) -> None:
        await self._run(self._remove, room_id)

    async def get(self, room_id: str) -> RoomListing | None:
        row = await self._run(self._get, room_id, *self.hidden)
        return _listing(row) if row else None

    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any],
                     spectators: int = 0) -> None:
        await self._run(self._update, room_id, int(locked), json.dumps(metadata), spectators)

    async def add_pass(self, token: str, room_id: str, ttl: float) -> None:
        # A plain key with a TTL: a pass holds no seat, so no script has to count it.
        await self.call(self.redis.set(self.key("pass", token), room_id,
                                       px=max(1, int(ttl * 1000))))

    async def take_pass(self, token: str) -> str | None:
        room_id = await self.call(self.redis.getdel(self.key("pass", token)))
        return _text(room_id) if room_id else None

    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        return [_listing(row) for row in await self._run(self._rooms, game or "",
                                                         *self.hidden)]

    async def first_joinable(self, game: str, skip: Collection[str] = (),
                             match: Mapping[str, Any] | None = None) -> RoomListing | None:
        # A scan, as before the index MemoryDirectory keeps; Redis answers it in one call.
        key = match_key(match or {})
        return next((r for r in await self.rooms(game) if r.joinable and r.room_id not in skip
                     and match_key(r.match) == key), None)

    async def reserve(self, room_id: str, reservation: Reservation) -> str | None:
        ttl = max(0.0, reservation.expires_at - time.monotonic())
        details = {"room_id": room_id, "name": reservation.name,
                   "options": reservation.options, "auth": reservation.auth}
        refused = await self._run(self._reserve, room_id, reservation.token, repr(ttl),
                                  json.dumps(details))
        return _text(refused) if refused else None

    async def redeem(self, token: str) -> Reservation | None:
        seq = self._begin()
        try:
            found = await self._run(self._redeem, token, self.node, seq)
        finally:
            self._inflight.discard(seq)
        if not found:
            return None
        details = json.loads(found[0])
        return Reservation(token, details["room_id"], details["name"], details["options"] or {},
                           time.monotonic() + float(found[1]), details.get("auth"))

    async def release(self, room_id: str, seat: str = "") -> None:
        seq = self._begin()
        try:
            await self._run(self._release, room_id, seat, seq)
        finally:
            self._inflight.discard(seq)

    async def expire(self) -> list[str]:
        return sorted(_text(r) for r in await self._run(self._expire, EXPIRE_BATCH))

    async def pending(self) -> int:
        return int(await self._run(self._pending))

    # -- cluster support (cluster.py) ----------------------------------------------

    async def reconcile(self, seq: int,
                        rooms: list[tuple[str, bool, dict[str, Any], list[str]]]) -> list[str]:
        """Set each room's seats (and lock, metadata) to ``(id, locked, metadata, seat
        tokens)`` as this node hosts them, unless a write numbered above ``seq`` landed
        since; the ids of the rooms that Redis has lost."""
        gone: list[str] = []
        batch: list[Any] = []
        for room_id, locked, metadata, seats in rooms:
            batch += [room_id, int(locked), json.dumps(metadata), len(seats), *seats]
            if len(batch) >= RECONCILE_BATCH:
                gone += await self._run(self._reconcile, self.node, seq, *batch)
                batch = []
        if batch:
            gone += await self._run(self._reconcile, self.node, seq, *batch)
        return [_text(g) for g in gone]

    async def prune(self, seq: int, hosted: list[str]) -> int:
        """Drop this node's rooms listed up to ``seq`` that it does not host (an add or
        remove that a fault delayed); recount its seats. The rooms dropped."""
        return int(await self._run(self._prune, self.node, seq, *hosted))

    async def drop_node(self, node: str, *, force: bool = False) -> int:
        """Delete a node's presence, its rooms and their reservations; the rooms dropped.

        Unless ``force``, only a node whose presence has expired (else returns -1).
        """
        return int(await self._run(self._drop_node, node, int(force)))

    async def least_loaded(self, skip: dict[str, str] | None = None) -> list[str]:
        """Live, non-draining nodes with the fewest seats (players + reservations),
        leaving out the nodes in ``skip`` while their presence beat count is as given."""
        pairs = [v for item in (skip or {}).items() for v in item]
        return [_text(n) for n in await self._run(self._least_loaded, *pairs)]

    async def load(self) -> dict[str, int]:
        """Seats per node, as the scripts keep them."""
        rows = await self.call(self.redis.zrange(self.key("load"), 0, -1, withscores=True))
        return {_text(n): round(s) for n, s in rows}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _listing(row: list[Any]) -> RoomListing:
    (room_id, game, max_players, private, locked, meta, players, pending, created,
     node, watchers, match) = (_text(v) for v in row)
    return RoomListing(room_id, game, int(max_players), private=private == "1",
                       locked=locked == "1", metadata=json.loads(meta), players=int(players),
                       seats=int(players) + int(pending), node=node,
                       created_at=float(created), spectators=int(watchers),
                       match=json.loads(match) if match else {})
