"""Bindings and the component graph: wiring, cycles, reachability and a capacity estimate."""

from __future__ import annotations

import graphlib
from typing import Any

from autocoder.analysis.components import reads_unknown, report_expression_error
from autocoder.analysis.context import Context
from autocoder.analysis.exprmemo import compiled_expression
from autocoder.analysis.schemas import extends_or_equals, field_types
from autocoder.diagnostics import did_you_mean, one_of
from autocoder.expr.compiler import ExprError

INGRESS_KINDS = ("api_endpoint", "source")
MAX_CYCLES_REPORTED = 20


def check_bindings(ctx: Context) -> dict[str, set[str]]:
    """Resolve every binding; report wiring errors. Returns the component graph (edges)."""
    comps = {c.name: c for c in reversed(ctx.arch.components)}
    edges: dict[str, set[str]] = {name: set() for name in comps}
    bound_in: dict[tuple[str, str], int] = {}
    bound_out: set[tuple[str, str]] = set()
    for i, binding in enumerate(ctx.arch.bindings):
        bpath = ("bindings", i)
        source = _resolve(ctx, (*bpath, "from"), binding.source, "outputs", comps)
        targets = []
        for j, ref in enumerate(binding.targets):
            tpath = (*bpath, "to") if isinstance(binding.to, str) else (*bpath, "to", j)
            target = _resolve(ctx, tpath, ref, "inputs", comps)
            if target is None:
                continue
            if target in bound_in:
                ctx.report(
                    tpath,
                    "AC105",
                    f"input {ref} is already bound by bindings[{bound_in[target]}]",
                    expected="one binding per input port",
                    fix="merge the producers with a transformer, or give the component another input",
                )
                continue
            bound_in[target] = i
            targets.append((target, tpath))
        if source is None:
            continue
        bound_out.add(source)
        out_schema = comps[source[0]].outputs[source[1]]
        condition = _condition(ctx, bpath, binding.condition, out_schema)
        resolved_to = []
        for (comp, port), tpath in targets:
            in_schema = comps[comp].inputs[port]
            resolved = out_schema in ctx.schemas and in_schema in ctx.schemas
            if resolved and not extends_or_equals(ctx.schemas, out_schema, in_schema):
                ctx.report(
                    tpath,
                    "AC106",
                    f"{binding.source} sends {out_schema} but {comp}.{port} expects {in_schema}",
                    expected=f"{in_schema} or a schema that extends it",
                    fix=f"make {out_schema} extend {in_schema}, or insert a transformer",
                )
            edges[source[0]].add(comp)
            resolved_to.append({"component": comp, "port": port})
        ctx.bindings.append(
            {
                "from": {"component": source[0], "port": source[1]},
                "to": resolved_to,
                "condition": condition,
                "schema": out_schema,
            }
        )
    _check_unbound(ctx, bound_in, bound_out)
    return edges


def _resolve(ctx: Context, path: tuple, ref: str, direction: str, comps: dict) -> tuple[str, str] | None:
    name, port = ref.split(".", 1)
    if name not in comps and ctx.broken.component(name):
        return None  # the component failed validation: reported there
    if name not in comps:
        ctx.report(
            path,
            "AC100",
            f"unknown component '{name}' in {ref}",
            expected=one_of(comps),
            fix=did_you_mean(name, comps) or "declare the component under components",
        )
        return None
    comp = comps[name]
    ports = getattr(comp, direction)
    if port in ports:
        return name, port
    other = "inputs" if direction == "outputs" else "outputs"
    if port in getattr(comp, other):
        side = "from" if direction == "outputs" else "to"
        ctx.report(
            path,
            "AC101",
            f"'{port}' is an {other[:-1]} port of {name}; `{side}:` takes an {direction[:-1]} port",
            expected=one_of(f"{name}.{p}" for p in ports),
            fix="bindings go from an output port to input ports",
        )
    else:
        ctx.report(
            path,
            "AC101",
            f"'{name}' has no {direction[:-1]} port '{port}'",
            expected=one_of(f"{name}.{p}" for p in ports),
            fix=did_you_mean(port, ports) or f"declare it under {name}'s {direction}",
        )
    return None


