"""Assemble the IR from a successfully analysed blueprint.

The analysis passes leave JSON-ready pieces (compiled expressions, merged capabilities); they
are put together here and validated once into the typed IR models (autocoder.ir.models), which
every later stage reads. The fingerprint is hashed over the JSON form, the form on disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autocoder import __version__
from autocoder.canonical import content_hash
from autocoder.ir.models import IR, IR_VERSION, BindingIR, SchemaIR, Slice

if TYPE_CHECKING:
    from autocoder.analysis.context import Context


def build_ir(
    ctx: Context,
    merged: dict[str, dict[str, Any]],
    order: list[str],
    capacity: list[dict[str, Any]],
    sources: list[dict[str, str]],
) -> tuple[IR, dict[str, Slice]]:
    """Returns (ir, slices by component name)."""
    arch = ctx.arch
    graph = ctx.memo.graph if ctx.memo is not None else None
    # the memo's graph (analysis.memo.Graph) keeps what is derived here from its bindings
    if graph is None or graph.wiring is None:
        upstream, downstream = _wiring(ctx)
        if graph is not None:
            graph.wiring = (upstream, downstream)
    else:
        upstream, downstream = graph.wiring
    if graph is None or graph.binding_models is None:
        bindings = [BindingIR.model_validate(b) for b in ctx.bindings]
        if graph is not None:
            graph.binding_models = bindings
    else:
        bindings = graph.binding_models
    # each schema and component is validated once: slices and the IR share those models
    schemas = {name: SchemaIR.model_validate(data) for name, data in ctx.schemas.items()}
    security_policy = arch.policy.security
    slices: dict[str, Slice] = {}
    names = [comp.name for comp in arch.components]
    wirings = ctx.memo.wirings(ctx.bindings, upstream, downstream, names) if ctx.memo is not None else {}
    for i, comp in enumerate(arch.components):
        wiring = wirings.get(comp.name, "")
        memoised = ctx.memo.slice(i, wiring) if ctx.memo is not None else None
        if memoised is not None:
            slices[comp.name] = memoised
            continue
        component = _component(ctx, comp, merged[comp.name], upstream, downstream)
        used = component["schemas"]
        slice_ = {
            "ir_version": IR_VERSION,
            "system": arch.system.name,
            "component": component,
            "schemas": {name: ctx.schemas[name] for name in used},
            "security_policy": security_policy.model_dump(mode="json"),
        }
        component["fingerprint"] = ""
        component["fingerprint"] = content_hash(slice_)  # over the JSON form, as on disk
        slices[comp.name] = Slice.model_validate(
            {**slice_, "schemas": {name: schemas[name] for name in used}, "security_policy": security_policy}
        )
        if ctx.memo is not None:
            ctx.memo.store_slice(i, wiring, slices[comp.name])
    ir = IR.model_validate(
        {
            "ir_version": IR_VERSION,
            "generator": {"name": "autocoder", "version": __version__},
            "system": arch.system.model_dump(mode="json"),
            "schemas": schemas,
            "components": [slices[comp.name].component for comp in arch.components],
            "bindings": bindings,
            "topology": order,
            "policy": arch.policy,
            "deployment": _deployment(ctx),
            "metadata": {
                "sources": sources,
                "warnings": [d.to_json() for d in sorted(ctx.diagnostics)],
                "capacity": capacity,
            },
        }
    )
    return ir, slices


def _wiring(ctx: Context) -> tuple[dict[str, list], dict[str, list]]:
    upstream: dict[str, list] = {}
    downstream: dict[str, list] = {}
    for b in ctx.bindings:
        src = b["from"]
        downstream.setdefault(src["component"], []).append(
            {"port": src["port"], "to": b["to"], "condition": b["condition"]}
        )
        for target in b["to"]:
            upstream.setdefault(target["component"], []).append(
                {"port": target["port"], "from": src, "condition": b["condition"]}
            )
    return upstream, downstream


def _component(ctx: Context, comp: Any, merged: dict[str, Any], upstream: dict, downstream: dict) -> dict:
    logic = ctx.logic.get(comp.name)
    if logic is not None:
        logic_source = "declarative"
    elif comp.kind in ("api_endpoint", "store", "sink"):
        logic_source = "builtin"
    else:
        logic_source = "llm"
    config = (
        comp.config if isinstance(comp.config, dict) else comp.config.model_dump(mode="json", by_alias=True)
    )
    deployment = {"replicas": merged["replicas"], "resources": merged["resources"]}
    if comp.kind == "store":
        deployment["store"] = ctx.deploy.store.model_dump(mode="json")
    return {
        "name": comp.name,
        "kind": comp.kind,
        "description": comp.description,
        "inputs": dict(comp.inputs),
        "outputs": dict(comp.outputs),
        "config": config,
        "security": comp.security.model_dump(mode="json"),
        "capabilities": merged["capabilities"],
        "budget": merged["budget"],
        "logic": logic,
        "logic_source": logic_source,
        "examples": [e.model_dump(mode="json", by_alias=True) for e in comp.examples],
        "suppressions": [s.model_dump(mode="json") for s in comp.suppressions],
        "upstream": sorted(upstream.get(comp.name, []), key=lambda u: (u["port"], u["from"]["component"])),
        "downstream": sorted(downstream.get(comp.name, []), key=lambda d: d["port"]),
        "deployment": deployment,
        "schemas": _schemas_used(ctx, comp),
    }


def _schemas_used(ctx: Context, comp: Any) -> list[str]:
    names: set[str] = set()
    for schema in [*comp.inputs.values(), *comp.outputs.values()]:
        names.add(schema)
        names.update(ctx.schemas[schema]["ancestors"])
    return sorted(names)


def _deployment(ctx: Context) -> dict[str, Any]:
    dep = ctx.deploy.model_dump(mode="json", by_alias=True)
    for key in ("replicas", "resources", "component_overrides"):
        dep.pop(key)  # merged into each component
    dep.pop("build", None)  # the build's own settings (run-cache URL): no part of the system
    return dep
