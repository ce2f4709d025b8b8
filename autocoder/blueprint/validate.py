"""Validate loaded YAML data against the blueprint models, with errors that teach.

Pydantic reports every problem at once with a `loc` path; we map that path back to the YAML
position recorded by the loader, and rewrite pydantic's message into "what is wrong; expected
...; fix: ...", with a "did you mean" for misspelled keys and choices. To know which keys were
allowed where an unknown key appears, we walk the model types along the same path.
"""

from __future__ import annotations

import contextlib
import math
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from autocoder.blueprint.models import SUPPORTED_SCHEMA_MAJOR, build_all, schema_major
from autocoder.blueprint.source import SourceDoc
from autocoder.diagnostics import Diagnostic, did_you_mean, one_of

M = typing.TypeVar("M", bound=BaseModel)

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "list_type": "a list",
    "model_attributes_type": "a mapping (key: value)",
    "int_from_float": "an integer (no fractional part)",
    "union_tag_not_found": "a mapping with a `kind` key",
}


def validate_model(
    doc: SourceDoc, model: type[M], items: dict[str, list[Any]] | None = None
) -> tuple[M | None, list[Diagnostic]]:
    """Validate `doc.data` as `model`; returns the instance or every diagnostic found.

    items: lists of the data already validated item by item (blueprint/splice.py), used in
    place of their data when the whole validates cleanly with them (a model instance passes
    pydantic's validation as itself); otherwise the data is validated as it is, and every
    diagnostic comes from that."""
    build_all()  # the validators blueprint.models defers, all at once (reusing one another)
    diags = _check_schema_version(doc)
    if diags:
        return None, diags
    if items is not None:
        with contextlib.suppress(ValidationError):
            return model.model_validate({**doc.data, **items}), []
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        seen: set[tuple[int, int, str]] = set()
        for error in _useful_errors(doc, exc.errors(include_url=False)):
            diag = _to_diagnostic(doc, model, error)
            ident = (diag.line, diag.col, diag.message)
            if ident not in seen:
                seen.add(ident)
                diags.append(diag)
        return None, diags


def _check_schema_version(doc: SourceDoc) -> list[Diagnostic]:
    version = doc.data.get("schema_version")
    if "schema_version" not in doc.data:
        return [
            doc.diag(
                (),
                "AC012",
                "missing key 'schema_version'",
                expected='"1.0.0"',
                fix='add `schema_version: "1.0.0"` as the first line',
            )
        ]
    if not isinstance(version, str):
        return [
            doc.diag(
                ("schema_version",),
                "AC011",
                f"schema_version is a {type(version).__name__}, not a string",
                expected='a quoted semantic version such as "1.0.0"',
                fix=f'write schema_version: "{_as_semver(version)}" (with quotes)',
            )
        ]
    major = schema_major(version)
    if major is None:
        return [
            doc.diag(
                ("schema_version",),
                "AC014",
                f"schema_version '{version}' is not a semantic version",
                expected='MAJOR.MINOR.PATCH such as "1.0.0"',
                fix='write schema_version: "1.0.0"',
            )
        ]
    if major != SUPPORTED_SCHEMA_MAJOR:
        return [
            doc.diag(
                ("schema_version",),
                "AC014",
                f"schema_version {version} is not supported",
                expected=f"{SUPPORTED_SCHEMA_MAJOR}.x.y",
                fix=f'write schema_version: "{SUPPORTED_SCHEMA_MAJOR}.0.0" and adapt the blueprint',
            )
        ]
    return []


def _as_semver(value: Any) -> str:
    text = str(value)
    parts = text.split(".")
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3]) if all(p.isdigit() for p in parts[:3]) else "1.0.0"


def _useful_errors(doc: SourceDoc, errors: list[Any]) -> list[Any]:
    """Drop the noise of union alternatives (`str | list[str]` fails twice for one value):
    per data location, keep the specific errors, or else the first type error."""
    by_loc: dict[tuple, list[Any]] = {}
    for error in errors:
        where = (_strip_tags(doc.data, error["loc"]), "[key]" in error["loc"])
        by_loc.setdefault(where, []).append(error)
    result = []
    for (loc, _), group in by_loc.items():
        specific = [e for e in group if e["type"] not in _TYPE_NAMES]
        if not specific and any(len(other) > len(loc) and other[: len(loc)] == loc for other, _ in by_loc):
            continue  # a union member failed deeper down: that error says more
        numeric = [e for e in group if e["type"] == "float_type"]  # int | float: say "a number"
        result.extend(specific or numeric or group[:1])
    return result


