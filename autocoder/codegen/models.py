"""Pydantic model definitions for generated code, decided here and only printed by templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autocoder.codegen.literals import pascal, pyliteral

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


@dataclass(frozen=True)
class FieldDef:
    name: str
    annotation: str
    default: str  # the right-hand side: "Field(...)" with constraints, default and description


@dataclass
class ModelDef:
    name: str
    description: str | None
    fields: list[FieldDef] = field(default_factory=list)

    @property
    def docstring(self) -> str:
        return pyliteral(self.description or f"Message schema {self.name}.")


def models_for(schemas: dict[str, dict[str, Any]], names: list[str]) -> list[ModelDef]:
    """Model classes for the named resolved schemas, nested object models first."""
    out: list[ModelDef] = []
    for name in sorted(names):
        schema = schemas[name]
        out.append(_model(name, schema.get("description"), schema["fields"], out))
    return out


def _model(name: str, description: str | None, fields: dict[str, Any], out: list[ModelDef]) -> ModelDef:
    model = ModelDef(name, description)
    for fname in sorted(fields):
        model.fields.append(_field(name, fname, fields[fname], out))
    return model


def _field(owner: str, name: str, spec: dict[str, Any], out: list[ModelDef]) -> FieldDef:
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
    return FieldDef(name, annotation, f"Field({', '.join(kwargs)})")


def _annotation(nested_name: str, spec: dict[str, Any], out: list[ModelDef]) -> str:
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


def _constraints(spec: dict[str, Any]) -> list[str]:
    kwargs = []
    for key, arg in (
        ("minimum", "ge"),
        ("maximum", "le"),
        ("min_length", "min_length"),
        ("max_length", "max_length"),
        ("pattern", "pattern"),
    ):
        if key in spec and "enum" not in spec:
            kwargs.append(f"{arg}={pyliteral(spec[key])}")
    return kwargs
