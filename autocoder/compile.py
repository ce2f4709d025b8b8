"""Stage 1C: blueprint files -> diagnostics and the IR.

The one entry point used by the CLI and by the doit tasks. It never raises for a user mistake:
everything wrong with the blueprints comes back as diagnostics, all of them in one run.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autocoder.analysis.components import check_components
from autocoder.analysis.context import Context
from autocoder.analysis.deployment import check_deployment
from autocoder.analysis.graph import check_bindings, check_capacity, check_graph
from autocoder.analysis.memo import ComponentMemo, Graph
from autocoder.analysis.memo import start as start_memo
from autocoder.analysis.schemas import resolve_schemas
from autocoder.blueprint.models import Architecture, Deployment
from autocoder.blueprint.recover import Broken, recover_architecture, recover_deployment
from autocoder.blueprint.source import SourceDoc, parse_yaml
from autocoder.blueprint.splice import parse_architecture, validated_items
from autocoder.blueprint.validate import validate_model
from autocoder.diagnostics import BlueprintError, Diagnostic
from autocoder.ir.build import build_ir
from autocoder.ir.models import IR, Slice
from autocoder.layout import ARCHITECTURE, DEPLOYMENT


@dataclass
class CompileResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    ir: IR | None = None
    slices: dict[str, Slice] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def ok(self, strict: bool = False) -> bool:
        return not (self.diagnostics if strict else self.errors)


def blueprint_paths(directory: Path) -> tuple[Path, Path]:
    return directory / ARCHITECTURE, directory / DEPLOYMENT


def compile_directory(directory: Path, *, strict: bool = False) -> CompileResult:
    """Read both blueprints in `directory` and compile them."""
    return compile_sources(*read_blueprints(directory), strict=strict)


def read_blueprints(directory: Path) -> tuple[bytes | OSError, bytes | OSError]:
    """The bytes of both blueprints (an OSError in place of a file that cannot be read)."""
    return tuple(_read(path) for path in blueprint_paths(directory))  # type: ignore[return-value]


def _read(path: Path) -> bytes | OSError:
    try:
        return path.read_bytes()
    except OSError as exc:
        return exc


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Compiling makes ~10^5 small objects and no garbage cycles worth collecting on the way;
    the cyclic collector's passes over them cost about a third of `check` at 500 components.
    The input is bounded (source.MAX_BYTES, MAX_NODES), so pausing it bounds nothing away."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def compile_sources(
    arch_raw: bytes | OSError,
    deploy_raw: bytes | OSError,
    *,
    strict: bool = False,
    memo: ComponentMemo | None = None,
) -> CompileResult:
    """Compile blueprint bytes (an OSError stands for a file that could not be read).

    memo: the per-component results of this process's last compile (analysis.memo), used
    where they apply and replaced by this compile's; the result is the same without it."""
    with _collector_paused():
        return _compile_sources(arch_raw, deploy_raw, strict, memo)


def _compile_sources(
    arch_raw: bytes | OSError, deploy_raw: bytes | OSError, strict: bool, memo: ComponentMemo | None
) -> CompileResult:
    result = CompileResult()
    docs: dict[str, SourceDoc] = {}
    models: dict[str, Any] = {}
    broken = Broken()
    for name, raw, model in ((ARCHITECTURE, arch_raw, Architecture), (DEPLOYMENT, deploy_raw, Deployment)):
        if isinstance(raw, OSError):
            result.diagnostics.append(_unreadable(name, raw))
            continue
        # with a memo, architecture.yaml's unchanged list items are not parsed or validated again
        parse_memo = memo.parse if memo is not None and model is Architecture else None
        try:
            docs[name] = (
                parse_yaml(raw, name) if parse_memo is None else parse_architecture(raw, name, parse_memo)
            )
        except BlueprintError as exc:
            result.diagnostics.extend(exc.diagnostics)
            continue
        items = None if parse_memo is None else validated_items(docs[name], parse_memo)
        instance, diags = validate_model(docs[name], model, items)
        result.diagnostics.extend(diags)
        if instance is None and not _version_problem(diags):
            # recover: analyse the parts that validate; `broken` says what was left out
            recover = recover_architecture if model is Architecture else recover_deployment
            instance = recover(docs[name].data, broken)
        if instance is not None:
            models[name] = instance
    if len(models) < 2:
        result.diagnostics.sort()
        return result
    ctx = Context(
        docs[ARCHITECTURE], docs[DEPLOYMENT], models[ARCHITECTURE], models[DEPLOYMENT], broken=broken
    )
    if memo is not None and not result.diagnostics and not broken.any:  # validated cleanly
        ctx.memo = start_memo(memo, ctx)
    merged, order, capacity = _analyse(ctx)
    result.diagnostics.extend(ctx.diagnostics)
    result.diagnostics.sort()
    if result.ok(strict) and order is not None and not broken.any:
        sources = [
            {"path": ARCHITECTURE, "sha256": hashlib.sha256(arch_raw).hexdigest()},  # type: ignore[arg-type]
            {"path": DEPLOYMENT, "sha256": hashlib.sha256(deploy_raw).hexdigest()},  # type: ignore[arg-type]
        ]
        result.ir, result.slices = build_ir(ctx, merged, order, capacity, sources)
    if ctx.memo is not None:
        ctx.memo.finish()
    return result


