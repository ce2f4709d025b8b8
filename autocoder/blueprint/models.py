"""Pydantic models of the blueprint language v1: architecture.yaml and deployment.yaml.

The models are the single source of truth for the blueprint's shape: the loader validates
against them, and `autocoder schema` turns them into the JSON Schemas in schemas/. Every model
forbids unknown keys and is strict (no silent "5" -> 5 coercion). Names that become Python
identifiers, file names or Kubernetes names are constrained here; everything else the user
writes is data and reaches generated code only as a literal.
"""

from __future__ import annotations

import functools
import keyword
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
)

SUPPORTED_SCHEMA_MAJOR = 1
SCHEMA_VERSION_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)

# Names that must not be used as Python identifiers in generated code: keywords, and the
# attributes of pydantic models and of our runtime (a field named `model_dump` would shadow it).
RESERVED_NAMES = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | {
        "self",
        "cls",
        "copy",
        "dict",
        "json",
        "schema",
        "validate",
        "construct",
        "fields",
        "msg",
        "app",
        "runtime",
        "integration",
        "main",
        "config",
        "settings",
        "logging",
        "asyncio",
        "typing",
        "pydantic",
        "test",
        "tests",
        "none",
        "true",
        "false",
    }
)


def _not_reserved(name: str) -> str:
    if name in RESERVED_NAMES or name.startswith("model_"):
        raise ValueError(f"'{name}' is a reserved word in the generated code; choose another name")
    return name


# lower_snake identifiers: components, ports, fields, system. They become Python identifiers,
# file names and (with _ -> -) Kubernetes names, hence the tight alphabet and length.
Ident = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40),
    AfterValidator(_not_reserved),
]
# Port names are only keys in generated code (never identifiers), so `in` and `out` are fine.
PortName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
SystemName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=24), AfterValidator(_not_reserved)
]
# PascalCase schema names become pydantic class names.
SchemaName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=64)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=64)]
K8sName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
PortRef = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
Expression = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Text = Annotated[str, StringConstraints(max_length=4000)]
SemVer = Annotated[str, StringConstraints(pattern=SCHEMA_VERSION_PATTERN)]
# Kubernetes quantities; bounded so that their numbers stay cheap to convert and compare.
Cpu = Annotated[str, StringConstraints(pattern=r"^([1-9][0-9]*m|[0-9]+(\.[0-9]{1,3})?)$", max_length=24)]
Memory = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(Ki|Mi|Gi|Ti|k|M|G|T)?$", max_length=24)]
PositiveNumber = Annotated[float, Field(gt=0)]


class Model(BaseModel):
    """Base of every blueprint model: unknown keys are errors, types are strict.

    Each model's validator is built when first needed (defer_build), not as this module is
    imported: a process that reads the IR (a build's own process after an edit: gen, tests)
    needs only the models the IR holds (ir/models.py builds those first), not the compiler's
    (the architecture, its components and bindings, the deployment: ~0.08 CPU-s). A process
    that compiles builds them all at once (`build_all`, before it validates a blueprint), in
    the order of this file, each model reusing the ones it holds, as an eager build would."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, populate_by_name=False, defer_build=True
    )


# --------------------------------------------------------------------------- schemas

FieldType = Literal["string", "integer", "number", "boolean", "array", "object"]
Scalar = str | int | float | bool


class FieldSpec(Model):
    """A typed field with constraints; `items` for arrays, `fields` for objects."""

    type: FieldType
    description: Text | None = None
    required: bool = True
    default: JsonValue = None
    enum: Annotated[list[Scalar], Field(min_length=1, max_length=1000)] | None = None
    pattern: Annotated[str, StringConstraints(max_length=1000)] | None = None
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=0)] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    items: FieldSpec | None = None
    fields: dict[Ident, FieldSpec] | None = None


class SchemaDef(Model):
    """A named message schema; `extends` copies the fields of another schema first."""

    extends: SchemaName | None = None
    description: Text | None = None
    fields: dict[Ident, FieldSpec] = Field(default_factory=dict)


# --------------------------------------------------------------------------- capabilities


class RateLimit(Model):
    """Token bucket: `rate` tokens a second, up to `burst` at once."""

    rate: PositiveNumber
    burst: Annotated[int, Field(ge=1)]


class Retry(Model):
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    initial_delay_s: Annotated[float, Field(ge=0)] = 0.1
    max_delay_s: Annotated[float, Field(ge=0)] = 10.0
    backoff: Annotated[float, Field(ge=1)] = 2.0


class CircuitBreaker(Model):
    failure_threshold: Annotated[int, Field(ge=1)] = 5
    recovery_timeout_s: PositiveNumber = 30.0


class Timeout(Model):
    seconds: PositiveNumber


class Capabilities(Model):
    """Kernel capabilities (schema_validation, rate_limit, metrics) and opt-in ones."""

    schema_validation: bool = True
    metrics: bool = True
    rate_limit: RateLimit | None = None
    retry: Retry | None = None
    circuit_breaker: CircuitBreaker | None = None
    timeout: Timeout | None = None
    concurrency: Annotated[int, Field(ge=1, le=256)] = 1  # consumers per input port


class Security(Model):
    auth: Literal["none", "api_key"] = "none"
    api_key_env: EnvName | None = None


class Budget(Model):
    """Per-message latency budget of a component (tightens rules/budgets.yaml)."""

    p95_ms: PositiveNumber | None = None
    throughput_rps: PositiveNumber | None = None


class Example(Model):
    """An input message and what should come out: fields to check, dropped, or rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    input: dict[str, JsonValue] = Field(alias="in")
    port: PortName | None = None
    out: dict[str, JsonValue] | None = None
    to: PortName | None = None
    dropped: bool = False
    rejected: bool = False
    description: Text | None = None


