"""The IR v1: what the compiler hands to every later stage, as typed pydantic models.

`generated/ir.v1.json` holds the whole system (`IR`); `generated/ir/<component>.json` holds one
component's slice (`Slice`): everything that component's generation needs and nothing else, so
that a change elsewhere leaves its bytes (and so its doit tasks) untouched. `build_ir` returns
these models, codegen and validation read their attributes, and schemas/ir*.schema.json is
generated from them.

A component is one model per kind (discriminated by `kind`), so its `config` and `logic` have
the kind's own types: the blueprint's config models are reused as they are (the IR holds them
as validated), logic is held compiled (each expression with its Python translation).

Bytes on disk are the contract: `dump` of a model that `load_*` read gives back the same JSON.
Numbers that may be written as an int or a float (a default rate of 1000, an override's 50.0)
are `Number`, which keeps whichever it was given; a field spec is a TypedDict because its keys
are present only when set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Required

from pydantic import BaseModel, ConfigDict, Field, JsonValue, with_config
from typing_extensions import TypedDict

from autocoder.blueprint import models as blueprint
from autocoder.blueprint.models import (
    AggregatorConfig,
    ApiEndpointConfig,
    CircuitBreaker,
    EnvironmentOverlay,
    Example,
    FieldType,
    Image,
    Ingress,
    LLMBlock,
    NoConfig,
    Observability,
    Policy,
    Resources,
    Retry,
    SecretRef,
    Security,
    SecurityPolicy,
    SinkConfig,
    SourceConfig,
    StoreBackend,
    StoreConfig,
    Suppression,
    Timeout,
    build,
)
from autocoder.blueprint.models import (
    DeploymentPolicy as DeploymentPolicyIR,
)

# the blueprint models imported above (the IR holds them), built before the IR's own
# (blueprint.models.Model defers its validators): the IR's models then reuse them instead of
# building their schemas again
build(
    *(
        value
        for value in tuple(globals().values())
        if isinstance(value, type) and issubclass(value, blueprint.Model)
    )
)

IR_VERSION = "1.0.0"

# int or float, kept as given (smart-mode union: 1000 stays 1000, 50.0 stays 50.0)
Number = int | float
Scalar = str | int | float | bool


class IRModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Generator(IRModel):
    name: Literal["autocoder"]
    version: str


class SystemIR(IRModel):
    name: str
    version: str
    description: str | None


@with_config(ConfigDict(extra="forbid"))
class FieldSpecIR(TypedDict, total=False):
    """A resolved field spec (inherited fields included); optional keys only when set."""

    type: Required[FieldType]
    required: Required[bool]
    description: str
    default: JsonValue
    enum: list[Scalar]
    pattern: str
    min_length: int
    max_length: int
    minimum: Number
    maximum: Number
    items: FieldSpecIR
    fields: dict[str, FieldSpecIR]


class SchemaIR(IRModel):
    name: str
    description: str | None
    extends: str | None
    ancestors: list[str] = Field(description="the extends chain, nearest first")
    fields: dict[str, FieldSpecIR] = Field(description="resolved field specs, inherited ones included")


class CompiledExpr(IRModel):
    source: str = Field(description="the expression as written")
    python: str = Field(description="Python source reading fields from the message dict `msg`")
    type: str
    fields: list[str] = Field(description="input fields the expression reads")


class PortRef(IRModel):
    component: str
    port: str


class BindingIR(IRModel):
    source: PortRef = Field(alias="from")
    to: list[PortRef]
    condition: CompiledExpr | None
    schema_name: str = Field(alias="schema")


class Upstream(IRModel):
    port: str
    source: PortRef = Field(alias="from")
    condition: CompiledExpr | None


class Downstream(IRModel):
    port: str
    to: list[PortRef]
    condition: CompiledExpr | None


# --------------------------------------------------------------------------- logic (compiled)


class SetLogicIR(IRModel):
    """Transformer/source: each output field's compiled expression."""

    set: dict[str, CompiledExpr]


class WhereLogicIR(IRModel):
    """Filter: the compiled boolean condition."""

    where: CompiledExpr


class RouteIR(IRModel):
    when: CompiledExpr
    to: str


class RouterLogicIR(IRModel):
    routes: list[RouteIR]
    default: str | None


class AggregateIR(IRModel):
    """One aggregate output field: count/sum/avg/min/max over a per-message argument."""

    source: str
    function: Literal["count", "sum", "avg", "min", "max"]
    argument: CompiledExpr | None = Field(description="null for count()")
    type: str


class AggregateLogicIR(IRModel):
    key: CompiledExpr
    key_field: str | None = Field(description="the input field the key is, when it is one")
    aggregate: dict[str, AggregateIR]


# --------------------------------------------------------------------------- capabilities, budget


class RateLimitIR(IRModel):
    rate: Number
    burst: int


class CapabilitiesIR(IRModel):
    """Kernel and opt-in capabilities with the deployment's overrides merged in; the rate
    limit is always set (rules/budgets.yaml's default when the blueprint declares none)."""

    schema_validation: bool
    metrics: bool
    rate_limit: RateLimitIR
    retry: Retry | None
    circuit_breaker: CircuitBreaker | None
    timeout: Timeout | None
    concurrency: int


