"""The IR v1: what the compiler hands to every later stage.

`generated/ir.v1.json` holds the whole system; `generated/ir/<component>.json` holds one
component's slice: everything that component's generation needs and nothing else, so that a
change elsewhere leaves its bytes (and so its doit tasks) untouched. These models document the
format (schemas/ir.v1.schema.json is generated from them) and check what the builder produces.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autocoder.ir.build import IR_VERSION  # noqa: F401 - one definition of the version


class IRModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Generator(IRModel):
    name: Literal["autocoder"]
    version: str


class SystemIR(IRModel):
    name: str
    version: str
    description: str | None


class SchemaIR(IRModel):
    name: str
    description: str | None
    extends: str | None
    ancestors: list[str] = Field(description="the extends chain, nearest first")
    fields: dict[str, dict[str, Any]] = Field(description="resolved field specs, inherited ones included")


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


class ComponentIR(IRModel):
    name: str
    kind: str
    description: str | None
    inputs: dict[str, str]
    outputs: dict[str, str]
    config: dict[str, Any]
    security: dict[str, Any]
    capabilities: dict[str, Any] = Field(description="kernel and opt-in capabilities, overrides merged")
    budget: dict[str, Any] = Field(description="effective budget: defaults tightened by component and policy")
    logic: dict[str, Any] | None = Field(description="compiled declarative logic, or null")
    logic_source: Literal["declarative", "builtin", "llm"]
    examples: list[dict[str, Any]]
    suppressions: list[dict[str, str]] = Field(description="validation rules waived, each with a reason")
    upstream: list[Upstream]
    downstream: list[Downstream]
    deployment: dict[str, Any] = Field(description="replicas and resources for this component")
    schemas: list[str] = Field(description="names of the schemas its ports use, with their ancestors")
    fingerprint: str = Field(description="sha256 of this component's slice content")


class PolicyIR(IRModel):
    security: dict[str, Any]
    resources: dict[str, Any] | None
    performance: dict[str, Any]


class SourceFile(IRModel):
    path: str
    sha256: str


class Metadata(IRModel):
    sources: list[SourceFile]
    warnings: list[dict[str, Any]]
    capacity: list[dict[str, Any]] = Field(description="per terminal: weakest rate and slowest budget path")


class IR(IRModel):
    """generated/ir.v1.json"""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"title": "Autocoder IR v1"})

    ir_version: Literal["1.0.0"]
    generator: Generator
    system: SystemIR
    schemas: dict[str, SchemaIR]
    components: list[ComponentIR]
    bindings: list[BindingIR]
    topology: list[str] = Field(description="component names in topological order")
    policy: PolicyIR
    deployment: dict[str, Any]
    metadata: Metadata


class Slice(IRModel):
    """generated/ir/<component>.json: only what this component's tasks read."""

    ir_version: Literal["1.0.0"]
    system: str = Field(description="the system's name (its Python package)")
    component: ComponentIR
    schemas: dict[str, SchemaIR]
    security_policy: dict[str, Any] = Field(description="policy.security: forbidden imports and calls")
