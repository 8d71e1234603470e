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
``P:room:ID``             hash: game, max, private, locked, meta (JSON), players,
                          node, created (wall-clock seconds)
``P:res:ID``              sorted set: the room's reservation tokens by expiry
``P:resv:TOKEN``          string: the reservation (JSON), with a TTL
``P:pending``             sorted set: ``"ID TOKEN"`` of every reservation by expiry
``P:public``              sorted set: public room ids by creation time
``P:public:GAME``         the same, per game
``P:node:NODE``           hash with a TTL: url, players, rooms, draining (cluster.py)
``P:nodes``               set: node ids, so that dead nodes can be swept
``P:node-rooms:NODE``     set: the rooms a node hosts
``P:load``                sorted set: seats (players + reservations) per node
========================  =====================================================

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
from collections.abc import Collection
from typing import Any

from redis.asyncio import Redis

from .directory import Reservation, RoomListing

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
  local info = redis.call('HMGET', rk, 'node', 'game', 'players')
  if not info[1] then return 0 end
  local rz = P .. ':res:' .. room
  local toks = redis.call('ZRANGE', rz, 0, -1)
  for _, tok in ipairs(toks) do
    redis.call('ZREM', P .. ':pending', room .. ' ' .. tok)
    redis.call('DEL', P .. ':resv:' .. tok)
  end
  redis.call('ZINCRBY', P .. ':load', -(tonumber(info[3]) + #toks), info[1])
  redis.call('DEL', rk, rz)
  redis.call('ZREM', P .. ':public', room)
  redis.call('ZREM', P .. ':public:' .. info[2], room)
  redis.call('SREM', P .. ':node-rooms:' .. info[1], room)
  return 1
end
-- A room as an array for Python, or false if it or its node is gone.
local function listing(room, t, states)
  local f = redis.call('HMGET', P .. ':room:' .. room,
                       'node', 'game', 'max', 'private', 'locked', 'meta', 'players', 'created')
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
  return {room, f[2], f[3], f[4], locked, f[6], f[7], tostring(pending), f[8], f[1]}
end
"""

_ADD = _PRELUDE + """
local room, node, game, private = ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local rk = P .. ':room:' .. room
local players = tonumber(ARGV[10])
local delta = players - (tonumber(redis.call('HGET', rk, 'players')) or 0)
redis.call('HSET', rk, 'node', node, 'game', game, 'max', ARGV[5], 'private', private,
           'locked', ARGV[7], 'meta', ARGV[8], 'players', players, 'created', ARGV[9])
if delta ~= 0 then redis.call('ZINCRBY', P .. ':load', delta, node) end
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
redis.call('HSET', rk, 'locked', ARGV[3], 'meta', ARGV[4])
return 1
"""

_GET = _PRELUDE + "return listing(ARGV[2], now(), {})"

_ROOMS = _PRELUDE + """
local t, states, out = now(), {}, {}
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
local info = redis.call('HMGET', rk, 'node', 'max', 'locked', 'players')
if not info[1] then return 'no_such_room' end
local draining = redis.call('HGET', P .. ':node:' .. info[1], 'draining')
if not draining then return 'no_such_room' end
local t = now()
drop_expired(room, info[1], t)
if info[3] == '1' or draining == '1' then return 'room_locked' end
local rz = P .. ':res:' .. room
if tonumber(info[4]) + redis.call('ZCARD', rz) >= tonumber(info[2]) then return 'room_full' end
redis.call('ZADD', rz, t + ttl, token)
redis.call('ZADD', P .. ':pending', t + ttl, room .. ' ' .. token)
redis.call('SET', P .. ':resv:' .. token, ARGV[5], 'PX', math.floor(ttl * 1000) + 5000)
redis.call('ZINCRBY', P .. ':load', 1, info[1])
return false
"""

# ARGV: P, token. Returns {reservation JSON, seconds left} or nil.
_REDEEM = _PRELUDE + """
local token = ARGV[2]
local dk = P .. ':resv:' .. token
local d = redis.call('GET', dk)
if not d then return false end
redis.call('DEL', dk)
local room = cjson.decode(d)['room_id']
local rz = P .. ':res:' .. room
local score = redis.call('ZSCORE', rz, token)
if not score then return false end
redis.call('ZREM', rz, token)
redis.call('ZREM', P .. ':pending', room .. ' ' .. token)
local rk = P .. ':room:' .. room
local node = redis.call('HGET', rk, 'node')
if not node then return false end
local left = tonumber(score) - now()
if left < 0 then
  redis.call('ZINCRBY', P .. ':load', -1, node)
  return false
end
redis.call('HINCRBY', rk, 'players', 1)
return {d, tostring(left)}
"""

_RELEASE = _PRELUDE + """
local rk = P .. ':room:' .. ARGV[2]
local node = redis.call('HGET', rk, 'node')
if not node then return 0 end
redis.call('HINCRBY', rk, 'players', -1)
redis.call('ZINCRBY', P .. ':load', -1, node)
return 1
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

# ARGV: P. The live, non-draining nodes with the fewest seats: {node, seats, ...}.
_LEAST_LOADED = _PRELUDE + """
local entries = redis.call('ZRANGE', P .. ':load', 0, -1, 'WITHSCORES')
local out, best = {}, nil
for i = 1, #entries, 2 do
  local node, seats = entries[i], tonumber(entries[i + 1])
  if best ~= nil and seats > best then break end
  if redis.call('HGET', P .. ':node:' .. node, 'draining') == '0' then
    best = seats
    out[#out + 1] = node
  end
end
return out
"""

EXPIRE_BATCH = 1000


class RedisDirectory:
    """The :class:`~gameserver.directory.Directory` of a cluster, in one Redis."""

    def __init__(self, redis: Redis, prefix: str = "gs") -> None:
        self.redis = redis
        self.prefix = prefix
        s = redis.register_script
        self._add, self._remove, self._update = s(_ADD), s(_REMOVE), s(_UPDATE)
        self._get, self._rooms = s(_GET), s(_ROOMS)
        self._reserve, self._redeem, self._release = s(_RESERVE), s(_REDEEM), s(_RELEASE)
        self._expire, self._pending = s(_EXPIRE), s(_PENDING)
        self._drop_node, self._least_loaded = s(_DROP_NODE), s(_LEAST_LOADED)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _run(self, script: Any, *args: Any) -> Any:
        # Shielded: a task cancelled while redis-py connects can otherwise lose the
        # cancellation (seen with a reconnect after an event-loop stall), and then
        # RoomManager.stop would wait for housekeeping until the shutdown timeout.
        return await asyncio.shield(script(keys=[], args=[self.prefix, *args]))

    # -- the Directory protocol ----------------------------------------------------

    async def add(self, listing: RoomListing) -> None:
        await self._run(self._add, listing.room_id, listing.node, listing.game,
                        listing.max_players, int(listing.private), int(listing.locked),
                        json.dumps(listing.metadata), repr(listing.created_at),
                        listing.players)

    async def remove(self, room_id: str) -> None:
        await self._run(self._remove, room_id)

    async def get(self, room_id: str) -> RoomListing | None:
        row = await self._run(self._get, room_id)
        return _listing(row) if row else None

    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any]) -> None:
        await self._run(self._update, room_id, int(locked), json.dumps(metadata))

    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        return [_listing(row) for row in await self._run(self._rooms, game or "")]

    async def first_joinable(self, game: str, skip: Collection[str] = ()) -> RoomListing | None:
        # A scan, as before the index MemoryDirectory keeps; Redis answers it in one call.
        return next((r for r in await self.rooms(game) if r.joinable and r.room_id not in skip),
                    None)

    async def reserve(self, room_id: str, reservation: Reservation) -> str | None:
        ttl = max(0.0, reservation.expires_at - time.monotonic())
        details = {"room_id": room_id, "name": reservation.name,
                   "options": reservation.options, "auth": reservation.auth}
        refused = await self._run(self._reserve, room_id, reservation.token, repr(ttl),
                                  json.dumps(details))
        return _text(refused) if refused else None

    async def redeem(self, token: str) -> Reservation | None:
        found = await self._run(self._redeem, token)
        if not found:
            return None
        details = json.loads(found[0])
        return Reservation(token, details["room_id"], details["name"], details["options"] or {},
                           time.monotonic() + float(found[1]), details.get("auth"))

    async def release(self, room_id: str) -> None:
        await self._run(self._release, room_id)

    async def expire(self) -> list[str]:
        return sorted(_text(r) for r in await self._run(self._expire, EXPIRE_BATCH))

    async def pending(self) -> int:
        return int(await self._run(self._pending))

    # -- cluster support (cluster.py) ----------------------------------------------

    async def drop_node(self, node: str, *, force: bool = False) -> int:
        """Delete a node's presence, its rooms and their reservations; the rooms dropped.

        Unless ``force``, only a node whose presence has expired (else returns -1).
        """
        return int(await self._run(self._drop_node, node, int(force)))

    async def least_loaded(self) -> list[str]:
        """Live, non-draining nodes with the fewest seats (players + reservations)."""
        return [_text(n) for n in await self._run(self._least_loaded)]

    async def load(self) -> dict[str, int]:
        """Seats per node, as the scripts keep them."""
        rows = await self.redis.zrange(self.key("load"), 0, -1, withscores=True)
        return {_text(n): round(s) for n, s in rows}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _listing(row: list[Any]) -> RoomListing:
    (room_id, game, max_players, private, locked, meta, players, pending, created,
     node) = (_text(v) for v in row)
    return RoomListing(room_id, game, int(max_players), private=private == "1",
                       locked=locked == "1", metadata=json.loads(meta), players=int(players),
                       seats=int(players) + int(pending), node=node,
                       created_at=float(created))
