"""Per-component checks: ports for the kind, logic compiled and typed, config, examples."""

from __future__ import annotations

import ast
from typing import Any

from autocoder.analysis.context import Context
from autocoder.analysis.exprmemo import compiled_expression
from autocoder.analysis.messages import message_problems
from autocoder.analysis.schemas import extends_or_equals, field_types
from autocoder.blueprint import models as m
from autocoder.diagnostics import Diagnostic, did_you_mean, one_of
from autocoder.expr.compiler import Compiled, ExprError, compile_aggregate
from autocoder.expr.types import INTEGER, NUMBER, Type, assignable, type_of_field

# kind -> (inputs allowed (min, max), outputs allowed (min, max)); None = unbounded
PORT_SHAPES: dict[str, tuple[tuple[int, int | None], tuple[int, int | None]]] = {
    "source": ((0, 0), (1, 1)),
    "api_endpoint": ((0, 0), (1, None)),
    "transformer": ((1, 1), (1, 1)),
    "filter": ((1, 1), (1, 1)),
    "router": ((1, 1), (1, None)),
    "aggregator": ((1, 1), (1, 1)),
    "store": ((1, 1), (0, 0)),
    "sink": ((1, 1), (0, 0)),
    "custom": ((0, None), (0, None)),
}
LOGIC_KINDS = {"source", "transformer", "filter", "router", "aggregator"}
SOURCE_VARIABLES = {"seq": INTEGER, "ts": NUMBER}
AGGREGATOR_EXTRAS = ("window_start", "window_end")


def check_components(ctx: Context) -> None:
    seen: dict[str, int] = {}
    for i, comp in enumerate(ctx.arch.components):
        path = ("components", i)
        if comp.name in seen:
            ctx.report(
                (*path, "name"),
                "AC113",
                f"component name '{comp.name}' is already used by components[{seen[comp.name]}]",
                fix="give every component a unique name",
            )
            continue
        seen[comp.name] = i
        memoised = ctx.memo.analysis(i) if ctx.memo is not None else None
        if memoised is not None:
            ctx.diagnostics.extend(memoised.diagnostics)
            if memoised.ok:
                ctx.logic[comp.name] = memoised.logic
            continue
        first = len(ctx.diagnostics)
        ok = _check_component(ctx, path, comp)
        if ctx.memo is not None:
            ctx.memo.store_analysis(i, ctx.diagnostics[first:], ok, ctx.logic.get(comp.name))


def _check_component(ctx: Context, path: tuple, comp: Any) -> bool:
    """The checks that read only the component, its schemas, the policy and deployment.yaml
    (what analysis.memo keys on); False when its ports are wrong (then nothing else of it is
    checked)."""
    if not _check_ports(ctx, path, comp):
        return False
    ports = [*comp.inputs.values(), *comp.outputs.values()]
    ctx.unknown_names = frozenset(f for s in ports for f in ctx.unknown_fields.get(s, ()))
    _check_capabilities(ctx, path, comp)
    _check_security(ctx, path, comp)
    _check_config(ctx, path, comp)
    ctx.logic[comp.name] = _compile_logic(ctx, path, comp)
    _check_examples(ctx, path, comp)
    ctx.unknown_names = frozenset()
    return True


def reads_unknown(text: str, unknown: frozenset[str]) -> bool:
    """Whether expression `text` reads a field whose spec failed validation: its errors then
    depend on the broken part and are not reported (the field's own error is)."""
    if not unknown:
        return False
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return False  # a syntax error is the expression's own
    return any(isinstance(node, ast.Name) and node.id in unknown for node in ast.walk(tree))


# --------------------------------------------------------------------------- ports


