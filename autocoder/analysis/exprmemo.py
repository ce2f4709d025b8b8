"""compile_expression, remembered across compiles in one process (the warm worker's).

After a one-component edit, `check` re-checks every component's expressions; in a child of the
project's warm worker (tasks/warm_compile.py), which compiled the blueprints once before it
served, those of the 499 unchanged components are found here instead. In a fresh process the
memo is empty and costs one dictionary lookup per expression.

Why a hit is exactly what a fresh compile gives: compile_expression is a pure function of the
text, the wanted type and the fields' types (expr/compiler.py: no other state), and the key is
all three, the types by their repr, which shows every field of a Type, the bounds too (they
take no part in Type's own equality, but the checker reads them). Only successes are kept: an
expression that fails is compiled again each time, so its diagnostic is always made afresh.
The results are frozen dataclasses, shared safely. tests/test_warm_compile.py compares.
"""

from __future__ import annotations

from collections.abc import Mapping

from autocoder.expr.compiler import Compiled, compile_expression
from autocoder.expr.types import Type

LIMIT = 16384  # entries; past it the memo starts afresh (memory stays bounded)
_MEMO: dict[tuple[str, str | None, str], Compiled] = {}


def compiled_expression(text: str, env: Mapping[str, Type], *, want: str | None = None) -> Compiled:
    """compile_expression(text, env, want=want), from the memo when it was compiled before."""
    key = (text, want, repr(tuple(env.items())))
    found = _MEMO.get(key)
    if found is not None:
        return found
    compiled = compile_expression(text, env, want=want)  # ExprError: reported, not kept
    if len(_MEMO) >= LIMIT:
        _MEMO.clear()
    _MEMO[key] = compiled
    return compiled
