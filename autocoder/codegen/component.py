"""One component's generated files, from its IR slice: its module and its tests.

Every decision is made here, in Python: the models, the logic functions (from the compiled
expressions in the IR), the spec literal, the test cases. The kind's template only prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autocoder.codegen.literals import pascal, pyliteral, wrapped_literal
from autocoder.codegen.paths import COMPONENT_TEMPLATE, COMPONENT_TEST_TEMPLATE, module_path, test_path
from autocoder.codegen.provider import Provider, require_served
from autocoder.codegen.render import format_python, render
from autocoder.codegen.strategies import message_strategy, simplest_message
from autocoder.ir.models import (
    AggregatorIR,
    ComponentIR,
    FilterIR,
    RouterIR,
    SinkIR,
    Slice,
    SourceIR,
    StoreIR,
    TransformerIR,
    dump,
)

KIND_CLASSES = {
    "source": "Source",
    "api_endpoint": "ApiEndpoint",
    "transformer": "Transformer",
    "filter": "Filter",
    "router": "Router",
    "aggregator": "Aggregator",
    "store": "Store",
    "sink": "Sink",
    "custom": "Custom",
}


@dataclass(frozen=True)
class Function:
    """A logic function: `def name(params) -> returns:` then body lines (already Python)."""

    name: str
    params: str
    returns: str
    body: tuple[str, ...]


def generate_component(slice_: Slice, provider: Provider, logic: Function | None = None) -> dict[str, str]:
    """{relative path under generated/src: formatted source} for one component. `logic`: its
    free-form logic method, already written (and checked) by an LLM provider (autocoder.llm)."""
    return format_python(render_component(slice_, provider, logic))


def render_component(slice_: Slice, provider: Provider, logic: Function | None = None) -> dict[str, str]:
    """The component's files as rendered, before formatting: a batch of components is
    formatted in one ruff run (codegen/batching.py)."""
    comp = slice_.component
    if logic is None:
        require_served(provider, comp)
    system = slice_.system
    context = module_context(slice_, logic)
    module = render(COMPONENT_TEMPLATE, **context)
    tests = render(COMPONENT_TEST_TEMPLATE, **test_context(slice_, context))
    return {module_path(system, comp.name): module, test_path(comp.name): tests}


def module_context(slice_: Slice, logic: Function | None = None) -> dict[str, Any]:
    comp = slice_.component
    functions = [logic] if logic is not None else logic_functions(slice_)
    spec = {
        "capabilities": dump(comp.capabilities),
        "budget": dump(comp.budget),
        "config": comp.config if isinstance(comp.config, dict) else dump(comp.config),
        "security": dump(comp.security),
    }
    ports = sorted({*comp.inputs.values(), *comp.outputs.values()})
    attributes = _attributes(comp)
    return {
        "system": slice_.system,
        "component": comp,
        "class_name": pascal(comp.name),
        "base_class": KIND_CLASSES[comp.kind],
        "typing_imports": ["Any", "ClassVar"] if any("Any" in a[0] for a in attributes) else ["ClassVar"],
        "model_imports": ports,
        "inputs": sorted(comp.inputs.items()),
        "outputs": sorted(comp.outputs.items()),
        "spec": pyliteral(spec),
        "functions": functions,
        "attributes": attributes,
        "description": wrapped_literal(comp.description),
    }


def logic_functions(slice_: Slice) -> list[Function]:
    comp = slice_.component
    if isinstance(comp, TransformerIR) and comp.logic is not None:
        (out_schema,) = comp.outputs.values()
        (in_schema,) = comp.inputs.values()
        out_fields = slice_.schemas[out_schema].fields
        in_fields = slice_.schemas[in_schema].fields
        assigned = comp.logic.set
        carry = tuple(sorted(f for f in out_fields if f in in_fields and f not in assigned))
        body = [f"out = {{key: msg[key] for key in {pyliteral(list(carry))} if key in msg}}"]
        body += [f"out[{pyliteral(name)}] = {expr.python}" for name, expr in sorted(assigned.items())]
        return [Function("transform", "msg: Message", "Message", (*body, "return out"))]
    if isinstance(comp, SourceIR) and comp.logic is not None:
        body = ["msg: Message = {'seq': seq, 'ts': ts}"]
        body += [
            "return {"
            + ", ".join(f"{pyliteral(n)}: {e.python}" for n, e in sorted(comp.logic.set.items()))
            + "}"
        ]
        return [Function("generate", "seq: int, ts: float", "Message", tuple(body))]
    if isinstance(comp, FilterIR) and comp.logic is not None:
        return [Function("where", "msg: Message", "bool", (f"return bool({comp.logic.where.python})",))]
    if isinstance(comp, RouterIR) and comp.logic is not None:
        body = []
        for route in comp.logic.routes:
            body += [f"if {route.when.python}:", f"    return {pyliteral(route.to)}"]
        body.append(f"return {pyliteral(comp.logic.default)}")
        return [Function("route", "msg: Message", "str | None", tuple(body))]
    if isinstance(comp, AggregatorIR) and comp.logic is not None:
        functions = [Function("key", "msg: Message", "Any", (f"return {comp.logic.key.python}",))]
        for name, agg in sorted(comp.logic.aggregate.items()):
            if agg.argument is not None:
                functions.append(
                    Function(f"{name}_value", "msg: Message", "Any", (f"return {agg.argument.python}",))
                )
        return functions
    return []


def _attributes(comp: ComponentIR) -> list[tuple[str, str]]:
    """Class attributes besides the logic methods ("name: annotation", value literal)."""
    if not isinstance(comp, AggregatorIR) or comp.logic is None:
        return []
    aggregates = {
        n: [a.function, f"{n}_value" if a.argument else None] for n, a in sorted(comp.logic.aggregate.items())
    }
    return [
        ("key_field: ClassVar[str | None]", pyliteral(comp.logic.key_field)),
        ("aggregates: ClassVar[dict[str, Any]]", pyliteral(aggregates)),
    ]


# --------------------------------------------------------------------------- tests


def test_context(slice_: Slice, module: dict[str, Any]) -> dict[str, Any]:
    """What the component's tests check, and the imports exactly those checks use."""
    comp = slice_.component
    kind = comp.kind
    examples = []
    for i, example in enumerate(comp.examples):
        port = example.port or next(iter(sorted(comp.inputs)), None)
        to = example.to or (next(iter(comp.outputs)) if len(comp.outputs) == 1 else None)
        outcome = (
            "rejected"
            if example.rejected
            else "dropped"
            if example.dropped
            else ("out" if example.out is not None else "accepted")
        )
        examples.append(
            {
                "id": f"example_{i}",
                "port": port,
                "input": example.input,
                "out": example.out,
                "to": to,
                "outcome": outcome,
            }
        )
    webhook = isinstance(comp, SinkIR) and comp.config.target == "webhook"
    properties = []
    if not webhook:
        for port, schema in sorted(comp.inputs.items()):
            properties.append(
                {"port": port, "strategy": message_strategy(slice_.schemas[schema].fields).source()}
            )
    outputs_strategies = []
    if kind == "api_endpoint":
        outputs_strategies = [
            (port, message_strategy(slice_.schemas[schema].fields).source())
            for port, schema in sorted(comp.outputs.items())
        ]
    helpers = {"run_once"} if examples or properties else set()
    if kind == "store" and (properties or any(e["outcome"] == "accepted" for e in examples)):
        helpers.add("stored")
    if kind == "sink" and any(e["outcome"] == "accepted" for e in examples):
        helpers.add("delivered")
    if kind == "aggregator" and properties:
        helpers |= {"run_many", "run_across_restart"}
    if kind == "source":
        helpers.add("generated")
    webhook_port = next(iter(sorted(comp.inputs)), None)
    if webhook:
        helpers.add("webhook_requests")
    messages = set()
    if properties:
        messages |= {"OutputInvalid", "Rejected"}
    if any(e["outcome"] == "rejected" for e in examples) or (kind == "aggregator" and properties):
        messages.add("Rejected")
    return {
        "system": slice_.system,
        "component": comp,
        "class_name": module["class_name"],
        "examples": pyliteral(examples),
        "has_examples": bool(examples),
        "properties": properties,
        "outputs_strategies": outputs_strategies,
        "uses_hypothesis": bool(properties or outputs_strategies),
        "need_pytest": bool(examples) or (kind in ("aggregator", "store") and bool(properties)),
        "message_imports": sorted(messages),
        "helpers": sorted(helpers),
        "accepted_means": {"store": "the record reads back", "sink": "it was delivered where it goes"}.get(
            kind, "something was emitted"
        ),
        "store_key": comp.config.key if isinstance(comp, StoreIR) else None,
        "webhook": webhook,
        "webhook_port": webhook_port,
        "webhook_sample": pyliteral(
            simplest_message(slice_.schemas[comp.inputs[webhook_port]].fields)
            if webhook and webhook_port is not None
            else None
        ),
    }