def _condition(ctx: Context, bpath: tuple, text: str | None, schema: str) -> dict | None:
    if text is None or schema not in ctx.schemas:
        return None  # an unresolved schema is reported with its component
    try:
        compiled = compiled_expression(text, field_types(ctx.schemas[schema]), want="boolean")
    except ExprError as exc:
        if not reads_unknown(text, ctx.unknown_fields.get(schema, frozenset())):
            report_expression_error(ctx, (*bpath, "condition"), exc)
        return None
    return compiled.to_json()


def _check_unbound(ctx: Context, bound_in: dict, bound_out: set) -> None:
    if ctx.broken.unknown_binding:
        return  # a binding failed validation and which ports it binds is unknown
    seen: set[str] = set()
    for i, comp in enumerate(ctx.arch.components):
        if comp.name in seen:
            continue
        seen.add(comp.name)
        for port in comp.inputs:
            if (comp.name, port) not in bound_in and f"{comp.name}.{port}" not in ctx.broken.bound_ports:
                ctx.report(
                    ("components", i, "inputs", port),
                    "AC103",
                    f"input {comp.name}.{port} is bound to nothing",
                    key=True,
                    expected=f"a binding with `to: {comp.name}.{port}`",
                    fix=f"add `- {{from: <component>.<port>, to: {comp.name}.{port}}}` under bindings",
                )
        for port in comp.outputs:
            if (comp.name, port) not in bound_out and f"{comp.name}.{port}" not in ctx.broken.bound_ports:
                ctx.report(
                    ("components", i, "outputs", port),
                    "AC104",
                    f"output {comp.name}.{port} is bound to nothing",
                    key=True,
                    fix=f"bind it (`from: {comp.name}.{port}`) or remove the port",
                )


# --------------------------------------------------------------------------- graph checks


def check_graph(ctx: Context, edges: dict[str, set[str]]) -> list[str] | None:
    """Cycles and reachability; returns a topological order, or None when there are cycles."""
    index = ctx.component_index()
    remaining = {k: set(v) for k, v in edges.items()}
    cycles = 0
    order = _toposort(remaining)
    while order is None and cycles < MAX_CYCLES_REPORTED:
        cycle = _find_cycle(remaining)
        first = min(cycle, key=index.__getitem__)
        k = cycle.index(first)
        ring = cycle[k:] + cycle[:k]
        ctx.report(
            ("components", index[first], "name"),
            "AC107",
            "cycle: " + " -> ".join([*ring, first]),
            expected="an acyclic flow from ingress to sinks",
            fix=f"remove one of the bindings on the cycle, e.g. {ring[-1]} -> {first}",
        )
        remaining[ring[-1]].discard(first)  # break it to find the next one
        cycles += 1
        order = _toposort(remaining)
    if not ctx.broken.any_arch:  # a broken component or binding may be the missing link
        _check_reachable(ctx, edges, index)
    return order if cycles == 0 else None