def _analyse(ctx: Context) -> tuple[dict, list[str] | None, list[dict]]:
    """The semantic passes, in dependency order; each reports into ctx.diagnostics."""
    resolve_schemas(ctx)
    check_components(ctx)
    merged = check_deployment(ctx)
    edges, order = _graph(ctx)
    capacity: list[dict] = []
    if order is not None and not ctx.broken.any:  # paths through a broken part are unknown
        rates = {n: float(m["capabilities"]["rate_limit"]["rate"]) for n, m in merged.items()}
        budgets = {n: float(m["budget"]["p95_ms"]) for n, m in merged.items()}
        capacity = _capacity(ctx, edges, order, rates, budgets)
    return merged, order, capacity


def _graph(ctx: Context) -> tuple[dict[str, set[str]], list[str] | None]:
    """check_bindings and check_graph: the edges and the order (None: a cycle). With the memo,
    the last compile's when they read the same (MemoRun.graph_key) and gave no diagnostic:
    after an edit of a component's logic, the graph of 500 components is not built again."""
    memo = ctx.memo
    key = memo.graph_key(ctx.arch.components) if memo is not None else None
    if memo is not None and key is not None:
        known = memo.known_graph(key)
        if known is not None:
            ctx.bindings = known.bindings
            return known.edges, known.order
    first = len(ctx.diagnostics)
    edges = check_bindings(ctx)
    order = check_graph(ctx, edges)
    if memo is not None and key is not None and order is not None and len(ctx.diagnostics) == first:
        memo.store_graph(Graph(key, ctx.bindings, edges, order))
    return edges, order


def _capacity(
    ctx: Context, edges: dict[str, set[str]], order: list[str], rates: dict, budgets: dict
) -> list[dict]:
    """check_capacity; with the memo, the last compile's estimates for the same graph, rates,
    budgets and policy when they gave no diagnostic."""
    memo = ctx.memo
    graph = memo.graph if memo is not None else None
    if memo is None or graph is None:
        return check_capacity(ctx, edges, order, rates, budgets)
    key = (graph.key, tuple(rates.items()), tuple(budgets.items()))
    known = memo.capacity(key)
    if known is not None:
        return known
    first = len(ctx.diagnostics)
    estimates = check_capacity(ctx, edges, order, rates, budgets)
    if len(ctx.diagnostics) == first:
        memo.store_capacity(key, estimates)
    return estimates


def _version_problem(diags: list[Diagnostic]) -> bool:
    """Whether validation stopped at schema_version (then nothing else can be trusted)."""
    return any(d.code in ("AC011", "AC012", "AC014") and "schema_version" in d.message for d in diags)


def _unreadable(name: str, exc: OSError) -> Diagnostic:
    if isinstance(exc, FileNotFoundError):
        return Diagnostic(
            name,
            1,
            1,
            "AC004",
            f"{name} not found",
            expected=f"{name} in the blueprint directory",
            fix="create it; `autocoder init DIR` writes a starter",
        )
    return Diagnostic(
        name, 1, 1, "AC004", f"cannot read {name}: {exc.strerror}", fix="check the file's permissions"
    )
