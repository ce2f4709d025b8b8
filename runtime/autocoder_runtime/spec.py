"""Typed specs a generated system hands to the runtime: one per component, one for the system.

The generator writes them as literals validated by these models at import time, so a spec the
runtime cannot honour fails when the system loads, not on the first message.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitSpec(Spec):
    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class RetrySpec(Spec):
    max_attempts: int = Field(default=3, ge=1, le=100)
    initial_delay_s: float = Field(default=0.1, ge=0)
    max_delay_s: float = Field(default=10.0, ge=0)
    backoff: float = Field(default=2.0, ge=1)


class CircuitBreakerSpec(Spec):
    failure_threshold: int = Field(default=5, ge=1)
    recovery_timeout_s: float = Field(default=30.0, gt=0)


class TimeoutSpec(Spec):
    seconds: float = Field(gt=0)


class CapabilitiesSpec(Spec):
    schema_validation: bool = True
    metrics: bool = True
    rate_limit: RateLimitSpec | None = None
    retry: RetrySpec | None = None
    circuit_breaker: CircuitBreakerSpec | None = None
    timeout: TimeoutSpec | None = None
    concurrency: int = Field(default=1, ge=1, le=256)


class SecuritySpec(Spec):
    auth: Literal["none", "api_key"] = "none"
    api_key_env: str | None = None


class BudgetSpec(Spec):
    p95_ms: float | None = None
    throughput_rps: float | None = None


class ComponentSpec(Spec):
    """A component's IR as the runtime needs it; `config` is parsed by the kind's own model."""

    capabilities: CapabilitiesSpec = Field(default_factory=CapabilitiesSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    security: SecuritySpec = Field(default_factory=SecuritySpec)
    config: dict[str, object] = Field(default_factory=dict)


# --------------------------------------------------------------------------- the system


class BindingSpec(Spec):
    """One edge: `source.port` delivers to `target.target_port` when `condition` (a function
    name in the system's conditions table) holds, or always when it is None."""

    source: str
    port: str
    target: str
    target_port: str
    condition: str | None = None


class IngressRoute(Spec):
    component: str
    method: Literal["POST", "PUT"]
    path: str
    port: str
    auth: Literal["none", "api_key"]
    api_key_env: str
    max_body_bytes: int = Field(ge=1)


class StoreRoute(Spec):
    component: str
    key: str


class SystemSpec(Spec):
    name: str
    version: str
    description: str = ""
    bindings: tuple[BindingSpec, ...] = ()
    ingress: tuple[IngressRoute, ...] = ()
    stores: tuple[StoreRoute, ...] = ()
    order: tuple[str, ...] = ()  # components in topological order (window flushes follow it)
    read_key_env: str | None = "API_KEY"  # key guarding store reads and dead letters
    metrics_auth: bool = False  # /metrics and /openapi.json behind the read key too
    backend: Literal["sqlite", "postgres"] = "sqlite"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    secrets: tuple[str, ...] = ()  # secret keys declared in deployment.yaml (webhook headers)

    def only(self, names: Collection[str]) -> SystemSpec:
        """This system cut down to the components `names`: the bindings between two of them,
        their ingress routes and store reads, and `order` filtered. A message bound to a
        component outside goes nowhere (SERVE_ONLY: a test that exercises some paths of a large
        system starts only their components)."""
        keep = frozenset(names)
        return self.model_copy(
            update={
                "bindings": tuple(b for b in self.bindings if b.source in keep and b.target in keep),
                "ingress": tuple(r for r in self.ingress if r.component in keep),
                "stores": tuple(r for r in self.stores if r.component in keep),
                "order": tuple(n for n in self.order if n in keep),
            }
        )
