"""Resolve named schemas: flatten `extends`, check field constraints, derive expression types."""

from __future__ import annotations

import re
import warnings
from typing import Any

from autocoder.analysis.context import Context
from autocoder.analysis.messages import value_problems
from autocoder.analysis.patterns import ENGINE, engine_error
from autocoder.blueprint.models import FieldSpec, SchemaDef
from autocoder.diagnostics import did_you_mean, one_of
from autocoder.expr.types import Type, type_of_field


def resolve_schemas(ctx: Context) -> None:
    """Fill ctx.schemas with every schema flattened along its `extends` chain."""
    defs = ctx.arch.schemas
    for name in defs:
        chain = _chain(ctx, name, defs)
        if chain is None:
            continue
        fields: dict[str, Any] = {}
        for ancestor in reversed(chain):
            for fname, spec in defs[ancestor].fields.items():
                path = ("schemas", ancestor, "fields", fname)
                if ancestor == name and fname in fields and fields[fname]["type"] != spec.type:
                    ctx.report(
                        path,
                        "AC114",
                        f"field '{fname}' of {name} redefines inherited type "
                        f"{fields[fname]['type']} as {spec.type}",
                        expected=f"type {fields[fname]['type']}",
                        fix="keep the inherited type or rename the field",
                    )
                if ancestor == name:
                    _check_field(ctx, path, fname, spec)
                fields[fname] = _dump(spec)
        unknown = frozenset(f for ancestor in chain for f in ctx.broken.fields.get(ancestor, ()))
        if unknown:
            ctx.unknown_fields[name] = unknown
        ctx.schemas[name] = {
            "name": name,
            "description": defs[name].description,
            "extends": defs[name].extends,
            "ancestors": chain[1:],
            "fields": fields,
        }


def _chain(ctx: Context, name: str, defs: dict[str, SchemaDef]) -> list[str] | None:
    """[name, parent, grandparent, ...] or None (after reporting) when broken."""
    chain = [name]
    current = defs[name]
    while current.extends is not None:
        base = current.extends
        if base not in defs and ctx.broken.schema(base):
            ctx.broken.schemas.add(name)  # resting on a schema that failed validation
            return None
        if base not in defs:
            ctx.report(
                ("schemas", chain[-1], "extends"),
                "AC102",
                f"unknown schema '{base}' in extends",
                expected=one_of(defs),
                fix=did_you_mean(base, defs) or "declare it under schemas",
            )
            return None
        if base in chain:
            if chain[0] == min(chain):  # report a cycle once, at its alphabetically first schema
                ctx.report(
                    ("schemas", name, "extends"),
                    "AC114",
                    "schema inheritance cycle: " + " -> ".join([*chain, base]),
                    fix="remove one of the extends",
                )
            return None
        chain.append(base)
        current = defs[base]
    return chain


def _dump(spec: FieldSpec) -> dict[str, Any]:
    data = spec.model_dump(mode="json", exclude_none=True)
    if "items" in data:
        data["items"] = _dump(spec.items)  # type: ignore[arg-type]
    if "fields" in data:
        data["fields"] = {k: _dump(v) for k, v in spec.fields.items()}  # type: ignore[union-attr]
    return data


def _check_field(ctx: Context, path: tuple, name: str, spec: FieldSpec) -> None:
    """AC119: constraints that contradict each other or the field's type."""

    def bad(key: str, message: str, fix: str, expected: str = "") -> None:
        ctx.report((*path, key), "AC119", f"field '{name}': {message}", fix=fix, expected=expected)

    numeric = spec.type in ("integer", "number")
    for key in ("minimum", "maximum"):
        if getattr(spec, key) is not None and not numeric:
            bad(key, f"{key} applies to numbers, not {spec.type}", f"remove {key}")
    for key in ("min_length", "max_length", "pattern"):
        if (
            getattr(spec, key) is not None
            and spec.type != "string"
            and not (key != "pattern" and spec.type == "array")
        ):
            bad(key, f"{key} does not apply to {spec.type}", f"remove {key}")
    if spec.items is not None and spec.type != "array":
        bad("items", f"items applies to arrays, not {spec.type}", "remove items or use type: array")
    if spec.fields is not None and spec.type != "object":
        bad("fields", f"fields applies to objects, not {spec.type}", "remove fields or use type: object")
    if spec.minimum is not None and spec.maximum is not None and spec.minimum > spec.maximum:
        bad("minimum", f"minimum {spec.minimum} is above maximum {spec.maximum}", "swap or fix the bounds")
    if spec.min_length is not None and spec.max_length is not None and spec.min_length > spec.max_length:
        bad(
            "min_length",
            f"min_length {spec.min_length} is above max_length {spec.max_length}",
            "swap or fix the bounds",
        )
    if spec.pattern is not None:
        _check_pattern(ctx, path, name, spec.pattern, bad)
    for i, value in enumerate(spec.enum or []):
        if not _fits(spec, value):
            ctx.report(
                (*path, "enum", i),
                "AC119",
                f"field '{name}': enum value {value!r} is not a {spec.type}",
                fix=f"use {spec.type} values only",
            )
    if spec.default is not None and not _fits(spec, spec.default):
        bad(
            "default",
            f"default {spec.default!r} does not fit the field's type and constraints",
            "change the default",
            expected=f"a {spec.type} within the constraints",
        )
    if spec.items is not None:
        _check_field(ctx, (*path, "items"), f"{name}[]", spec.items)
    for sub, sub_spec in (spec.fields or {}).items():
        _check_field(ctx, (*path, "fields", sub), f"{name}.{sub}", sub_spec)


def _check_pattern(ctx: Context, path: tuple, name: str, pattern: str, bad: Any) -> None:
    """AC119 unless `pattern` is a regular expression; AC125 unless the runtime's linear-time
    engine compiles it too. (Python's `re` only compiles it, for the generated property tests;
    no value is ever matched with it: it backtracks.)"""
    try:
        with warnings.catch_warnings():  # "possible set difference" and the like: not errors
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as exc:
        bad(
            "pattern",
            f"pattern is not a valid regular expression: {exc.msg}",
            "fix the regular expression",
            expected="a valid regular expression",
        )
        return
    except (RecursionError, OverflowError, MemoryError):
        bad("pattern", "pattern is too complex to compile", "simplify the regular expression")
        return
    reason = engine_error(pattern)
    if reason is not None:
        ctx.report(
            (*path, "pattern"),
            "AC125",
            f"field '{name}': pattern {pattern[:80]!r} cannot run on the generated system's "
            f"regex engine: {reason}",
            expected=f"a pattern for {ENGINE}: no look-around (?=, (?!, (?<=, (?<!), "
            "no backreferences (\\1), no atomic groups or possessive quantifiers",
            fix="rewrite it without those constructs (e.g. check the excluded case with a "
            "filter component), or drop the pattern",
        )


def _fits(spec: FieldSpec, value: Any) -> bool:
    """Whether a literal (enum value or default) satisfies the field's type and bounds."""
    return not value_problems(_dump(spec), value, "value")


def field_types(schema: dict[str, Any]) -> dict[str, Type]:
    """Expression-language types of a resolved schema's fields."""
    return {name: type_of_field(spec) for name, spec in schema["fields"].items()}


def extends_or_equals(schemas: dict[str, dict[str, Any]], child: str, parent: str) -> bool:
    """Whether messages of schema `child` can be used where `parent` is expected."""
    if child == parent:
        return True
    return parent in schemas.get(child, {}).get("ancestors", [])