def _check_ports(ctx: Context, path: tuple, comp: Any) -> bool:
    ok = True
    for direction in ("inputs", "outputs"):
        for port, schema in getattr(comp, direction).items():
            if schema not in ctx.schemas and ctx.broken.schema(schema):
                ok = False  # the schema failed validation: reported there
            elif schema not in ctx.schemas:
                known = ctx.arch.schemas.keys()
                ctx.report(
                    (*path, direction, port),
                    "AC102",
                    f"unknown schema '{schema}' for port '{port}'",
                    expected=one_of(known),
                    fix=did_you_mean(schema, known) or "declare it under schemas",
                )
                ok = False
    (in_lo, in_hi), (out_lo, out_hi) = PORT_SHAPES[comp.kind]
    for direction, lo, hi in (("inputs", in_lo, in_hi), ("outputs", out_lo, out_hi)):
        count = len(getattr(comp, direction))
        if count < lo or (hi is not None and count > hi):
            want = _count_text(lo, hi)
            ctx.report(
                (*path, direction) if count else (*path, "kind"),
                "AC115",
                f"a {comp.kind} has {want} {direction[:-1]} port(s), this one has {count}",
                expected=f"{want} {direction}",
                fix=_port_fix(comp.kind, direction, lo),
            )
            ok = False
    if ok and comp.kind == "filter":
        (in_schema,), (out_schema,) = comp.inputs.values(), comp.outputs.values()
        if not extends_or_equals(ctx.schemas, in_schema, out_schema):
            ctx.report(
                (*path, "outputs"),
                "AC115",
                f"a filter passes messages through: output schema {out_schema} must be "
                f"its input schema {in_schema} or a base of it",
                fix=f"use {in_schema} for the output",
            )
            ok = False
    if ok and comp.kind == "router":
        (in_schema,) = comp.inputs.values()
        for port, schema in comp.outputs.items():
            if not extends_or_equals(ctx.schemas, in_schema, schema):
                ctx.report(
                    (*path, "outputs", port),
                    "AC115",
                    f"a router forwards messages: output '{port}' schema {schema} must be "
                    f"its input schema {in_schema} or a base of it",
                    fix=f"use {in_schema}",
                )
                ok = False
    return ok


def _count_text(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo}"
    return f"exactly {lo}" if lo == hi else f"{lo} to {hi}"


def _port_fix(kind: str, direction: str, lo: int) -> str:
    if lo == 0:
        return f"remove the {direction} (a {kind} has none)"
    return f"declare {direction}: {{{'in' if direction == 'inputs' else 'out'}: SchemaName}}"


# --------------------------------------------------------------------------- capabilities, security


def _check_capabilities(ctx: Context, path: tuple, comp: Any) -> None:
    for kernel in ("schema_validation", "metrics"):
        if getattr(comp.capabilities, kernel) is False:
            ctx.report(
                (*path, "capabilities", kernel),
                "AC117",
                f"kernel capability {kernel} is disabled on '{comp.name}'",
                expected="true (every component gets the kernel)",
                fix=f"remove `{kernel}: false`",
            )


def _check_security(ctx: Context, path: tuple, comp: Any) -> None:
    if "policy" in ctx.broken.arch_sections:
        return  # the policy failed validation: its defaults are not what was meant
    policy = ctx.arch.policy.security
    if comp.kind == "api_endpoint" and policy.require_auth_on_ingress and comp.security.auth == "none":
        ctx.report(
            (*path, "name"),
            "AC109",
            f"ingress '{comp.name}' has no auth",
            expected="security.auth other than none (policy.security.require_auth_on_ingress)",
            fix="add `security: {auth: api_key}` to the component",
        )


# --------------------------------------------------------------------------- config


def _check_config(ctx: Context, path: tuple, comp: Any) -> None:
    cpath = (*path, "config")
    if comp.kind == "api_endpoint":
        seen: set[tuple[str, str]] = set()
        for j, route in enumerate(comp.config.routes):
            if route.emit not in comp.outputs:
                ctx.report(
                    (*cpath, "routes", j, "emit"),
                    "AC101",
                    f"route emits to unknown output port '{route.emit}'",
                    expected=one_of(comp.outputs),
                    fix=did_you_mean(route.emit, comp.outputs) or "declare the port under outputs",
                )
            if (route.method, route.path) in seen:
                ctx.report(
                    (*cpath, "routes", j, "path"),
                    "AC113",
                    f"route {route.method} {route.path} is declared twice",
                    fix="remove one",
                )
            seen.add((route.method, route.path))
    elif comp.kind == "store" and comp.inputs:
        (schema,) = comp.inputs.values()
        fields = ctx.schemas[schema]["fields"]
        key = comp.config.key
        if key not in fields and key in ctx.unknown_names:
            pass  # a field that failed validation: reported there
        elif key not in fields:
            ctx.report(
                (*cpath, "key"),
                "AC120",
                f"store key '{key}' is not a field of {schema}",
                expected=one_of(fields),
                fix=did_you_mean(key, fields) or "use a field of the input",
            )
        elif fields[key]["type"] not in ("string", "integer") or not fields[key].get("required", True):
            ctx.report(
                (*cpath, "key"),
                "AC120",
                f"store key '{key}' is a {fields[key]['type']} field",
                expected="a required string or integer field",
                fix="key the store by an id field",
            )
    elif comp.kind == "sink":
        target = comp.config.target
        if target == "file" and not comp.config.path:
            ctx.report((*cpath, "target"), "AC120", "a file sink needs a path", fix="add `path: out.jsonl`")
        if target == "webhook" and not comp.config.url:
            ctx.report(
                (*cpath, "target"), "AC120", "a webhook sink needs a url", fix="add `url: https://...`"
            )