class BudgetIR(IRModel):
    """Effective budget: the kind's default tightened by the component and the policy."""

    p95_ms: Number
    throughput_rps: Number | None


class ComponentDeployment(IRModel):
    replicas: int
    resources: Resources | None


class StoreDeployment(ComponentDeployment):
    store: StoreBackend


# --------------------------------------------------------------------------- components


class ComponentIRBase(IRModel):
    name: str
    description: str | None
    inputs: dict[str, str]
    outputs: dict[str, str]
    security: Security
    capabilities: CapabilitiesIR
    budget: BudgetIR
    logic_source: Literal["declarative", "builtin", "llm"]
    examples: list[Example]
    suppressions: list[Suppression] = Field(description="validation rules waived, each with a reason")
    upstream: list[Upstream]
    downstream: list[Downstream]
    deployment: ComponentDeployment = Field(description="replicas and resources for this component")
    schemas: list[str] = Field(description="names of the schemas its ports use, with their ancestors")
    fingerprint: str = Field(description="sha256 of this component's slice content")


class SourceIR(ComponentIRBase):
    kind: Literal["source"]
    config: SourceConfig
    logic: SetLogicIR | None


class ApiEndpointIR(ComponentIRBase):
    kind: Literal["api_endpoint"]
    config: ApiEndpointConfig
    logic: None


class TransformerIR(ComponentIRBase):
    kind: Literal["transformer"]
    config: NoConfig
    logic: SetLogicIR | None


class FilterIR(ComponentIRBase):
    kind: Literal["filter"]
    config: NoConfig
    logic: WhereLogicIR | None


class RouterIR(ComponentIRBase):
    kind: Literal["router"]
    config: NoConfig
    logic: RouterLogicIR | None


class AggregatorIR(ComponentIRBase):
    kind: Literal["aggregator"]
    config: AggregatorConfig
    logic: AggregateLogicIR | None


class StoreIR(ComponentIRBase):
    kind: Literal["store"]
    config: StoreConfig
    logic: None
    deployment: StoreDeployment = Field(description="replicas, resources and the store backend")


class SinkIR(ComponentIRBase):
    kind: Literal["sink"]
    config: SinkConfig
    logic: None


class CustomIR(ComponentIRBase):
    kind: Literal["custom"]
    config: dict[str, JsonValue]
    logic: None


ComponentIR = Annotated[
    SourceIR
    | ApiEndpointIR
    | TransformerIR
    | FilterIR
    | RouterIR
    | AggregatorIR
    | StoreIR
    | SinkIR
    | CustomIR,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- system


class DeploymentIR(IRModel):
    """deployment.yaml without what is merged into each component (replicas, resources,
    overrides) and without the build's own settings."""

    schema_version: str
    environment: str
    environments: dict[str, EnvironmentOverlay]
    image: Image | None
    env: dict[str, str | int | float | bool]
    secrets: list[SecretRef]
    ingress: Ingress | None
    store: StoreBackend
    observability: Observability
    policy: DeploymentPolicyIR
    suppressions: list[Suppression]
    llm: LLMBlock | None


class SourceFile(IRModel):
    path: str
    sha256: str


class WarningIR(IRModel):
    """A diagnostic of the compile that produced this IR (only warnings: errors stop it)."""

    code: str
    severity: str
    file: str
    line: int
    col: int
    message: str
    expected: str
    fix: str


class CapacityIR(IRModel):
    """One terminal component: the weakest rate limit and the slowest budget on a path to it."""

    terminal: str
    min_rate_rps: Number
    rate_path: list[str]
    p95_ms: Number
    latency_path: list[str]


class Metadata(IRModel):
    sources: list[SourceFile]
    warnings: list[WarningIR] = Field(description="the compiler's warnings, as diagnostics")
    capacity: list[CapacityIR] = Field(description="per terminal: weakest rate and slowest budget path")


class IR(IRModel):
    """generated/ir.v1.json"""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, json_schema_extra={"title": "Autocoder IR v1"}
    )

    ir_version: Literal["1.0.0"]
    generator: Generator
    system: SystemIR
    schemas: dict[str, SchemaIR]
    components: list[ComponentIR]
    bindings: list[BindingIR]
    topology: list[str] = Field(description="component names in topological order")
    policy: Policy
    deployment: DeploymentIR
    metadata: Metadata


class Slice(IRModel):
    """generated/ir/<component>.json: only what this component's tasks read."""

    ir_version: Literal["1.0.0"]
    system: str = Field(description="the system's name (its Python package)")
    component: ComponentIR
    schemas: dict[str, SchemaIR]
    security_policy: SecurityPolicy = Field(description="policy.security: forbidden imports and calls")


# --------------------------------------------------------------------------- on disk


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON-ready form written to disk (canonical_json of it is the file's bytes)."""
    return model.model_dump(mode="json", by_alias=True)


def load_slice(path: Path) -> Slice:
    """A component's slice from disk (generated/ir/<component>.json)."""
    return Slice.model_validate_json(path.read_bytes())


def load_ir(path: Path) -> IR:
    """The whole system's IR from disk (generated/ir.v1.json)."""
    return IR.model_validate_json(path.read_bytes())
