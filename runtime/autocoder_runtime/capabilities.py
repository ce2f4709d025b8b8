"""Capabilities around a component's logic: rate limit, retry, circuit breaker, timeout.

Retry only helps a failure that may not happen again: connection errors, timeouts, a peer's
429 or 5xx (`Transient`). A rejection or a bug fails the same way every time, so it goes
straight to the dead letters. Delays use full jitter (so replicas do not retry in step) and
honour a peer's Retry-After. An open circuit is back-pressure: the consumer waits for the
breaker to half-open instead of dead-lettering every queued message at once.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

from autocoder_runtime.messages import Transient
from autocoder_runtime.spec import CircuitBreakerSpec, RetrySpec

TRANSIENT = (Transient, TimeoutError, ConnectionError)


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def try_acquire(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def retry_after(self) -> float:
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)

    async def acquire(self) -> None:
        while not self.try_acquire():
            await asyncio.sleep(self.retry_after())


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


# The jitter of every policy that is given no generator of its own: seeding a new one from the
# operating system for each component cost more than a test's run of a component (the test
# harness makes a component per run), and jitter needs no stream of its own.
_JITTER = random.Random()  # noqa: S311 - jitter, not cryptography
# a forked process (a server's worker) draws its own jitter, not its siblings' sequence
os.register_at_fork(after_in_child=_JITTER.seed)


class RetryPolicy:
    """When and how long to wait before the next attempt."""

    def __init__(self, spec: RetrySpec | None, rng: random.Random | None = None) -> None:
        self.spec = spec or RetrySpec(max_attempts=1)
        self.rng = rng or _JITTER

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        return attempt < self.spec.max_attempts and is_transient(exc)

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Full jitter over the exponential backoff, but never less than a peer's Retry-After."""
        ceiling = min(self.spec.initial_delay_s * self.spec.backoff ** (attempt - 1), self.spec.max_delay_s)
        wait = self.rng.uniform(0, ceiling)
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and asked > 0:
            wait = max(wait, min(float(asked), self.spec.max_delay_s))
        return wait


class CircuitBreaker:
    """Closed: calls pass, consecutive transient failures count. At the threshold it opens:
    callers wait (back-pressure) until `recovery_timeout_s` has passed; then one trial call
    goes through (half-open) and decides whether it closes or opens again."""

    def __init__(self, spec: CircuitBreakerSpec) -> None:
        self.spec = spec
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = asyncio.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at < self.spec.recovery_timeout_s:
            return "open"
        return "half_open"

    async def wait_closed(self) -> None:
        """Return when a call may be attempted; while open, wait for the recovery time."""
        while self.opened_at is not None:
            remaining = self.opened_at + self.spec.recovery_timeout_s - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.spec.failure_threshold:
            self.opened_at = time.monotonic()
