"""Calls that run with room on the interpreter's frame stack: no chunk thrash under them.

Why: CPython keeps the frames of Python calls on a per-thread stack made of chunks (16 KB
each, mapped from the system), and unmaps a chunk as soon as the last frame in it returns.
Code whose call depth goes back and forth across the end of a chunk maps and unmaps a chunk
(and takes a fresh page fault) at every crossing. Where the ends of the chunks fall depends
on how deep the caller already is: six pytest sessions of the test tier took ~24,000 page
faults from near the top of a process's stack, and 64,000-115,000 from 40-60 frames deeper,
1.25-1.42x the CPU (benchmarks/results/stackroom.json); a doit worker runs a task's action,
and forks the test tier's child, that deep. In a build from scratch at 100 components, 38% of
all page faults were in that allocation (perf, minor-faults); through `with_room`, the build
took 0.86x the CPU and 0.82x the time (benchmarks/results/full_build-s13-stackroom.json).

How: `with_room(function, *args)` calls `function` through one frame that reserves ROOM of
value stack it never uses. Its chunk is made big enough for it (the next power of two), so
`function` and everything it calls find ~ROOM of free chunk after that frame: the stack
under it never crosses the end of a chunk, unless it grows deeper than ROOM. The reserved
pages are never written, so the kernel never backs them with memory. The code object is
this module's own, with a larger `co_stacksize` (a reservation; the interpreter only uses
what the code pushes): nothing is compiled or evaluated.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

ROOM = 1 << 20  # bytes of frame stack reserved below `function`: ~5,000 ordinary frames
_SLOT = 8  # bytes per value-stack slot (a pointer)


def _call(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return function(*args, **kwargs)


_ROOMY: Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any] = types.FunctionType(
    _call.__code__.replace(co_stacksize=_call.__code__.co_stacksize + ROOM // _SLOT),
    _call.__globals__,
    "_call_with_room",
)


def with_room(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)`, its frames and its callees' in a frame-stack chunk of
    their own with ~ROOM free (see the module docstring)."""
    result: T = _ROOMY(function, args, kwargs)
    return result
