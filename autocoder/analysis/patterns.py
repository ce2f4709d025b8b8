"""Blueprint regular expressions (`pattern:`), run by the engine the generated system uses.

The generated models validate `Field(pattern=...)` with pydantic-core's Rust `regex` engine:
linear time in the input (no backtracking), and no look-around or backreferences. Every check
of a value against a blueprint pattern here uses that same engine, so a pattern such as
`^(a+)+$` costs microseconds, not hours, and a pattern that engine cannot compile is refused at
`check` (AC125), not when the generated system starts. Matching is pydantic's: a search
anywhere in the string, so anchor with ^ and $ to match the whole value.
"""

from __future__ import annotations

import functools

from pydantic_core import SchemaError, SchemaValidator, ValidationError, core_schema

ENGINE = "pydantic-core's linear-time regex engine (Rust `regex` crate)"


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> SchemaValidator | str:
    """A validator of strings matching `pattern`, or the engine's reason for refusing it."""
    try:
        return SchemaValidator(core_schema.str_schema(pattern=pattern, regex_engine="rust-regex"))
    except SchemaError as exc:
        return _reason(str(exc))


def _reason(text: str) -> str:
    """The engine's one-line explanation ('error: look-around ... is not supported')."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "cannot be compiled"


def engine_error(pattern: str) -> str | None:
    """Why the linear-time engine cannot compile `pattern`, or None when it can."""
    compiled = _compiled(pattern)
    return compiled if isinstance(compiled, str) else None


def search(pattern: str, value: str) -> bool | None:
    """Whether `pattern` matches somewhere in `value` (pydantic's semantics); None when the
    engine cannot compile the pattern (reported on its own as AC119 or AC125)."""
    compiled = _compiled(pattern)
    if isinstance(compiled, str):
        return None
    try:
        compiled.validate_python(value)
    except ValidationError:
        return False
    return True