def _find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle in data-flow order (the graph is known to have one)."""
    sorter = graphlib.TopologicalSorter({k: sorted(v) for k, v in edges.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each node before one of its "predecessors", which here are the
        # nodes it sends to: reversed, the list follows the data flow
        return list(reversed(exc.args[1][1:]))
    raise AssertionError("no cycle found")


def _toposort(edges: dict[str, set[str]]) -> list[str] | None:
    preds: dict[str, list[str]] = {name: [] for name in edges}
    for src in edges:
        for dst in sorted(edges[src]):
            preds[dst].append(src)
    sorter = graphlib.TopologicalSorter({k: sorted(v) for k, v in preds.items()})
    try:
        return list(sorter.static_order())
    except graphlib.CycleError:
        return None


def _check_reachable(ctx: Context, edges: dict[str, set[str]], index: dict[str, int]) -> None:
    kinds = {c.name: c for c in ctx.arch.components}
    frontier = [
        n for n, c in kinds.items() if c.kind in INGRESS_KINDS or (c.kind == "custom" and not c.inputs)
    ]
    reached = set(frontier)
    while frontier:
        node = frontier.pop()
        for nxt in edges.get(node, ()):
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    bound_everywhere = _fully_bound(ctx)
    for name in index:
        if name not in reached and name in bound_everywhere:
            ctx.report(
                ("components", index[name], "name"),
                "AC108",
                f"component '{name}' is not reachable from any ingress or source",
                expected="a path from an api_endpoint or source",
                fix="bind it downstream of an ingress, or remove it",
            )


def _fully_bound(ctx: Context) -> set[str]:
    """Components whose every input is bound (others already have AC103)."""
    bound = {(t["component"], t["port"]) for b in ctx.bindings for t in b["to"]}
    return {c.name for c in ctx.arch.components if all((c.name, p) in bound for p in c.inputs)}


# --------------------------------------------------------------------------- capacity


def check_capacity(
    ctx: Context,
    edges: dict[str, set[str]],
    order: list[str],
    rates: dict[str, float],
    budgets: dict[str, float],
) -> list[dict[str, Any]]:
    """AC112: the weakest path by declared rate limit and the slowest by summed budgets.

    Returns the per-terminal path estimates (they go into the IR as compilation metadata).
    """
    perf = ctx.arch.policy.performance
    preds: dict[str, list[str]] = {n: [] for n in order}
    for src, dsts in edges.items():
        for dst in dsts:
            preds[dst].append(src)
    weakest: dict[str, tuple[float, list[str]]] = {}
    slowest: dict[str, tuple[float, list[str]]] = {}
    for node in order:
        if not preds[node]:
            weakest[node] = (rates[node], [node])
            slowest[node] = (budgets[node], [node])
            continue
        p = min(sorted(preds[node]), key=lambda x: weakest[x][0])
        weakest[node] = (min(weakest[p][0], rates[node]), [*weakest[p][1], node])
        q = max(sorted(preds[node]), key=lambda x: slowest[x][0])
        slowest[node] = (slowest[q][0] + budgets[node], [*slowest[q][1], node])
    terminals = [n for n in order if not edges[n]]
    estimates: list[dict[str, Any]] = [
        {
            "terminal": t,
            "min_rate_rps": weakest[t][0],
            "rate_path": weakest[t][1],
            "p95_ms": round(slowest[t][0], 6),
            "latency_path": slowest[t][1],
        }
        for t in sorted(terminals)
    ]
    if perf.throughput_rps is not None and estimates:
        worst = min(estimates, key=lambda e: e["min_rate_rps"])
        if worst["min_rate_rps"] < perf.throughput_rps:
            bottleneck = min(worst["rate_path"], key=lambda n: rates[n])
            ctx.report(
                ("policy", "performance", "throughput_rps"),
                "AC112",
                f"path {' -> '.join(worst['rate_path'])} is limited to {worst['min_rate_rps']:g} msg/s "
                f"by the rate limit of '{bottleneck}', below throughput_rps {perf.throughput_rps:g}",
                expected=f"rate limits of at least {perf.throughput_rps:g} along every path",
                fix=f"raise {bottleneck}'s rate_limit (or its deployment override), or lower the target",
            )
    if perf.p95_ms is not None and estimates:
        worst = max(estimates, key=lambda e: e["p95_ms"])
        if worst["p95_ms"] > perf.p95_ms:
            ctx.report(
                ("policy", "performance", "p95_ms"),
                "AC112",
                f"path {' -> '.join(worst['latency_path'])} sums to {worst['p95_ms']:g} ms of "
                f"per-message budgets, above p95_ms {perf.p95_ms:g}",
                expected=f"budgets summing to at most {perf.p95_ms:g} ms along every path",
                fix="tighten component budgets (budget.p95_ms) on that path, or relax the target",
            )
    return estimates