# --------------------------------------------------------------------------- logic


def _compile_logic(ctx: Context, path: tuple, comp: Any) -> dict[str, Any] | None:
    """Compile the component's declarative logic; None when it has none (LLM or built-in)."""
    logic = getattr(comp, "logic", None)
    lpath = (*path, "logic")
    if logic is None:
        if comp.kind in LOGIC_KINDS | {"custom"} and not comp.description:
            ctx.report(
                (*path, "name"),
                "AC116",
                f"{comp.kind} '{comp.name}' has neither logic nor a description",
                expected=_logic_example(comp.kind),
                fix="add declarative `logic`, or a `description` for the LLM provider",
            )
        return None
    env = _input_env(ctx, comp)
    try:
        if isinstance(logic, m.SetLogic):
            return {"set": _compile_set(ctx, lpath, comp, logic, env)}
        if isinstance(logic, m.WhereLogic):
            return {"where": _expr(ctx, (*lpath, "where"), logic.where, env, "boolean").to_json()}
        if isinstance(logic, m.RouterLogic):
            return _compile_routes(ctx, lpath, comp, logic, env)
        if isinstance(logic, m.AggregateLogic):
            return _compile_aggregate(ctx, lpath, comp, logic, env)
    except _Failed:
        return None
    raise AssertionError(f"unhandled logic {type(logic).__name__}")


class _Failed(Exception):
    """An expression failed; it has been reported."""


def _logic_example(kind: str) -> str:
    return {
        "transformer": "logic: {set: {field: expression}}",
        "filter": "logic: {where: condition}",
        "router": "logic: {routes: [{when: condition, to: port}]}",
        "aggregator": "logic: {key: field, aggregate: {field: avg(x)}}",
        "source": "logic: {set: {field: expression}}",
        "custom": "a description of what it does",
    }[kind]


def _input_env(ctx: Context, comp: Any) -> dict[str, Type]:
    if comp.kind == "source":
        return dict(SOURCE_VARIABLES)
    (schema,) = comp.inputs.values()
    return field_types(ctx.schemas[schema])


def _expr(ctx: Context, path: tuple, text: str, env: dict[str, Type], want: str | None = None) -> Compiled:
    try:
        return compiled_expression(text, env, want=want)
    except ExprError as exc:
        if not reads_unknown(text, ctx.unknown_names):
            report_expression_error(ctx, path, exc)
        raise _Failed from None


def report_expression_error(ctx: Context, path: tuple, exc: ExprError) -> None:
    """Position an expression error inside the YAML scalar when it is written on one line."""
    mark = ctx.arch_doc.mark(path)
    line, col = mark.line, mark.col
    if mark.single_line and exc.offset[0] == 0:
        col += exc.offset[1] + (1 if mark.style in ("'", '"') else 0)
    ctx.diagnostics.append(
        Diagnostic(ctx.arch_doc.file, line, col, exc.code, exc.message, expected=exc.expected, fix=exc.fix)
    )


def _output_fields(ctx: Context, comp: Any) -> dict[str, Any]:
    (schema,) = comp.outputs.values()
    return ctx.schemas[schema]["fields"]


def _compile_set(ctx: Context, path: tuple, comp: Any, logic: m.SetLogic, env: dict[str, Type]) -> dict:
    out_fields = _output_fields(ctx, comp)
    compiled: dict[str, Any] = {}
    failed = False
    for name, text in logic.set.items():
        fpath = (*path, "set", name)
        try:
            _require_output_field(ctx, fpath, comp, out_fields, name)
            value = _expr(ctx, fpath, text, env)
            _require_assignable(ctx, fpath, out_fields, name, value.type, "the expression")
        except _Failed:
            failed = True
            continue
        compiled[name] = value.to_json()
    if not failed:
        carried = env if comp.kind == "transformer" else {}
        _check_produced(ctx, path, comp, out_fields, set(logic.set), carried)
    if failed:
        raise _Failed
    return compiled


