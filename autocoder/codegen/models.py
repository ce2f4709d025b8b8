"""Pydantic model definitions for the system's one `models.py`, decided here and only printed
by the template. `extends` becomes a real subclass that declares only the fields it adds or
changes; nested objects become their own models, defined before their owner."""

from __future__ import annotations

from dataclasses import dataclass, field

from autocoder.codegen.literals import pascal, pyliteral
from autocoder.codegen.strategies import integer_bounds
from autocoder.ir.models import FieldSpecIR, SchemaIR

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


@dataclass(frozen=True)
class FieldDef:
    name: str
    annotation: str
    default: str  # " = Field(...)" with constraints, default and description, or nothing


@dataclass
class ModelDef:
    name: str
    base: str  # "MessageModel" (the runtime's base model) or the parent schema's model
    description: str | None
    fields: list[FieldDef] = field(default_factory=list)

    @property
    def config(self) -> str:
        """The model's description travels as a JSON-schema literal, never as a docstring."""
        if not self.description:
            return ""
        return (
            f"model_config = ConfigDict(json_schema_extra={{'description': {pyliteral(self.description)}}})"
        )


def models_module(schemas: dict[str, SchemaIR]) -> list[ModelDef]:
    """Every schema's model in definition order: parents and nested models first."""
    out: list[ModelDef] = []
    done: set[str] = set()

    def define(name: str) -> None:
        if name in done:
            return
        schema = schemas[name]
        parent = schema.extends
        inherited: dict[str, FieldSpecIR] = {}
        if parent:
            define(parent)
            inherited = schemas[parent].fields
        own = {n: s for n, s in schema.fields.items() if inherited.get(n) != s}
        model = ModelDef(name, parent or "MessageModel", schema.description)
        for fname in sorted(own):
            model.fields.append(_field(name, fname, own[fname], out))
        out.append(model)
        done.add(name)

    for name in sorted(schemas):
        define(name)
    return out


def _model(
    name: str, description: str | None, fields: dict[str, FieldSpecIR], out: list[ModelDef]
) -> ModelDef:
    model = ModelDef(name, "MessageModel", description)
    for fname in sorted(fields):
        model.fields.append(_field(name, fname, fields[fname], out))
    return model


def _field(owner: str, name: str, spec: FieldSpecIR, out: list[ModelDef]) -> FieldDef:
    annotation = _annotation(f"{owner}{pascal(name)}", spec, out)
    kwargs: list[str] = []
    optional = not spec.get("required", True)
    if "default" in spec:
        kwargs.append(f"default={pyliteral(spec['default'])}")
    elif optional:
        kwargs.append("default=None")
    if optional and "default" not in spec:
        annotation = f"{annotation} | None"
    kwargs.extend(_constraints(spec))
    if spec.get("description"):
        kwargs.append(f"description={pyliteral(spec['description'])}")
    return FieldDef(name, annotation, f" = Field({', '.join(kwargs)})" if kwargs else "")


def _annotation(nested_name: str, spec: FieldSpecIR, out: list[ModelDef]) -> str:
    kind = spec["type"]
    if "enum" in spec:
        return "Literal[" + ", ".join(pyliteral(v) for v in spec["enum"]) + "]"
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        item = _annotation(nested_name + "Item", spec["items"], out) if spec.get("items") else "Any"
        return f"list[{item}]"
    if spec.get("fields") is not None:
        out.append(_model(nested_name, spec.get("description"), spec["fields"], out))
        return nested_name
    return "dict[str, Any]"


def _constraints(spec: FieldSpecIR) -> list[str]:
    if "enum" in spec:
        return []
    kwargs = []
    if spec["type"] == "integer":
        low, high = integer_bounds(spec)
        kwargs += [f"ge={pyliteral(low)}", f"le={pyliteral(high)}"]
    else:
        bounds = (("ge", spec.get("minimum")), ("le", spec.get("maximum")))
        kwargs += [f"{arg}={pyliteral(value)}" for arg, value in bounds if value is not None]
    lengths = (("min_length", spec.get("min_length")), ("max_length", spec.get("max_length")))
    for key, value in (*lengths, ("pattern", spec.get("pattern"))):
        if value is not None:  # the IR holds only keys that are set
            kwargs.append(f"{key}={pyliteral(value)}")
    return kwargs
