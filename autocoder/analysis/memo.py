"""A per-component memo of the compiler's component-local work, kept in memory.

After a one-component edit, `check` would otherwise analyse every component again (compile
its expressions, check its config and examples) and build, hash and validate every IR slice.
This memo keeps, per component, what those steps produced in the last compile of this
process: the component's diagnostics and compiled logic, and its IR slice. The project's warm
worker (validate/warm_worker.py) compiles the blueprints once before it serves, so each
`check` child it forks starts with the entries of every component as they were then; a
process without a worker (a plain `autocoder build`, the CLI) fills it in its first compile.
The memo also holds architecture.yaml's list items as parsed and validated alone (`parse`,
blueprint/splice.py: an edit parses one item and a skeleton of the file). The system-wide
passes (schemas, duplicate names, deployment) run every time, over all components; the
bindings, the graph and the capacity estimates are the last compile's when they read the same
(the text outside the components, each component's name, kind and ports; for capacity also
the rates and budgets) and gave no diagnostic (`Graph`, MemoRun.graph_key).

Why a hit gives exactly what a fresh compile gives: an entry's key holds everything the
memoised steps read,
- the text of architecture.yaml outside the `components` list (schemas, bindings, policy,
  system, YAML directives, comments) and all of deployment.yaml: a change there misses every
  entry;
- the component's index, where its text starts (column, and the line's text before it) and
  its YAML text itself: its data and the positions of its diagnostics (with their
  `components[i]` paths) come from these alone, but for the line its text starts on, which
  shifts every line of them alike: an entry keeps the line it was made at, and its
  diagnostics are moved by the difference (an entry is made only when every diagnostic lies
  within the component's own lines: lines above it may grow or shrink);
- for the slice, also the component's wiring (its resolved bindings, whose compiled conditions
  read the schemas of the components at the other end; the keys are the last IR's when the
  resolved bindings are the same JSON: `MemoRun.wirings`). Its merged deployment settings are
  computed from the component, deployment.yaml, the policy and rules/budgets.yaml, all in the
  key already (the rules are part of Autocoder's files, which key the worker).
The memo is used only for a blueprint that validates cleanly (no part left out by recovery)
and has no YAML anchor: an alias would make a component's data depend on text outside it.
Entries are immutable in use (frozen IR models, diagnostics, logic only read); only the
entries the last compile used or made are kept, so the memo holds one blueprint's worth.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autocoder.blueprint.splice import ParseMemo, has_anchor, item_spans, span
from autocoder.layout import ARCHITECTURE

if TYPE_CHECKING:
    from autocoder.analysis.context import Context
    from autocoder.diagnostics import Diagnostic
    from autocoder.ir.models import Slice

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True)

Key = tuple[bytes, int, int, str, str]


@dataclass(frozen=True)
class Analysis:
    """What check_components made of one component: its diagnostics, whether its ports were
    right (else nothing more of it was checked) and its compiled logic."""

    diagnostics: tuple[Diagnostic, ...]
    ok: bool
    logic: Any
    line: int  # the (1-based) line the component's text started on when this was made


@dataclass(frozen=True)
class Deployed:
    """What check_deployment made of one component: its diagnostics (in architecture.yaml, on
    the component's own lines, or in deployment.yaml, whose text is in the key) and its merged
    deployment facts (read only)."""

    diagnostics: tuple[Diagnostic, ...]
    merged: dict[str, Any]
    line: int  # the (1-based) line the component's text started on when this was made


@dataclass
class Graph:
    """What check_bindings and check_graph made of a blueprint that gave no diagnostic: the
    resolved bindings, the component graph and its topological order; and what build_ir
    derives from the bindings (filled as it does). Immutable in use, like every entry."""

    key: tuple[Any, ...]  # graph_key's
    bindings: list[dict[str, Any]]
    edges: dict[str, set[str]]
    order: list[str]
    wiring: tuple[dict[str, list], dict[str, list]] | None = None  # build._wiring's
    binding_models: list[Any] | None = None  # the bindings validated as the IR's BindingIR


@dataclass
class ComponentMemo:
    """The entries of the last compile, by key; `hits` and `computed` count this compile's."""

    analyses: dict[Key, Analysis] = field(default_factory=dict)
    slices: dict[tuple[Key, str], Slice] = field(default_factory=dict)
    deployed: dict[Key, Deployed] = field(default_factory=dict)
    hits: int = 0
    computed: int = 0
    parse: ParseMemo = field(default_factory=ParseMemo)  # architecture.yaml's list items
    # the last IR's resolved bindings, their compact JSON and each component's wiring key
    # (wiring_key) made from them
    wirings: tuple[list[Any], str, dict[str, str]] | None = None
    graph: Graph | None = None  # the last compile's, when clean (MemoRun.graph)
    capacity: tuple[tuple[Any, ...], list[dict[str, Any]]] | None = None  # check_capacity's, when clean


class MemoRun:
    """One compile's use of a ComponentMemo: the keys of its components, the entries it used
    or made (which replace the memo's when the compile ends: `finish`)."""

    def __init__(
        self, memo: ComponentMemo, keys: list[Key], spans: list[tuple[int, int]], outside: bytes = b""
    ) -> None:
        self.memo = memo
        self.outside = outside  # the digest of the text outside the components (keys[i][0])
        self.graph: Graph | None = None  # the one this compile uses or made
        self._capacity: tuple[tuple[Any, ...], list[dict[str, Any]]] | None = None
        self.keys = keys
        self.spans = spans  # per component: its first and last line (1-based)
        self._analyses: dict[Key, Analysis] = {}
        self._slices: dict[tuple[Key, str], Slice] = {}
        self._deployed: dict[Key, Deployed] = {}
        self._wirings: tuple[list[Any], str, dict[str, str]] | None = None

    def analysis(self, index: int) -> Analysis | None:
        """Component `index`'s entry, its diagnostics on the lines where its text is now."""
        found = self.memo.analyses.get(self.keys[index])
        if found is None:
            return None
        self.memo.hits += 1
        line = self.spans[index][0]
        if found.line != line:  # its diagnostics are all in architecture.yaml (store_analysis)
            found = Analysis(_moved(found.diagnostics, line - found.line), found.ok, found.logic, line)
        self._analyses[self.keys[index]] = found
        return found

    def store_analysis(self, index: int, diagnostics: list[Diagnostic], ok: bool, logic: Any) -> None:
        """Keep component `index`'s results, unless a diagnostic lies outside its own lines
        (moving it with the component would be wrong)."""
        self.memo.computed += 1
        first, last = self.spans[index]
        if all(d.file == ARCHITECTURE and first <= d.line <= last for d in diagnostics):
            self._analyses[self.keys[index]] = Analysis(tuple(diagnostics), ok, logic, first)

    def deployed(self, index: int) -> Deployed | None:
        """Component `index`'s check_deployment entry, its diagnostics in architecture.yaml on
        the lines where its text is now."""
        found = self.memo.deployed.get(self.keys[index])
        if found is None:
            return None
        self.memo.hits += 1
        line = self.spans[index][0]
        if found.line != line:
            found = Deployed(_moved(found.diagnostics, line - found.line), found.merged, line)
        self._deployed[self.keys[index]] = found
        return found

    def store_deployed(self, index: int, diagnostics: list[Diagnostic], merged: dict[str, Any]) -> None:
        """Keep component `index`'s check_deployment results, unless a diagnostic in
        architecture.yaml lies outside its own lines."""
        self.memo.computed += 1
        first, last = self.spans[index]
        if all(d.file != ARCHITECTURE or first <= d.line <= last for d in diagnostics):
            self._deployed[self.keys[index]] = Deployed(tuple(diagnostics), merged, first)

    def slice(self, index: int, wiring: str) -> Slice | None:
        found = self.memo.slices.get((self.keys[index], wiring))
        if found is not None:
            self.memo.hits += 1
            self._slices[(self.keys[index], wiring)] = found
        return found

    def store_slice(self, index: int, wiring: str, made: Slice) -> None:
        self.memo.computed += 1
        self._slices[(self.keys[index], wiring)] = made

    def wirings(
        self, bindings: list[Any], upstream: dict, downstream: dict, names: list[str]
    ) -> dict[str, str]:
        """Each of `names`' wiring key (wiring_key of its upstream and downstream lists, made
        from `bindings`): the last IR's when the resolved bindings are the same list (the
        memo's Graph) or the same JSON (a component's wiring is a function of them and its
        name), else encoded (500 encodes cost ~3 ms of an edit's compile at 500 components)."""
        last = self.memo.wirings
        if last is not None and last[0] is bindings:
            whole = last[1]
        else:
            whole = _ENCODER.encode(bindings)
        known = last[2] if last is not None and last[1] == whole else {}
        made = {}
        for name in names:
            found = known.get(name)
            made[name] = found if found is not None else wiring_key(upstream.get(name), downstream.get(name))
        self._wirings = (bindings, whole, made)
        return made

    def graph_key(self, components: list[Any]) -> tuple[Any, ...]:
        """What check_bindings and check_graph read of a blueprint that validated cleanly: the
        text outside the components (the schemas, the bindings, the policy), and each
        component's name, kind and ports, in order (not its logic, config or examples: an
        edit of those leaves the graph as it was)."""
        shape = tuple((c.name, c.kind, tuple(c.inputs.items()), tuple(c.outputs.items())) for c in components)
        return (self.outside, shape)

    def known_graph(self, key: tuple[Any, ...]) -> Graph | None:
        """The last compile's graph when it was made from the same `key` (it gave no
        diagnostic then, so it gives none now)."""
        found = self.memo.graph
        if found is None or found.key != key:
            return None
        self.graph = found
        return found

    def store_graph(self, graph: Graph) -> None:
        """Keep `graph` (made by this compile without a diagnostic)."""
        self.graph = graph

    def capacity(self, key: tuple[Any, ...]) -> list[dict[str, Any]] | None:
        """check_capacity's estimates for the same graph, rates, budgets and policy when they
        gave no diagnostic (its AC112 sits on the policy's lines, which move)."""
        found = self.memo.capacity
        if found is None or found[0] != key:
            return None
        self._capacity = found
        return found[1]

    def store_capacity(self, key: tuple[Any, ...], estimates: list[dict[str, Any]]) -> None:
        self._capacity = (key, estimates)

    def finish(self) -> None:
        """Keep only this compile's entries (an edited component's old ones go)."""
        self.memo.analyses = self._analyses
        self.memo.deployed = self._deployed
        if self.graph is not None:
            self.memo.graph = self.graph
        if self._capacity is not None:
            self.memo.capacity = self._capacity
        if self._slices:  # a compile that built no IR leaves the slices for the next one
            self.memo.slices = self._slices
            self.memo.wirings = self._wirings


def _moved(diagnostics: tuple[Diagnostic, ...], shift: int) -> tuple[Diagnostic, ...]:
    """`diagnostics` with those in architecture.yaml `shift` lines further."""
    return tuple(
        dataclasses.replace(d, line=d.line + shift) if d.file == ARCHITECTURE else d for d in diagnostics
    )


def wiring_key(upstream: Any, downstream: Any) -> str:
    """What a component's slice reads besides its entry's key: its resolved bindings."""
    return _ENCODER.encode([upstream, downstream])


def start(memo: ComponentMemo, ctx: Context) -> MemoRun | None:
    """The keys of this blueprint's components (module docstring), or None when the memo must
    stand aside: an anchor in architecture.yaml, or a document shape it does not know."""
    memo.hits = memo.computed = 0
    doc = ctx.arch_doc
    text = doc.text
    if has_anchor(text):
        return None
    listing = span(doc.values, ("components",))
    items = item_spans(doc.values, "components", len(ctx.arch.components))
    if listing is None or items is None:
        return None
    context = hashlib.sha256()
    for part in (text[: listing.start], text[listing.end :], ctx.deploy_doc.text):
        context.update(part.encode())
        context.update(b"\0")
    outside = context.digest()
    keys: list[Key] = []
    spans: list[tuple[int, int]] = []
    for i, (first, line, column, last, end_line) in enumerate(items):
        line_start = text.rfind("\n", 0, first) + 1
        keys.append((outside, i, column, text[line_start:first], text[first:last]))
        spans.append((line + 1, end_line + 1))
    return MemoRun(memo, keys, spans, outside)


# The memo of this process (the warm worker's, inherited by each child it forks).
PROCESS_MEMO = ComponentMemo()