def _require_output_field(ctx: Context, path: tuple, comp: Any, out_fields: dict, name: str) -> None:
    """AC120 unless `name` is a field of the component's output schema."""
    if name not in out_fields and name in ctx.unknown_names:
        raise _Failed  # a field that failed validation: reported there
    if name not in out_fields:
        (schema,) = comp.outputs.values()
        ctx.report(
            path,
            "AC120",
            f"'{name}' is not a field of the output schema {schema}",
            key=True,
            expected=one_of(out_fields),
            fix=did_you_mean(name, out_fields) or f"add the field to {schema}",
        )
        raise _Failed


def _require_assignable(
    ctx: Context, path: tuple, out_fields: dict, name: str, value: Type, what: str
) -> None:
    """AC203 unless a value of type `value` fits output field `name`."""
    target = type_of_field(out_fields[name])
    if not assignable(value, target):
        ctx.report(
            path,
            "AC203",
            f"'{name}' is {target} but {what} is {value}",
            expected=str(target),
            fix="convert with int(), float() or str(), or change the field's type",
        )
        raise _Failed


def _check_produced(
    ctx: Context, path: tuple, comp: Any, out_fields: dict, produced: set[str], env: dict[str, Type]
) -> None:
    """AC121: every required output field is either set or carried over from the input."""
    for name, spec in out_fields.items():
        if name in produced or not spec.get("required", True) or spec.get("default") is not None:
            continue
        carried = env.get(name)
        if carried is None and name in ctx.unknown_names:
            continue  # carried from an input field that failed validation
        if carried is None or not assignable(carried, type_of_field(spec)):
            (schema,) = comp.outputs.values()
            ctx.report(
                (*path, "set"),
                "AC121",
                f"output field '{name}' of {schema} is neither set nor carried from the input",
                expected=f"`{name}: expression` under set",
                fix=f"add `{name}: ...` to set, or make the field optional",
            )


def _compile_routes(
    ctx: Context, path: tuple, comp: Any, logic: m.RouterLogic, env: dict[str, Type]
) -> dict[str, Any]:
    routes = []
    failed = False
    for j, route in enumerate(logic.routes):
        if route.to not in comp.outputs:
            ctx.report(
                (*path, "routes", j, "to"),
                "AC101",
                f"route goes to unknown output port '{route.to}'",
                expected=one_of(comp.outputs),
                fix=did_you_mean(route.to, comp.outputs) or "declare the port under outputs",
            )
            failed = True
        try:
            when = _expr(ctx, (*path, "routes", j, "when"), route.when, env, "boolean")
            routes.append({"when": when.to_json(), "to": route.to})
        except _Failed:
            failed = True
    if logic.default is not None and logic.default not in comp.outputs:
        ctx.report(
            (*path, "default"),
            "AC101",
            f"default goes to unknown output port '{logic.default}'",
            expected=one_of(comp.outputs),
            fix=did_you_mean(logic.default, comp.outputs) or "fix the name",
        )
        failed = True
    if failed:
        raise _Failed
    return {"routes": routes, "default": logic.default}