# --------------------------------------------------------------------------- logic


class SetLogic(Model):
    """Transformer/source logic: output fields computed from expressions over the input."""

    set: Annotated[dict[Ident, Expression], Field(min_length=1)]


class WhereLogic(Model):
    """Filter logic: messages for which `where` is false are dropped (and counted)."""

    where: Expression


class Route(Model):
    when: Expression
    to: PortName


class RouterLogic(Model):
    """Router logic: the first route whose `when` holds picks the output; else `default`."""

    routes: Annotated[list[Route], Field(min_length=1, max_length=100)]
    default: PortName | None = None


class AggregateLogic(Model):
    """Aggregator logic: group by `key`, compute each output field with count/sum/avg/min/max."""

    key: Expression
    aggregate: Annotated[dict[Ident, Expression], Field(min_length=1)]


# --------------------------------------------------------------------------- component configs


class NoConfig(Model):
    """Kinds whose behaviour is entirely in `logic` take no config keys."""


class SourceConfig(Model):
    interval_s: PositiveNumber = 1.0
    max_messages: Annotated[int, Field(ge=1)] | None = None


class HttpRoute(Model):
    method: Literal["POST", "PUT"] = "POST"
    path: Annotated[str, StringConstraints(pattern=r"^/[a-z0-9][a-z0-9/_-]*$", max_length=200)]
    emit: PortName


class ApiEndpointConfig(Model):
    routes: Annotated[list[HttpRoute], Field(min_length=1, max_length=50)]
    max_body_bytes: Annotated[int, Field(ge=1, le=64 * 1024 * 1024)] = 1024 * 1024


class AggregatorConfig(Model):
    """Keyed tumbling windows: `event_time` names a number field of epoch seconds to window by
    (processing time otherwise); a window closes `grace_s` after its end; at most `max_keys`
    keys are held per window (a new key past that emits the oldest key's partial result)."""

    window_s: PositiveNumber = 60.0
    event_time: Ident | None = None
    grace_s: Annotated[float, Field(ge=0, le=86400)] = 0.0
    max_keys: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000


class StoreConfig(Model):
    key: Ident
    read_endpoints: bool = True


class SinkConfig(Model):
    target: Literal["log", "file", "webhook"] = "log"
    path: Annotated[str, StringConstraints(max_length=500)] | None = None
    url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)] | None = None
    headers: dict[Annotated[str, StringConstraints(max_length=200)], Text] | None = None


# --------------------------------------------------------------------------- components

Ports = dict[PortName, SchemaName]


RULE_PATTERN = r"^([A-Z]{1,4}[0-9]{1,4}|CKV2?_[A-Z0-9]{1,10}_[0-9]{1,4}|format)$"


class Suppression(Model):
    """Waive one validation rule for this component; the reason shows in every report."""

    # ours (AC122, PSS005, DL3008, ...), checkov's (CKV_K8S_43, CKV2_K8S_6), or `format`
    rule: Annotated[
        str, StringConstraints(pattern=r"^([A-Z]{1,4}[0-9]{1,4}|CKV2?_[A-Z0-9]{1,10}_[0-9]{1,4}|format)$")
    ]
    reason: Annotated[str, StringConstraints(min_length=10, max_length=500)]


class ComponentBase(Model):
    name: Ident
    description: Text | None = None
    inputs: Ports = Field(default_factory=dict)
    outputs: Ports = Field(default_factory=dict)
    security: Security = Field(default_factory=Security)
    capabilities: Capabilities = Field(default_factory=Capabilities)
    budget: Budget = Field(default_factory=Budget)
    examples: Annotated[list[Example], Field(max_length=200)] = Field(default_factory=list)
    suppressions: Annotated[list[Suppression], Field(max_length=50)] = Field(default_factory=list)


