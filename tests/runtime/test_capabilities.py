"""Retry, circuit breaker and timeout around a webhook sink posting to a real HTTP server on
127.0.0.1. Retry is for transient failures only (5xx, 429, timeouts); a 4xx is dead-lettered at
once; a peer's Retry-After is honoured; delays are jittered; an open circuit holds messages back
instead of dead-lettering them."""

from __future__ import annotations

import os
import random
import time

import pytest
from autocoder_runtime.capabilities import CircuitBreaker, RetryPolicy, TokenBucket
from autocoder_runtime.messages import Rejected, Transient
from autocoder_runtime.spec import CircuitBreakerSpec, RetrySpec
from rtkit import AUTH, hooked, metric, query, running, wait_until

FAST_RETRY = {"max_attempts": 3, "initial_delay_s": 0.01, "max_delay_s": 0.05, "backoff": 2}


def post(client, ident: str) -> None:
    assert client.post("/items", json={"id": ident}, headers=AUTH).status_code == 202


def dead_letters(client) -> dict:
    return client.get("/dead-letters", headers=AUTH).json()


def test_a_5xx_is_retried_then_delivered(data, peer):
    peer.script = [(500, {}, 0.0), (503, {}, 0.0)]
    with running(hooked("hk", peer.url, retry=FAST_RETRY)) as client:
        post(client, "m1")
        wait_until(lambda: len(peer.received) == 3, what="three attempts")
        wait_until(lambda: query(data, "hk", "SELECT COUNT(*) FROM inbox") == [(0,)], what="acknowledged")
        assert peer.bodies() == [{"id": "m1", "n": 0, "ts": 0.0, "act": "ok"}] * 3
        text = client.get("/metrics").text
        assert metric(text, "hk_retries_total", component="hook") == 2
        assert metric(text, "hk_dead_letters_total", component="hook") == 0
        assert dead_letters(client)["total"] == 0


def test_a_5xx_past_the_attempts_is_dead_lettered(data, peer):
    peer.default = (502, {}, 0.0)
    with running(hooked("hk", peer.url, retry=FAST_RETRY)) as client:
        post(client, "m1")
        wait_until(lambda: dead_letters(client)["total"] == 1)
        assert len(peer.received) == 3
        (letter,) = dead_letters(client)["items"]
        assert letter["error"] == "Transient: webhook answered 502" and letter["component"] == "hook"


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_4xx_is_dead_lettered_at_once_without_retry(data, peer, status):
    peer.script = [(status, {}, 0.0)]
    with running(hooked("hk", peer.url, retry=FAST_RETRY)) as client:
        post(client, "m1")
        wait_until(lambda: dead_letters(client)["total"] == 1)
        post(client, "m2")  # the next message is delivered: proves the first had its chance
        wait_until(lambda: len(peer.received) == 2)
        assert [b["id"] for b in peer.bodies()] == ["m1", "m2"]
        (letter,) = dead_letters(client)["items"]
        assert letter["error"].startswith(f"Rejected: webhook answered {status}")
        assert metric(client.get("/metrics").text, "hk_retries_total", component="hook") == 0


def test_a_429_retry_after_is_honoured(data, peer):
    peer.script = [(429, {"Retry-After": "1"}, 0.0)]
    retry = {"max_attempts": 2, "initial_delay_s": 0.01, "max_delay_s": 5.0, "backoff": 2}
    with running(hooked("hk", peer.url, retry=retry)) as client:
        post(client, "m1")
        wait_until(lambda: len(peer.received) == 2, what="the retry")
        first, second = peer.times()
        assert second - first >= 1.0, "retried before the peer's Retry-After"
        assert second - first < 3.0
        wait_until(lambda: query(data, "hk", "SELECT COUNT(*) FROM inbox") == [(0,)])
        assert dead_letters(client)["total"] == 0


def test_a_call_past_its_timeout_is_transient_and_retried(data, peer):
    peer.script = [(200, {}, 1.0)]  # the first answer comes too late
    retry = {"max_attempts": 2, "initial_delay_s": 0.01, "max_delay_s": 0.05, "backoff": 2}
    with running(hooked("hk", peer.url, retry=retry, timeout={"seconds": 0.3})) as client:
        started = time.monotonic()
        post(client, "m1")
        wait_until(lambda: len(peer.received) == 2, what="the retry after the timeout")
        assert peer.times()[1] - started < 0.9  # the first call was abandoned at its timeout
        wait_until(lambda: query(data, "hk", "SELECT COUNT(*) FROM inbox") == [(0,)])
        assert metric(client.get("/metrics").text, "hk_retries_total", component="hook") == 1
        assert dead_letters(client)["total"] == 0