def _compile_aggregate(
    ctx: Context, path: tuple, comp: Any, logic: m.AggregateLogic, env: dict[str, Type]
) -> dict[str, Any]:
    key = _expr(ctx, (*path, "key"), logic.key, env)
    if key.type.kind not in ("string", "integer", "boolean") or key.type.optional:
        ctx.report(
            (*path, "key"),
            "AC203",
            f"aggregator key has type {key.type}",
            expected="a string, integer or boolean",
            fix="group by an id-like field",
        )
        raise _Failed
    _check_event_time(ctx, (*path[:-1], "config", "event_time"), comp.config.event_time, env)
    out_fields = _output_fields(ctx, comp)
    aggregates: dict[str, Any] = {}
    failed = False
    for name, text in logic.aggregate.items():
        apath = (*path, "aggregate", name)
        try:
            _require_output_field(ctx, apath, comp, out_fields, name)
            agg = compile_aggregate(text, env)
            _require_assignable(ctx, apath, out_fields, name, agg.type, f"{agg.function}()")
        except ExprError as exc:
            if not reads_unknown(text, ctx.unknown_names):
                report_expression_error(ctx, apath, exc)
            failed = True
            continue
        except _Failed:
            failed = True
            continue
        aggregates[name] = {
            "source": text,
            "function": agg.function,
            "argument": agg.argument.to_json() if agg.argument else None,
            "type": agg.type.kind,
        }
    key_field = logic.key.strip() if logic.key.strip() in env else None
    produced = set(aggregates) | set(AGGREGATOR_EXTRAS) | ({key_field} if key_field else set())
    for name, spec in out_fields.items():
        if name not in produced and spec.get("required", True) and spec.get("default") is None:
            ctx.report(
                (*path, "aggregate"),
                "AC121",
                f"output field '{name}' is not produced",
                expected="an aggregate, the key field, window_start or window_end",
                fix=f"add `{name}: count()` (or another aggregate), or make the field optional",
            )
            failed = True
    if failed:
        raise _Failed
    return {"key": key.to_json(), "key_field": key_field, "aggregate": aggregates}


def _check_event_time(ctx: Context, path: tuple, field: str | None, env: dict[str, Type]) -> None:
    """An event-time field must be a required number of the input: epoch seconds."""
    if field is None:
        return
    found = env.get(field)
    if found is None and field in ctx.unknown_names:
        raise _Failed  # a field that failed validation: reported there
    if found is None:
        ctx.report(
            path,
            "AC202",
            f"unknown field '{field}' for event_time",
            expected=one_of(env),
            fix=did_you_mean(field, env) or "name a number field of the input holding epoch seconds",
        )
        raise _Failed
    if not found.numeric or found.optional:
        ctx.report(
            path,
            "AC203",
            f"event_time field '{field}' has type {found}",
            expected="a required integer or number field (epoch seconds)",
            fix="use a required numeric timestamp field, or drop event_time to window by processing time",
        )
        raise _Failed


# --------------------------------------------------------------------------- examples


def _check_examples(ctx: Context, path: tuple, comp: Any) -> None:
    for j, example in enumerate(comp.examples):
        epath = (*path, "examples", j)
        outcomes = sum([example.out is not None, example.dropped, example.rejected])
        if outcomes > 1:
            ctx.report(
                epath,
                "AC118",
                "an example has one outcome: out, dropped or rejected",
                fix="keep only one of out, dropped: true, rejected: true",
            )
        port = example.port or (next(iter(comp.inputs)) if len(comp.inputs) == 1 else None)
        if port is None or port not in comp.inputs:
            ctx.report(
                epath,
                "AC118",
                f"example needs an input port of '{comp.name}'",
                expected=one_of(comp.inputs),
                fix="add `port: <input port>`",
            )
            continue
        if not example.rejected and not ctx.unknown_names:  # else its fields are not all known
            fields = ctx.schemas[comp.inputs[port]]["fields"]
            for problem in message_problems(fields, example.input):
                ctx.report(
                    (*epath, "in"),
                    "AC118",
                    f"example input: {problem}",
                    fix="fix the example, or mark it `rejected: true`",
                )
        _check_example_output(ctx, epath, comp, example)


def _check_example_output(ctx: Context, epath: tuple, comp: Any, example: m.Example) -> None:
    to = example.to or (next(iter(comp.outputs)) if len(comp.outputs) == 1 else None)
    if example.to is not None and example.to not in comp.outputs:
        ctx.report(
            (*epath, "to"),
            "AC118",
            f"example goes to unknown output port '{example.to}'",
            expected=one_of(comp.outputs),
            fix=did_you_mean(example.to, comp.outputs) or "fix the port",
        )
        return
    if example.out is None:
        return
    if to is None:
        ctx.report(
            epath,
            "AC118",
            "example output needs `to: <output port>`",
            expected=one_of(comp.outputs),
            fix="add `to:`",
        )
        return
    fields = ctx.schemas[comp.outputs[to]]["fields"]
    for key in example.out:
        if key not in fields and key not in ctx.unknown_names:
            ctx.report(
                (*epath, "out", key),
                "AC118",
                f"example output field '{key}' is not in the output schema",
                key=True,
                expected=one_of(fields),
                fix=did_you_mean(key, fields) or "remove it",
            )