class SourceComponent(ComponentBase):
    kind: Literal["source"]
    config: SourceConfig = Field(default_factory=SourceConfig)
    logic: SetLogic | None = None


class ApiEndpointComponent(ComponentBase):
    kind: Literal["api_endpoint"]
    config: ApiEndpointConfig


class TransformerComponent(ComponentBase):
    kind: Literal["transformer"]
    config: NoConfig = Field(default_factory=NoConfig)
    logic: SetLogic | None = None


class FilterComponent(ComponentBase):
    kind: Literal["filter"]
    config: NoConfig = Field(default_factory=NoConfig)
    logic: WhereLogic | None = None


class RouterComponent(ComponentBase):
    kind: Literal["router"]
    config: NoConfig = Field(default_factory=NoConfig)
    logic: RouterLogic | None = None


class AggregatorComponent(ComponentBase):
    kind: Literal["aggregator"]
    config: AggregatorConfig = Field(default_factory=AggregatorConfig)
    logic: AggregateLogic | None = None


class StoreComponent(ComponentBase):
    kind: Literal["store"]
    config: StoreConfig


class SinkComponent(ComponentBase):
    kind: Literal["sink"]
    config: SinkConfig = Field(default_factory=SinkConfig)


class CustomComponent(ComponentBase):
    kind: Literal["custom"]
    config: dict[Ident, JsonValue] = Field(default_factory=dict)


Component = Annotated[
    SourceComponent
    | ApiEndpointComponent
    | TransformerComponent
    | FilterComponent
    | RouterComponent
    | AggregatorComponent
    | StoreComponent
    | SinkComponent
    | CustomComponent,
    Field(discriminator="kind"),
]

COMPONENT_KINDS = (
    "source",
    "api_endpoint",
    "transformer",
    "filter",
    "router",
    "aggregator",
    "store",
    "sink",
    "custom",
)


class Binding(Model):
    """Wires an output port to one or more input ports, optionally under a condition."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    source: PortRef = Field(alias="from")
    to: PortRef | Annotated[list[PortRef], Field(min_length=1)]
    condition: Expression | None = None

    @property
    def targets(self) -> list[str]:
        return [self.to] if isinstance(self.to, str) else list(self.to)


# --------------------------------------------------------------------------- policy


class SecurityPolicy(Model):
    require_auth_on_ingress: bool = True
    forbidden_imports: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*$")]] = Field(
        default_factory=list
    )
    forbidden_calls: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*$")]] = Field(
        default_factory=list
    )


class Resources(Model):
    cpu: Cpu
    memory: Memory


class PerformancePolicy(Model):
    p95_ms: PositiveNumber | None = None
    throughput_rps: PositiveNumber | None = None


class Policy(Model):
    security: SecurityPolicy = Field(default_factory=SecurityPolicy)
    resources: Resources | None = None
    performance: PerformancePolicy = Field(default_factory=PerformancePolicy)


class SystemInfo(Model):
    name: SystemName
    version: SemVer = "0.1.0"
    description: Text | None = None


class Architecture(Model):
    """architecture.yaml: what the system is, independent of where it runs."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra={"title": "Autocoder architecture.yaml v1"},
    )

    schema_version: SemVer
    system: SystemInfo
    schemas: dict[SchemaName, SchemaDef] = Field(default_factory=dict)
    components: Annotated[list[Component], Field(min_length=1, max_length=5000)]
    bindings: list[Binding] = Field(default_factory=list)
    policy: Policy = Field(default_factory=Policy)


# --------------------------------------------------------------------------- deployment


class Image(Model):
    repository: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/:-]*$", max_length=255)]
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")] = "latest"
    digest: Annotated[str, StringConstraints(pattern=r"^sha256:[a-f0-9]{64}$")] | None = None
    # the Dockerfile's FROM: a registry reference without tag or digest, then its tag and,
    # for a reproducible build, its digest
    base: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]*$", max_length=255)] = "python"
    base_tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")] = (
        "3.11-slim-bookworm"
    )
    base_digest: Annotated[str, StringConstraints(pattern=r"^sha256:[a-f0-9]{64}$")] | None = None


class ComponentOverride(Model):
    """Deployment-time changes to one component: capabilities and budget only."""

    capabilities: Capabilities | None = None
    budget: Budget | None = None


class SecretRef(Model):
    name: K8sName
    keys: Annotated[list[EnvName], Field(min_length=1)]