def _to_diagnostic(doc: SourceDoc, model: type[BaseModel], error: Any) -> Diagnostic:
    loc = _strip_tags(doc.data, error["loc"])
    kind = error["type"]
    value = error.get("input")
    where = _describe(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(model, error["loc"][:-1])
        hint = did_you_mean(key, allowed)
        return doc.diag(
            loc,
            "AC010",
            f"unknown key '{key}'{_in(loc[:-1])}",
            key=True,
            expected=one_of(allowed),
            fix=hint or "remove it, or move it where it belongs",
        )
    if kind == "missing":
        key = str(loc[-1])
        return doc.diag(
            loc[:-1],
            "AC012",
            f"missing key '{key}'{_in(loc[:-1])}",
            expected=f"a `{key}:` entry",
            fix=f"add `{key}: ...`",
        )
    if "[key]" in error["loc"]:
        return doc.diag(
            loc,
            "AC013",
            f"bad name '{loc[-1]}'{_in(loc[:-1])}: {_reason(error)}",
            key=True,
            expected=_name_rule(error),
            fix="rename it",
        )
    if kind == "union_tag_invalid":
        value = (error.get("ctx") or {}).get("tag")
        loc, where = (*loc, "kind"), _describe((*loc, "kind"))
    if kind in ("union_tag_invalid", "literal_error", "enum"):
        choices = _choices(error)
        hint = did_you_mean(str(value), choices)
        return doc.diag(
            loc,
            "AC013",
            f"{where} is {_shown(value)}",
            expected=one_of(choices),
            fix=hint or f"use {one_of(choices)}",
        )
    if kind in _TYPE_NAMES:
        return doc.diag(
            loc,
            "AC011",
            f"{where} is {_kind_of(value)}",
            expected=_TYPE_NAMES[kind],
            fix=_type_fix(kind, value),
        )
    if kind == "string_pattern_mismatch":
        return doc.diag(
            loc,
            "AC013",
            f"{where} {_shown(value)} is not allowed",
            expected=_name_rule(error),
            fix="rename it to match",
        )
    if kind == "value_error":
        return doc.diag(loc, "AC013", f"{where}: {_reason(error)}", fix="change the value")
    return doc.diag(
        loc,
        "AC013",
        f"{where} is {_shown(value)}: {_reason(error)}",
        expected=_reason(error).lower(),
        fix="change the value",
    )


def _reason(error: Any) -> str:
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _name_rule(error: Any) -> str:
    ctx = error.get("ctx") or {}
    pattern = ctx.get("pattern")
    if pattern is None:
        return "a lower_snake_case name, not a reserved word"
    return {
        r"^[a-z][a-z0-9_]*$": "lower_snake_case: a-z first, then a-z, 0-9 or _",
        r"^[A-Z][A-Za-z0-9]*$": "PascalCase: A-Z first, then letters and digits",
        r"^[A-Z_][A-Z0-9_]*$": "UPPER_SNAKE_CASE",
        r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$": "component.port, e.g. pricer.in",
    }.get(pattern, f"text matching {pattern}")


def _choices(error: Any) -> list[str]:
    ctx = error.get("ctx") or {}
    raw = ctx.get("expected_tags") or ctx.get("expected") or ""
    return [c.strip().strip("'\"") for c in str(raw).replace(" or ", ", ").split(",") if c.strip()]


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:60]!r})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return type(value).__name__


def _yaml_number(text: str) -> str | None:
    """`text` rewritten so that YAML reads it as a number, when it is one YAML reads as a
    string: YAML 1.1 (PyYAML) takes an exponent only after a dot and with a sign (1e5, 1.0e5)."""
    try:
        number = float(text)
    except ValueError:
        return None
    if "e" not in text.lower():
        return None
    if not math.isfinite(number):
        return "a smaller number (as a number it would not be finite)"
    mantissa, _, exponent = text.lower().partition("e")
    mantissa = mantissa if "." in mantissa else mantissa + ".0"
    return f"{mantissa}e{exponent if exponent[:1] in '+-' else '+' + exponent}"


def _shown(value: Any, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters: a diagnostic never echoes a huge value whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _type_fix(kind: str, value: Any) -> str:
    if kind in ("int_type", "float_type") and isinstance(value, str):
        rewritten = _yaml_number(value.strip())
        if rewritten is not None:
            return f"YAML reads {value.strip()} as text (its exponent needs a dot and a sign): {rewritten}"
        return f"write the number without quotes: {value}"
    if kind == "string_type" and isinstance(value, int | float | bool):
        return f'quote it: "{value}"'
    if kind in ("dict_type", "model_type", "model_attributes_type") and isinstance(value, list):
        return "write `key: value` entries instead of a `- item` list"
    if kind == "list_type" and isinstance(value, dict):
        return "write a list of `- item` entries"
    if value is None:
        return "fill in a value or remove the key"
    return "change the value to the expected type"


def _describe(loc: tuple) -> str:
    return f"'{_dotted(loc)}'" if loc else "the document"


def _in(loc: tuple) -> str:
    return f" in '{_dotted(loc)}'" if loc else " at the top level"


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _strip_tags(data: Any, loc: tuple) -> tuple:
    """Pydantic puts union tags (like 'filter') into loc; keep only real data keys."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and not isinstance(part, int) and part == loc[-1]:
            path.append(part)  # a missing or unknown key: not in the data
            current = None
        # else: a union tag or a type name: skip
    return tuple(path)


# --------------------------------------------------------------------------- model walking


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model accepts at `loc` (pydantic loc, tags included)."""
    tp: Any = model
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return []
    tp = _unwrap(tp)
    models = [m for m in _members(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
    keys: list[str] = []
    for m in models:
        keys.extend(f.alias or name for name, f in m.model_fields.items())
    return keys


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(tp)]
    return [tp]


def _descend(tp: Any, part: str | int) -> Any:
    for member in _members(tp):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            for name, f in member.model_fields.items():
                if part in (name, f.alias):
                    return f.annotation
        elif origin is list and isinstance(part, int):
            return typing.get_args(member)[0]
        elif origin is dict and part != "[key]":
            return typing.get_args(member)[1]
    # a discriminated-union tag: pick the member whose `kind` literal equals it
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel) and "kind" in member.model_fields:
            if part in typing.get_args(member.model_fields["kind"].annotation):
                return member
    return None
