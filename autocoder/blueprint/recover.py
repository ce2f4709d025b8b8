"""Error recovery: when a blueprint fails model validation, keep the parts that validate.

Pydantic rejects a whole document for one bad entry. To report every independent mistake in
one run (as a compiler recovers after an error), each top-level section, and each entry of the
sections that are lists or mappings (schemas, components, bindings; deployment's replicas,
resources, overrides, env, secrets), is validated on its own. The entries that validate form a
partial model that the semantic passes analyse; `Broken` records what was left out, so that
the passes skip the checks that depend on it (no "unknown schema" for a schema that exists but
failed validation). The diagnostics of the failed validation itself come from validate_model;
nothing here reports anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from autocoder.blueprint import models as m


@dataclass
class Broken:
    """What a recovered model left out; empty when the model validated as a whole."""

    schemas: set[str] = field(default_factory=set)  # schema names (and schemas extending them)
    # schema -> names of its own fields that failed (the schema is kept with the other fields)
    fields: dict[str, set[str]] = field(default_factory=dict)
    components: set[str] = field(default_factory=set)  # names of components that failed
    unnamed_component: bool = False  # a component failed whose name is unknown
    bound_ports: set[str] = field(default_factory=set)  # "comp.port" named by failed bindings
    unknown_binding: bool = False  # a binding failed whose ports cannot be read
    arch_sections: set[str] = field(default_factory=set)  # failed top-level keys (system, policy)
    deploy_sections: set[str] = field(default_factory=set)  # deployment sections with failures
    recovered: bool = False  # a model was recovered from parts (no IR, no whole-graph estimates)

    @property
    def any_arch(self) -> bool:
        return bool(
            self.schemas
            or self.fields
            or self.components
            or self.unnamed_component
            or self.bound_ports
            or self.unknown_binding
            or self.arch_sections
        )

    @property
    def any(self) -> bool:
        return self.recovered or self.any_arch or bool(self.deploy_sections)

    def schema(self, name: str) -> bool:
        """Whether `name` may be a schema that failed validation."""
        return "schemas" in self.arch_sections or name in self.schemas

    def component(self, name: str) -> bool:
        """Whether `name` may be a component that failed validation."""
        return self.unnamed_component or name in self.components


_SCHEMAS: TypeAdapter[Any] = TypeAdapter(dict[m.SchemaName, m.SchemaDef])
_FIELDS: TypeAdapter[Any] = TypeAdapter(dict[m.Ident, m.FieldSpec])
_COMPONENT: TypeAdapter[Any] = TypeAdapter(m.Component)
_BINDING: TypeAdapter[Any] = TypeAdapter(m.Binding)
_DEPLOYMENT: TypeAdapter[Any] = TypeAdapter(m.Deployment)
_NAME: TypeAdapter[Any] = TypeAdapter(m.Ident, config=ConfigDict(strict=True))


def _valid(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def recover_architecture(data: Any, broken: Broken) -> m.Architecture | None:
    """The architecture made of the parts of `data` that validate, or None when too little does."""
    if not isinstance(data, dict):
        return None
    broken.recovered = True
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if key not in m.Architecture.model_fields:
            continue  # an unknown top-level key: reported, and nothing depends on it
        if key == "schemas" and isinstance(value, dict):
            kept[key] = {}
            for name, spec in value.items():
                if _valid(_SCHEMAS, {name: spec}):
                    kept[key][name] = spec
                    continue
                partial, bad = _partial_schema(spec)
                if partial is not None and bad and _valid(_SCHEMAS, {name: partial}):
                    kept[key][name] = partial  # its field names are known: checks of them go on
                    broken.fields[str(name)] = bad
                else:
                    broken.schemas.add(str(name))
        elif key == "components" and isinstance(value, list):
            kept[key] = []
            for comp in value:
                if _valid(_COMPONENT, comp):
                    kept[key].append(comp)
                elif isinstance(comp, dict) and _valid(_NAME, comp.get("name")):
                    broken.components.add(comp["name"])
                else:  # a bad name: references may use the name meant rather than the one written
                    broken.unnamed_component = True
        elif key == "bindings" and isinstance(value, list):
            kept[key] = []
            for binding in value:
                if _valid(_BINDING, binding):
                    kept[key].append(binding)
                else:
                    _note_binding(binding, broken)
        elif key == "bindings":
            broken.unknown_binding = True  # not a list: which ports are bound is unknown
        elif key in ("schema_version", "system", "components"):
            kept[key] = value  # required: validated with the whole below
        elif _valid_alone(m.Architecture, key, value):
            kept[key] = value
        else:
            broken.arch_sections.add(key)
    if isinstance(data.get("system"), dict) and not _valid(TypeAdapter(m.SystemInfo), data["system"]):
        broken.arch_sections.add("system")
        kept["system"] = {"name": "system"}  # a stand-in: checks of the name are skipped
    try:
        return m.Architecture.model_validate(kept)
    except ValidationError:
        return None


def _partial_schema(spec: Any) -> tuple[dict[str, Any] | None, set[str]]:
    """A schema without its fields that fail on their own, and the names of those fields
    (a bad type in one field leaves every other field, and that field's name, usable)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), dict):
        return None, set()
    fields = {n: f for n, f in spec["fields"].items() if _valid(_FIELDS, {n: f})}
    bad = {str(n) for n in spec["fields"] if n not in fields}
    return {**spec, "fields": fields}, bad


def _note_binding(binding: Any, broken: Broken) -> None:
    """Remember the ports a failed binding names, so that they are not reported unbound."""
    if not isinstance(binding, dict):
        broken.unknown_binding = True
        return
    to = binding.get("to")
    targets = to if isinstance(to, list) else [to]
    refs = [binding.get("from"), *targets]
    readable = [r for r in refs if isinstance(r, str) and "." in r]
    broken.bound_ports.update(readable)
    if not targets or len(readable) < len(refs):
        broken.unknown_binding = True  # a port it was meant to bind cannot be read


def _valid_alone(model: type[m.Model], key: str, value: Any) -> bool:
    """Whether top-level `key` of an architecture validates on its own (its type is a strict
    model, such as policy's)."""
    adapter: TypeAdapter[Any] = TypeAdapter(model.model_fields[key].annotation)  # type: ignore[arg-type]
    return _valid(adapter, value)


def _deploy_valid(key: str, value: Any) -> bool:
    """Whether deployment section `key` validates, in a deployment of its own."""
    return _valid(_DEPLOYMENT, {"schema_version": "1.0.0", key: value})


def recover_deployment(data: Any, broken: Broken) -> m.Deployment | None:
    """The deployment made of the sections (and entries) of `data` that validate."""
    if not isinstance(data, dict):
        return None
    broken.recovered = True
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if key not in m.Deployment.model_fields:
            continue
        if key == "schema_version" or _deploy_valid(key, value):
            kept[key] = value
            continue
        broken.deploy_sections.add(key)
        if isinstance(value, dict) and key in ("replicas", "resources", "component_overrides", "env"):
            kept[key] = {k: v for k, v in value.items() if _deploy_valid(key, {k: v})}
        elif isinstance(value, list) and key == "secrets":
            kept[key] = [v for v in value if _deploy_valid(key, [v])]
    try:
        return m.Deployment.model_validate(kept)
    except ValidationError:
        return None
