"""Rate limits, address limits and signed join tokens, without sockets."""

from __future__ import annotations

import pytest

from gameserver.auth import AuthError, sign, verify
from gameserver.core.limits import AddressCounter, RateLimiter, TokenBucket, Verdict
from gameserver.web.client_budgets import KeyedBuckets, PendingReservations


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert sum(bucket.take(1, 0.0) for _ in range(30)) == 20
    assert sum(bucket.take(1, 1.0) for _ in range(30)) == 10  # one second refills ten


def test_a_flooder_is_told_then_closed_and_a_burst_is_forgiven() -> None:
    limiter = RateLimiter(messages_per_s=10, bytes_per_s=10_000, now=0.0, patience=3.0)
    verdicts = [limiter.check(10, 0.0) for _ in range(25)]
    assert verdicts[:20] == [Verdict.OK] * 20
    assert verdicts[20] is Verdict.LIMITED  # told once...
    assert set(verdicts[21:]) == {Verdict.SILENT}  # ...not once per message
    # Slowing down to the rate is forgiven.
    assert all(limiter.check(10, 2.0 + i / 5) is Verdict.OK for i in range(10))
    assert limiter.limited_since is None
    # Flooding for longer than the patience closes the connection.
    t, verdict = 10.0, Verdict.OK
    while verdict is not Verdict.CLOSE and t < 20:
        verdict = limiter.check(10, t)
        t += 0.001
    assert verdict is Verdict.CLOSE and 13.0 < t < 14.0


def test_a_flood_that_slips_a_message_through_now_and_then_is_still_closed() -> None:
    limiter = RateLimiter(messages_per_s=20, bytes_per_s=10_000, now=0.0, patience=3.0)
    verdicts = []
    t = 0.0
    while t < 10:  # ten times the allowed rate: a token refills every 50 ms
        verdicts.append((t, limiter.check(10, t)))
        if verdicts[-1][1] is Verdict.CLOSE:
            break
        t += 0.005
    assert Verdict.OK in {v for time_, v in verdicts if time_ > 3}  # some got through...
    closed_at = verdicts[-1][0]
    assert verdicts[-1][1] is Verdict.CLOSE and 3.0 < closed_at < 3.6  # ...yet it was closed


def test_the_byte_budget_is_separate_from_the_message_budget() -> None:
    limiter = RateLimiter(messages_per_s=1000, bytes_per_s=1000, now=0.0)
    assert limiter.check(2000, 0.0) is Verdict.OK  # the burst is two seconds' worth
    assert limiter.check(100, 0.0) is Verdict.LIMITED


def test_address_counter_limits_all_but_exempt_networks() -> None:
    counter = AddressCounter(2, exempt=["127.0.0.0/8", "::1/128"])
    assert counter.acquire("10.1.1.1") and counter.acquire("10.1.1.1")
    assert not counter.acquire("10.1.1.1")
    assert counter.acquire("10.1.1.2")
    counter.release("10.1.1.1")
    assert counter.acquire("10.1.1.1")
    assert all(counter.acquire("127.0.0.1") for _ in range(100))
    assert all(counter.acquire("::1") for _ in range(100))
    for _ in range(2):
        counter.release("10.1.1.1")
    counter.release("10.1.1.2")
    assert counter.counts == {}


def test_signed_tokens_verify_and_refuse_tampering_and_expiry() -> None:
    token = sign({"sub": "42", "name": "ann", "exp": 2_000}, "s3cret")
    assert verify(token, "s3cret", now=1_000)["name"] == "ann"
    cases = {
        "auth_invalid": [token + "x", token.replace(".", ".A"), "nodot", 42,
                         sign({"sub": "42", "name": "ann", "exp": 2_000}, "other"),
                         sign({"name": "ann", "exp": 2_000}, "s3cret")],
        "auth_expired": [token],
    }
    for code, tokens in cases.items():
        for bad in tokens:
            with pytest.raises(AuthError) as err:
                verify(bad, "s3cret", now=1_000 if code == "auth_invalid" else 3_000)
            assert err.value.code == code, bad


def test_client_budgets_forget_idle_clients_and_stay_bounded() -> None:
    buckets = KeyedBuckets(rate=1, burst=2, max_clients=100)
    assert [buckets.wait("a", 0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    for i in range(500):  # many clients at once: only the last 100 are kept
        buckets.wait(f"ip:{i}", 1.0)
    assert len(buckets) == 100
    buckets.wait("late", 10.0)  # everyone else has been idle for longer than a refill
    assert len(buckets) == 1
    pending = PendingReservations(limit=2)
    pending.add(["ip:x", "sub:1"], "t1", expires_at=5.0)
    pending.add(["ip:x"], "t2", expires_at=6.0)
    assert pending.wait("ip:x", 1.0) == 4.0 and pending.wait("sub:1", 1.0) == 0.0
    pending.redeemed("t1")
    assert pending.wait("ip:x", 1.0) == 0.0
    assert pending.wait("ip:x", 7.0) == 0.0 and len(pending) == 0  # t2 expired


def test_the_byte_burst_always_holds_one_message_of_the_largest_size() -> None:
    # 1 KiB/s with bursts of 2 s would refuse every 4 KiB message forever.
    tight = RateLimiter(10, 1024, now=0.0)
    assert tight.check(4096, 0.0) is not Verdict.OK
    roomy = RateLimiter(10, 1024, now=0.0, max_message=4096)
    assert roomy.check(4096, 0.0) is Verdict.OK
    assert roomy.check(4096, 0.1) is not Verdict.OK  # the rate still holds after it


def test_a_refused_message_still_pays_from_the_budget_that_can() -> None:
    """A flood of tiny messages cannot starve the byte budget, and a flood of big ones
    cannot starve the message budget: a refused message takes what it can."""
    tiny = RateLimiter(messages_per_s=10, bytes_per_s=100, now=0.0, burst_s=1.0)
    assert [tiny.check(1, 0.0) for _ in range(10)] == [Verdict.OK] * 10  # 90 bytes left
    assert all(tiny.check(1, 0.0) is not Verdict.OK for _ in range(10))  # each pays a byte
    assert tiny.check(91, 0.1) is not Verdict.OK  # 80 + 10 refilled: 91 does not fit
    big = RateLimiter(messages_per_s=10, bytes_per_s=1000, now=0.0, burst_s=1.0)
    assert big.check(1000, 0.0) is Verdict.OK  # 9 messages left, no bytes
    assert all(big.check(1000, 0.0) is not Verdict.OK for _ in range(9))  # each pays one
    assert sum(big.check(1, 0.1) is Verdict.OK for _ in range(5)) == 1  # one refilled
