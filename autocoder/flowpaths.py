"""The paths of a system that its integration tests cover, one test (and one doit task) each.

A path runs from a start (an api_endpoint, or a source: both put messages into the system) to
an end (a store, a sink, or any component whose output goes nowhere) that the start reaches.
It holds every component on some route from the start to the end, so a fan-out, a fan-in or a
diamond between them is one path, not one per route: the count is bounded by starts x ends,
never exponential in the wiring.

Light (no pydantic, no compiler): doit reads the paths from the blueprint's outline while it
loads the task list, and code generation reads them from the IR; both get the same ids.
"""

from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass

START_KINDS = frozenset(("api_endpoint", "source"))
END_KINDS = frozenset(("store", "sink"))


@dataclass(frozen=True)
class FlowPath:
    id: str  # `<start>__<end>`, plus `_<hash>` where two paths would share that name
    start: str
    end: str
    components: tuple[str, ...]  # sorted; the start and the end included


def flow_paths(kinds: dict[str, str], edges: list[tuple[str, str]]) -> list[FlowPath]:
    """Every (start, end) path of a system of components (`kinds`: name -> kind) wired by
    `edges` (upstream, downstream), sorted by id. Edges naming unknown components are ignored
    (the compiler reports them)."""
    down: dict[str, set[str]] = {name: set() for name in kinds}
    up: dict[str, set[str]] = {name: set() for name in kinds}
    for source, target in edges:
        if source in down and target in down and source != target:
            down[source].add(target)
            up[target].add(source)
    found: list[tuple[str, str, tuple[str, ...]]] = []
    for start in sorted(n for n, kind in kinds.items() if kind in START_KINDS):
        reached = _closure(start, down)
        for end in sorted(reached - {start}):
            if kinds[end] in END_KINDS or not down[end]:
                found.append((start, end, tuple(sorted(reached & _closure(end, up)))))
    names = [f"{start}__{end}" for start, end, _ in found]
    shared = {name for name, count in collections.Counter(names).items() if count > 1}
    paths = []
    for (start, end, on_path), name in zip(found, names, strict=True):
        if name in shared:  # `a__b` + `c` and `a` + `b__c`: told apart by a hash
            name += "_" + hashlib.sha256(f"{start}>{end}".encode()).hexdigest()[:6]
        paths.append(FlowPath(name, start, end, on_path))
    return sorted(paths, key=lambda p: p.id)


def _closure(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def path_test_file(path_id: str) -> str:
    """A path's generated test, under generated/src."""
    return f"tests/paths/test_{path_id}.py"
