"""autocoder_runtime: what every Autocoder-generated system runs on.

A generated system holds only what is its own (schema models, compiled logic, typed component
specs, wiring) and depends on this package at an exact version for everything it shares: the
durable inbox and delivery, capabilities (rate limit, retry, circuit breaker, timeout), stores,
dead letters, metrics, logs and the HTTP app.
"""

__version__ = "0.4.6"
