"""RedisDirectory against a real redis-server: the Directory contract, atomically."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gameserver.cluster.redis_directory import RedisDirectory
from gameserver.core.directory import Reservation, RoomListing


@pytest.fixture
async def directory(redis_url: str) -> AsyncIterator[RedisDirectory]:
    client = Redis.from_url(redis_url)
    d = RedisDirectory(client, f"t{secrets.token_hex(4)}", "n1")
    await alive(d, "n1")
    yield d
    keys = [k async for k in client.scan_iter(f"{d.prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def alive(d: RedisDirectory, node: str, draining: bool = False) -> None:
    await d.redis.hset(d.key("node", node), mapping={"url": "http://x", "draining":
                                                     int(draining)})
    await d.redis.expire(d.key("node", node), 30)
    await d.redis.sadd(d.key("nodes"), node)
    await d.redis.zadd(d.key("load"), {node: 0}, nx=True)  # as cluster.Cluster.beat does


def seat(room_id: str, ttl: float = 10.0, name: str = "ann") -> Reservation:
    return Reservation(secrets.token_urlsafe(24), room_id, name, {"x": 1},
                       time.monotonic() + ttl, {"sub": "u1"})


async def test_reserve_redeem_release(directory: RedisDirectory) -> None:
    d = directory
    await d.add(RoomListing("r1", "arena", 2, metadata={"mode": "ffa"}, node="n1"))
    r = seat("r1")
    assert await d.reserve("r1", r) is None
    assert await d.pending() == 1
    listing = await d.get("r1")
    assert listing is not None
    assert (listing.players, listing.seats, listing.node, listing.metadata) == (
        0, 1, "n1", {"mode": "ffa"})
    got = await d.redeem(r.token)
    assert got is not None
    assert (got.room_id, got.name, got.options, got.auth) == ("r1", "ann", {"x": 1},
                                                             {"sub": "u1"})
    assert 9 < got.expires_at - time.monotonic() <= 10
    assert await d.redeem(r.token) is None  # single use
    listing = await d.get("r1")
    assert listing is not None and (listing.players, listing.seats) == (1, 1)
    assert await d.pending() == 0
    assert await d.load() == {"n1": 1}
    await d.release("r1", r.token)
    await d.release("r1", r.token)  # a retry frees nothing twice
    listing = await d.get("r1")
    assert listing is not None and (listing.players, listing.seats) == (0, 0)
    assert await d.load() == {"n1": 0}


async def test_refusals(directory: RedisDirectory) -> None:
    d = directory
    assert await d.reserve("nope", seat("nope")) == "no_such_room"
    await d.add(RoomListing("r1", "arena", 1, node="n1"))
    assert await d.reserve("r1", seat("r1")) is None
    assert await d.reserve("r1", seat("r1")) == "room_full"
    await d.add(RoomListing("r2", "arena", 4, node="n1"))
    await d.update("r2", locked=True, metadata={"k": 2})
    assert await d.reserve("r2", seat("r2")) == "room_locked"
    listing = await d.get("r2")
    assert listing is not None and listing.locked and listing.metadata == {"k": 2}


async def test_expired_reservations_free_their_seats(directory: RedisDirectory) -> None:
    d = directory
    await d.add(RoomListing("r1", "arena", 1, node="n1"))
    r = seat("r1", ttl=0.05)
    assert await d.reserve("r1", r) is None
    assert await d.reserve("r1", seat("r1")) == "room_full"
    await asyncio.sleep(0.1)
    listing = await d.get("r1")
    assert listing is not None and listing.seats == 0  # counted as free at once
    assert await d.pending() == 0
    assert await d.expire() == ["r1"]
    assert await d.expire() == []
    assert await d.redeem(r.token) is None
    assert await d.load() == {"n1": 0}
    assert await d.reserve("r1", seat("r1")) is None
    assert await d.load() == {"n1": 1}


async def test_fifty_concurrent_reserves_into_a_room_of_eight(redis_url: str,
                                                              directory: RedisDirectory
                                                              ) -> None:
    await directory.add(RoomListing("r1", "arena", 8, node="n1"))
    clients = [Redis.from_url(redis_url) for _ in range(5)]  # as if from five nodes
    try:
        dirs = [RedisDirectory(c, directory.prefix) for c in clients]
        results = await asyncio.gather(*(dirs[i % 5].reserve("r1", seat("r1"))
                                         for i in range(50)))
    finally:
        for c in clients:
            await c.aclose()
    assert results.count(None) == 8
    assert results.count("room_full") == 42
    listing = await directory.get("r1")
    assert listing is not None and listing.seats == 8
    assert await directory.load() == {"n1": 8}


async def test_listing_order_privacy_and_games(directory: RedisDirectory) -> None:
    d = directory
    await d.add(RoomListing("old", "arena", 4, node="n1", created_at=1.0))
    await d.add(RoomListing("new", "arena", 4, node="n1", created_at=2.0))
    await d.add(RoomListing("other", "coins", 4, node="n1", created_at=1.5))
    await d.add(RoomListing("secret", "arena", 4, private=True, node="n1"))
    assert [r.room_id for r in await d.rooms("arena")] == ["old", "new"]
    assert [r.room_id for r in await d.rooms()] == ["old", "other", "new"]
    secret = await d.get("secret")
    assert secret is not None and secret.private  # joinable by id, never listed
    await d.remove("old")
    assert [r.room_id for r in await d.rooms("arena")] == ["new"]
    assert await d.get("old") is None


async def test_dead_and_draining_nodes(directory: RedisDirectory) -> None:
    d = directory
    await alive(d, "n2")
    await alive(d, "n3", draining=True)
    await d.add(RoomListing("a", "arena", 4, node="n1"))
    await d.add(RoomListing("b", "arena", 4, node="n2"))
    await d.add(RoomListing("c", "arena", 4, node="n3"))
    assert await d.reserve("b", seat("b")) is None
    assert sorted(await d.least_loaded()) == ["n1"]  # n2 has a seat taken, n3 drains
    listed = {r.room_id: r for r in await d.rooms()}
    assert listed["c"].locked and not listed["a"].locked
    assert await d.reserve("c", seat("c")) == "room_locked"
    await d.redis.delete(d.key("node", "n2"))  # n2's presence expired: it died
    assert [r.room_id for r in await d.rooms()] == ["a", "c"]
    assert await d.get("b") is None
    assert await d.reserve("b", seat("b")) == "no_such_room"
    assert await d.drop_node("n1") == -1  # alive: not dropped
    assert await d.drop_node("n2") == 1
    assert not await d.redis.exists(d.key("room", "b"), d.key("res", "b"),
                                    d.key("node-rooms", "n2"))
    assert await d.pending() == 0
    assert "n2" not in await d.load()


async def test_the_public_listing_counts_reserved_seats(directory: RedisDirectory) -> None:
    d = directory
    await d.add(RoomListing("r1", "arena", 2, node="n1"))
    first, second = seat("r1"), seat("r1", name="bob")
    assert await d.reserve("r1", first) is None and await d.reserve("r1", second) is None
    assert await d.redeem(first.token) is not None
    (listing,) = await d.rooms("arena")
    view = listing.public_view()
    assert (view["players"], view["reserved"], view["joinable"]) == (1, 1, False)


async def test_reconcile_sets_seats_unless_a_later_write_landed(
        directory: RedisDirectory) -> None:
    d = directory
    await d.add(RoomListing("r1", "arena", 4, node="n1"))
    seats = [seat("r1") for _ in range(3)]
    for r in seats:
        assert await d.reserve("r1", r) is None
        assert await d.redeem(r.token) is not None
    stale = d.snapshot_seq()  # a reconcile built now, delayed by a fault...
    await d.release("r1", seats[0].token)
    await d.release("r1", seats[0].token)  # retried: frees nothing twice
    late = seat("r1")
    assert await d.reserve("r1", late) is None
    assert await d.redeem(late.token) is not None  # ...while a player takes a seat
    everyone = [r.token for r in seats] + [late.token]
    assert await d.reconcile(stale, [("r1", False, {}, everyone[:3])]) == []
    seated = {t.decode() for t in await d.redis.smembers(d.key("seated", "r1"))}
    assert seated == set(everyone[1:])  # the stale reconcile was refused
    # A ghost seat (a redeem whose caller gave up) and a lost release are set right.
    ghost = seat("r1")
    assert await d.reserve("r1", ghost) is None
    assert await d.redeem(ghost.token) is not None
    assert await d.reconcile(d.snapshot_seq(), [("r1", True, {"k": 1}, [late.token])]) == []
    listing = await d.get("r1")
    assert listing is not None
    assert (listing.players, listing.locked, listing.metadata) == (1, True, {"k": 1})
    assert await d.load() == {"n1": 1}
    assert await d.reconcile(d.snapshot_seq(), [("gone", False, {}, [])]) == ["gone"]


async def test_prune_drops_rooms_the_node_no_longer_hosts(directory: RedisDirectory) -> None:
    d = directory
    await d.add(RoomListing("kept", "arena", 4, node="n1"))
    await d.add(RoomListing("ghost", "arena", 4, node="n1"))  # e.g. a remove that failed
    snapshot = d.snapshot_seq()
    await d.add(RoomListing("new", "arena", 4, node="n1"))  # listed after the snapshot
    assert await d.reserve("new", seat("new")) is None
    await d.redis.zadd(d.key("load"), {"n1": 42})  # drifted
    assert await d.prune(snapshot, ["kept"]) == 1
    assert {r.room_id for r in await d.rooms()} == {"kept", "new"}
    assert await d.load() == {"n1": 1}  # recounted: new's reservation


async def test_only_the_rooms_node_redeems(directory: RedisDirectory) -> None:
    d = directory
    await d.add(RoomListing("r1", "arena", 4, node="n1"))
    r = seat("r1")
    assert await d.reserve("r1", r) is None
    other = RedisDirectory(d.redis, d.prefix, "n2")
    assert await other.redeem(r.token) is None  # a socket sent to the wrong node
    assert await d.redeem(r.token) is not None  # the reservation was left for n1
