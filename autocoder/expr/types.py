"""Static types of the expression language, derived from blueprint field specs."""

from __future__ import annotations

from dataclasses import dataclass, field

NUMERIC = frozenset({"integer", "number"})


@dataclass(frozen=True)
class Type:
    """A value type: a blueprint field type plus `optional` (the value may be None).

    `item` is the element type of an array; `fields` the members of an object. `minimum` and
    `maximum` are a field's declared bounds, where the checker needs them (round's digits); they
    are facts about a value, not part of its type, so they do not take part in comparisons.
    """

    kind: str
    optional: bool = False
    item: Type | None = None
    fields: tuple[tuple[str, Type], ...] | None = None
    minimum: int | float | None = field(default=None, compare=False)
    maximum: int | float | None = field(default=None, compare=False)

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC

    def required(self) -> Type:
        return Type(self.kind, False, self.item, self.fields, self.minimum, self.maximum)

    def field(self, name: str) -> Type | None:
        return dict(self.fields or ()).get(name)

    def __str__(self) -> str:
        text = f"array of {self.item}" if self.kind == "array" and self.item else self.kind
        return f"{text} (optional)" if self.optional else text


STRING = Type("string")
INTEGER = Type("integer")
NUMBER = Type("number")
BOOLEAN = Type("boolean")
NULL = Type("null", optional=True)


def type_of_field(spec: dict) -> Type:
    """The Type of a resolved IR field spec (a dict with type, required, default, items, fields)."""
    optional = not spec.get("required", True) and spec.get("default") is None
    item = type_of_field(spec["items"]) if spec.get("items") else None
    fields = None
    if spec.get("fields") is not None:
        fields = tuple(sorted((k, type_of_field(v)) for k, v in spec["fields"].items()))
    return Type(spec["type"], optional, item, fields, spec.get("minimum"), spec.get("maximum"))


def assignable(value: Type, target: Type) -> bool:
    """Whether a value of type `value` may be stored in a field of type `target`."""
    if value.kind == "null":
        return target.optional
    if value.optional and not target.optional:
        return False
    if value.kind == target.kind:
        if value.kind == "array" and value.item and target.item:
            return assignable(value.item, target.item)
        return True
    return value.kind == "integer" and target.kind == "number"


def unify(a: Type, b: Type) -> Type | None:
    """The common type of two branches (integer and number unify to number), or None."""
    optional = a.optional or b.optional
    if a.kind == "null":
        return Type(b.kind, True, b.item, b.fields)
    if b.kind == "null":
        return Type(a.kind, True, a.item, a.fields)
    if a.kind == b.kind:
        return Type(a.kind, optional, a.item, a.fields)
    if a.numeric and b.numeric:
        return Type("number", optional)
    return None
