"""Blueprint data reaches generated code only as Python literals built here, never as code."""

from __future__ import annotations

import math
from typing import Any


def pyliteral(value: Any) -> str:
    """A Python literal for JSON-like data (deterministic: dict keys sorted)."""
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value!r} cannot be a literal")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(pyliteral(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{pyliteral(str(k))}: {pyliteral(v)}" for k, v in sorted(value.items()))
        return "{" + items + "}"
    raise TypeError(f"{type(value).__name__} cannot be a literal")


def wrapped_literal(text: str | None, width: int = 60) -> str:
    """A string literal that ruff can lay out within the line length: a long text becomes
    implicitly concatenated pieces of at most `width` characters, in parentheses."""
    if text is None or len(text) <= width:
        return pyliteral(text)
    pieces = [text[i : i + width] for i in range(0, len(text), width)]
    return "(" + " ".join(pyliteral(piece) for piece in pieces) + ")"


def pascal(name: str) -> str:
    """lower_snake -> PascalCase (component and field names are validated identifiers)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
