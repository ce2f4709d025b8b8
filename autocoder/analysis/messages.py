"""Check a literal message (an example's input) against a resolved schema."""

from __future__ import annotations

from typing import Any

from autocoder.analysis.patterns import search

_KINDS = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def message_problems(fields: dict[str, Any], data: dict[str, Any], prefix: str = "") -> list[str]:
    """Every way `data` fails the resolved `fields` (unknown, missing, wrong type, constraints)."""
    problems = []
    for key in data:
        if key not in fields:
            problems.append(f"unknown field '{prefix}{key}'")
    for name, spec in fields.items():
        if name not in data:
            if spec.get("required", True) and spec.get("default") is None:
                problems.append(f"missing required field '{prefix}{name}'")
            continue
        problems.extend(value_problems(spec, data[name], f"{prefix}{name}"))
    return problems


def value_problems(spec: dict[str, Any], value: Any, where: str) -> list[str]:
    """Problems of one value against one resolved field spec."""
    if value is None:
        return [] if not spec.get("required", True) else [f"'{where}' is null"]
    kind = spec["type"]
    if (isinstance(value, bool) and kind != "boolean") or not isinstance(value, _KINDS[kind]):
        return [f"'{where}' should be {kind}, got {type(value).__name__} {value!r}"]
    problems = []
    if "enum" in spec and value not in spec["enum"]:
        problems.append(f"'{where}' is {value!r}, not one of {spec['enum']}")
    if kind in ("integer", "number"):
        if "minimum" in spec and value < spec["minimum"]:
            problems.append(f"'{where}' is {value}, below minimum {spec['minimum']}")
        if "maximum" in spec and value > spec["maximum"]:
            problems.append(f"'{where}' is {value}, above maximum {spec['maximum']}")
    if kind in ("string", "array") and isinstance(value, str | list):
        if "min_length" in spec and len(value) < spec["min_length"]:
            problems.append(f"'{where}' is shorter than {spec['min_length']}")
        if "max_length" in spec and len(value) > spec["max_length"]:
            problems.append(f"'{where}' is longer than {spec['max_length']}")
    if isinstance(value, str) and "pattern" in spec and search(spec["pattern"], value) is False:
        # the runtime's linear-time engine; a pattern it cannot compile is AC119 or AC125
        problems.append(f"'{where}' {value!r} does not match pattern {spec['pattern']!r}")
    if kind == "array" and "items" in spec:
        for i, item in enumerate(value):
            problems.extend(value_problems(spec["items"], item, f"{where}[{i}]"))
    if kind == "object" and "fields" in spec:
        problems.extend(message_problems(spec["fields"], value, f"{where}."))
    return problems
