"""Settings from the environment (QUEUE_SIZE, INBOX_LIMIT, ..., SERVE_ONLY), checked when read.

An operator's typo must not start a system that behaves differently from what was asked (a
negative drain deadline, a NaN lease) nor end it with a traceback: a value the runtime cannot
use raises ConfigError, whose message names the variable, what it expects and the fix, and
`python -m <system>` prints it as one line and exits 2.
"""

from __future__ import annotations

import math
import os
import re

_NAME = re.compile(r"[a-z][a-z0-9_]*")


class ConfigError(ValueError):
    """A setting the runtime cannot use; the message says which, what it expects and the fix."""


def _raw(name: str) -> str | None:
    raw = os.environ.get(name)
    return None if raw is None or raw.strip() == "" else raw.strip()


def _refuse(name: str, raw: str, expected: str, default: float) -> ConfigError:
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    return ConfigError(
        f"{name}={shown!r} cannot be used; expected {expected}; "
        f"fix: set {name} to such a number, or unset it for the default ({default:g})"
    )


def env_int(name: str, default: int, minimum: int, maximum: int) -> int:
    """$name as a whole number in [minimum, maximum]; `default` when unset or empty."""
    raw = _raw(name)
    if raw is None:
        return default
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18 or not minimum <= int(raw) <= maximum:
        raise _refuse(name, raw, f"a whole number from {minimum} to {maximum}", default)
    return int(raw)


def env_seconds(name: str, default: float, minimum: float, maximum: float) -> float:
    """$name as a finite number of seconds in [minimum, maximum]; `default` when unset or empty."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and minimum <= value <= maximum):
        raise _refuse(name, raw, f"a number of seconds from {minimum:g} to {maximum:g}", default)
    return value


# The runtime's settings (docs/runtime.md, "Configuration"): each read where it is used, so a
# test may change one between two starts; check() reads them all once before a server starts.


def queue_size() -> int:
    """QUEUE_SIZE: the bound of each component's input queue (back-pressure)."""
    return env_int("QUEUE_SIZE", 1000, 1, 10_000_000)


def inbox_limit() -> int:
    """INBOX_LIMIT: accepted-but-unfinished messages before ingress answers 503."""
    return env_int("INBOX_LIMIT", 10_000, 1, 1_000_000_000)


def max_in_flight() -> int:
    """MAX_IN_FLIGHT: inbox entries one process works on at once."""
    return env_int("MAX_IN_FLIGHT", 1000, 1, 1_000_000)


def inbox_lease_s() -> float:
    """INBOX_LEASE_S: how long a claimed inbox entry stays with its process without renewal."""
    return env_seconds("INBOX_LEASE_S", 30.0, 0.1, 86_400.0)


def drain_timeout_s() -> float:
    """DRAIN_TIMEOUT_S: how long a stop waits for the messages in flight (0: not at all)."""
    return env_seconds("DRAIN_TIMEOUT_S", 10.0, 0.0, 3600.0)


def serve_only() -> frozenset[str] | None:
    """SERVE_ONLY: comma-separated component names; the system then runs only those and the
    bindings between them (for tests of some paths of a large system). Unset: every component."""
    raw = _raw("SERVE_ONLY")
    if raw is None:
        return None
    names = frozenset(n.strip() for n in raw.split(","))
    if not all(_NAME.fullmatch(n) for n in names):
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise ConfigError(
            f"SERVE_ONLY={shown!r} cannot be used; expected component names separated by commas; "
            "fix: list the components to run (a-z, 0-9, _), or unset it to run every component"
        )
    return names


def check() -> None:
    """Read every setting once: the first one that cannot be used raises ConfigError."""
    for read in (queue_size, inbox_limit, max_in_flight, inbox_lease_s, drain_timeout_s, serve_only):
        read()