def test_an_open_circuit_holds_messages_back_until_the_peer_recovers(data, peer):
    """failure_threshold=2 transient failures open the circuit. With no retries, those two
    messages are dead letters; the three after them wait while the circuit is open (no call
    reaches the peer, nothing is dead-lettered, they stay in the inbox) and are delivered once
    the recovery time has passed."""
    peer.script = [(500, {}, 0.0), (500, {}, 0.0)]
    system = hooked(
        "hk",
        peer.url,
        retry={"max_attempts": 1},
        circuit_breaker={"failure_threshold": 2, "recovery_timeout_s": 1.0},
    )
    with running(system) as client:
        for i in range(5):
            post(client, f"m{i}")
        wait_until(lambda: len(peer.received) >= 2)
        opened = time.monotonic()
        wait_until(lambda: metric(client.get("/metrics").text, "hk_circuit_state", component="hook") == 1)
        # the circuit opens as the second call fails, a moment before that message's dead
        # letter and inbox acknowledgement are written: both recorded, then nothing moves
        wait_until(
            lambda: (
                dead_letters(client)["total"] == 2
                and query(data, "hk", "SELECT COUNT(*) FROM inbox")[0][0] == 3
            ),
            what="the two failed messages dead-lettered",
        )
        while time.monotonic() - opened < 0.6:  # open: held back, not dead-lettered, not called
            assert dead_letters(client)["total"] == 2
            assert len(peer.received) == 2
            assert query(data, "hk", "SELECT COUNT(*) FROM inbox")[0][0] == 3
            time.sleep(0.05)
        wait_until(lambda: len(peer.received) == 5, what="delivery after recovery")
        assert [b["id"] for b in peer.bodies()] == [f"m{i}" for i in range(5)]
        times = peer.times()
        assert times[2] - times[1] >= 1.0 - 0.05, "the peer was called while the circuit was open"
        wait_until(lambda: query(data, "hk", "SELECT COUNT(*) FROM inbox") == [(0,)])
        assert [x["payload"]["id"] for x in dead_letters(client)["items"]] == ["m0", "m1"]
        assert metric(client.get("/metrics").text, "hk_circuit_state", component="hook") == 0


# --------------------------------------------------------------------------- the policies


def test_retry_delays_are_jittered_and_bounded_by_the_backoff_ceiling():
    spec = RetrySpec(max_attempts=10, initial_delay_s=1.0, backoff=2.0, max_delay_s=3.0)
    policy = RetryPolicy(spec, random.Random(7))
    failure = Transient("peer down")
    first = [policy.delay(1, failure) for _ in range(200)]
    assert all(0 <= d <= 1.0 for d in first)
    assert len(set(first)) == 200, "no jitter: replicas would retry in step"
    assert max(first) - min(first) > 0.5
    second = [policy.delay(2, failure) for _ in range(200)]
    assert all(0 <= d <= 2.0 for d in second) and max(second) > 1.0  # the ceiling doubled
    late = [policy.delay(8, failure) for _ in range(200)]
    assert all(0 <= d <= 3.0 for d in late) and max(late) > 2.0  # ...up to max_delay_s
    # seeded: the same seed gives the same delays, another seed others
    again = RetryPolicy(spec, random.Random(7))
    assert [again.delay(1, failure) for _ in range(200)] == first
    other = RetryPolicy(spec, random.Random(8))
    assert [other.delay(1, failure) for _ in range(200)] != first


def test_retry_after_is_a_floor_capped_by_max_delay():
    policy = RetryPolicy(RetrySpec(initial_delay_s=0.01, max_delay_s=3.0), random.Random(1))
    assert all(policy.delay(1, Transient("429", retry_after=2.5)) >= 2.5 for _ in range(50))
    assert all(policy.delay(1, Transient("429", retry_after=100)) == 3.0 for _ in range(50))
    assert all(policy.delay(1, Transient("429", retry_after=None)) <= 0.01 for _ in range(50))


def test_only_transient_failures_are_retried():
    policy = RetryPolicy(RetrySpec(max_attempts=3))
    for transient in (Transient("503"), TimeoutError(), ConnectionResetError()):
        assert policy.should_retry(transient, 1) and policy.should_retry(transient, 2)
        assert not policy.should_retry(transient, 3)
    for permanent in (Rejected("400"), ValueError("bug"), KeyError("x"), RuntimeError("?")):
        assert not policy.should_retry(permanent, 1)
    assert not RetryPolicy(None).should_retry(Transient("503"), 1)  # no retry spec: one attempt


def test_circuit_breaker_states():
    async def run() -> None:
        breaker = CircuitBreaker(CircuitBreakerSpec(failure_threshold=2, recovery_timeout_s=0.2))
        breaker.failure()
        assert breaker.state == "closed"
        breaker.failure()
        assert breaker.state == "open"
        started = time.monotonic()
        await breaker.wait_closed()  # back-pressure: waits out the recovery time
        assert time.monotonic() - started >= 0.19
        assert breaker.state == "half_open"
        breaker.failure()  # the trial failed: open again, for a full recovery time
        assert breaker.state == "open"
        await breaker.wait_closed()
        breaker.success()
        assert breaker.state == "closed" and breaker.failures == 0

    import asyncio

    asyncio.run(run())


def test_token_bucket():
    bucket = TokenBucket(rate=10.0, burst=3)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert 0 < bucket.retry_after() <= 0.1
    time.sleep(0.12)
    assert bucket.try_acquire()


def test_retry_jitter_of_a_forked_process_is_its_own() -> None:
    """Policies share one jitter generator; a forked process (a server's worker) reseeds it,
    so two workers retrying the same failure do not wait in lockstep."""
    policy = RetryPolicy(RetrySpec(max_attempts=3))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next draw, to the parent
        os.write(write, repr(policy.rng.random()).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = float(pipe.read())
    assert child != policy.rng.random()