Hostname = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")]


class Ingress(Model):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    host: Hostname
    tls_secret: K8sName | None = None
    ingress_class: K8sName | None = Field(default=None, alias="class")


class SecretKeyRef(Model):
    name: K8sName
    key: EnvName | Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$")]


class StoreBackend(Model):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    dsn_secret: SecretKeyRef | None = None
    data_dir: Annotated[str, StringConstraints(max_length=500)] | None = None


class Observability(Model):
    metrics: bool = True
    otlp_endpoint: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=500)] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_auth: bool = False  # /metrics and /openapi.json need the X-API-Key too


class DeploymentSecurityPolicy(Model):
    require_https: bool = False


class DeploymentPolicy(Model):
    security: DeploymentSecurityPolicy = Field(default_factory=DeploymentSecurityPolicy)


EnvValue = Annotated[str, StringConstraints(max_length=4000)] | int | float | bool


class EnvironmentOverlay(Model):
    """What one environment changes in the base deployment: its Kustomize overlay."""

    replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    resources: Resources | None = None
    host: Hostname | None = None  # the ingress host in this environment
    image_tag: ImageTag | None = None
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)  # added to (or replacing) `env`


class LLMPrice(Model):
    """Price per 1000 tokens (any currency): the build summary prints the cost."""

    prompt: Annotated[float, Field(ge=0)] = 0.0  # per 1000 tokens sent
    completion: Annotated[float, Field(ge=0)] = 0.0  # per 1000 tokens received


class LLMBlock(Model):
    """The model that writes free-form logic. CLI flags and AUTOCODER_LLM_* variables override
    each key; the API key is never written here (AUTOCODER_LLM_API_KEY or OPENAI_API_KEY)."""

    provider: Literal["offline", "openai"] | None = None
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=500)] | None = None
    model: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=16, le=100_000)] | None = None
    timeout: Annotated[float, Field(gt=0, le=3600)] | None = None
    retries: Annotated[int, Field(ge=0, le=20)] | None = None
    repair_attempts: Annotated[int, Field(ge=0, le=10)] | None = None
    price_per_1k_tokens: LLMPrice | None = None
    cache_dir: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


class BuildCache(Model):
    """Where the build's shared run-cache lives (AUTOCODER_CACHE_URL overrides it)."""

    url: Annotated[str, StringConstraints(pattern=r"^\S+$", min_length=1, max_length=2000)]


class BuildSettings(Model):
    cache: BuildCache | None = None


class Deployment(Model):
    """deployment.yaml: where and how the system runs (secrets by name and key only)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra={"title": "Autocoder deployment.yaml v1"},
    )

    schema_version: SemVer
    environment: K8sName = "development"
    # one Kustomize overlay each (besides `environment`'s), with these changes to the base
    environments: Annotated[dict[K8sName, EnvironmentOverlay], Field(max_length=20)] = Field(
        default_factory=dict
    )
    image: Image | None = None
    replicas: dict[Ident, Annotated[int, Field(ge=0, le=1000)]] = Field(default_factory=dict)
    resources: dict[Ident, Resources] = Field(default_factory=dict)
    component_overrides: dict[Ident, ComponentOverride] = Field(default_factory=dict)
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    ingress: Ingress | None = None
    store: StoreBackend = Field(default_factory=StoreBackend)
    observability: Observability = Field(default_factory=Observability)
    policy: DeploymentPolicy = Field(default_factory=DeploymentPolicy)
    # findings of the deployment validators (hadolint DLxxxx, PSS0xx, KV0xx, CMP0xx) waived
    suppressions: Annotated[list[Suppression], Field(max_length=50)] = Field(default_factory=list)
    llm: LLMBlock | None = None
    build: BuildSettings | None = None  # how Autocoder builds, not how the system runs: not in the IR


def build(*models: type[BaseModel]) -> None:
    """Build the validators of `models` that are not built yet (Model: defer_build)."""
    for model in models:
        if not model.__pydantic_complete__:
            model.model_rebuild()


@functools.cache
def build_all() -> None:
    """Build every model's validator (once per process), in the order they are defined here:
    for a process that compiles (blueprint/validate.py), and a warm worker before it forks."""
    found = list(globals().values())
    build(*(value for value in found if isinstance(value, type) and issubclass(value, Model)))


def schema_major(version: str) -> int | None:
    """The MAJOR of a semantic version (None when it is none); an absurdly long MAJOR stands
    as a large number rather than costing (or failing) an int conversion of its digits."""
    match = re.match(SCHEMA_VERSION_PATTERN, version)
    if match is None:
        return None
    major = match.group(1)
    return int(major) if len(major) <= 18 else 10**18
