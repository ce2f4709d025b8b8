"""Property tests: random valid blueprints compile deterministically; random mutations of valid
blueprints give clean diagnostics, never an exception."""

from __future__ import annotations

import copy

from conftest import EXAMPLE, dump, orders_arch, orders_deploy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocoder.canonical import canonical_json
from autocoder.compile import compile_sources
from autocoder.ir.models import dump as ir_dump

FIELD_NAMES = st.sampled_from(["amount", "count", "label", "flag", "score", "city", "level", "price"])
FIELD_TYPES = st.sampled_from(["integer", "number", "string", "boolean"])
DEPLOY = dump({"schema_version": "1.0.0", "replicas": {"default": 1}})


@st.composite
def blueprints(draw) -> dict:
    """A random, valid blueprint: an ingress feeding a random DAG of declarative components."""
    fields = draw(st.dictionaries(FIELD_NAMES, FIELD_TYPES, min_size=1, max_size=5))
    numeric = sorted(n for n, t in fields.items() if t in ("integer", "number"))
    strings = sorted(n for n, t in fields.items() if t == "string")
    schema = {"fields": {"id": {"type": "string"}, **{n: {"type": t} for n, t in fields.items()}}}
    ingress = draw(st.sampled_from(["api_endpoint", "source"]))
    components: list[dict] = []
    if ingress == "api_endpoint":
        components.append(
            {
                "name": "ingress",
                "kind": "api_endpoint",
                "outputs": {"out": "Msg"},
                "config": {"routes": [{"method": "POST", "path": "/in", "emit": "out"}]},
                "security": {"auth": "api_key"},
            }
        )
    else:
        values = {"id": "str(seq)"}
        for n, t in fields.items():
            values[n] = {"integer": "seq", "number": "ts", "string": "'x'", "boolean": "seq > 3"}[t]
        components.append(
            {
                "name": "ingress",
                "kind": "source",
                "outputs": {"out": "Msg"},
                "logic": {"set": values},
                "config": {"interval_s": 0.5},
            }
        )
    producers = [("ingress", "out")]
    consumers: dict[tuple[str, str], list[str]] = {}
    count = draw(st.integers(min_value=1, max_value=12))
    for i in range(count):
        kind = draw(st.sampled_from(["transformer", "filter", "router", "store", "sink"]))
        name = f"{kind[:4]}_{i}"
        source = draw(st.sampled_from(producers))
        comp: dict = {"name": name, "kind": kind, "inputs": {"in": "Msg"}}
        threshold = draw(st.integers(min_value=-5, max_value=5))
        if kind == "transformer":
            comp["outputs"] = {"out": "Msg"}
            if numeric:
                target = draw(st.sampled_from(numeric))
                expr = f"{target} + {threshold}" if fields[target] == "integer" else f"{target} * 2"
            elif strings:
                target, expr = strings[0], f"lower({strings[0]})"
            else:
                target, expr = "id", "upper(id)"
            comp["logic"] = {"set": {target: expr}}
        elif kind == "filter":
            comp["outputs"] = {"out": "Msg"}
            comp["logic"] = {"where": f"{numeric[0]} > {threshold}" if numeric else "len(id) > 0"}
        elif kind == "router":
            comp["outputs"] = {"high": "Msg", "low": "Msg"}
            cond = f"{numeric[-1]} >= {threshold}" if numeric else "startswith(id, 'a')"
            comp["logic"] = {"routes": [{"when": cond, "to": "high"}], "default": "low"}
        elif kind == "store":
            comp["config"] = {"key": "id"}
        components.append(comp)
        consumers.setdefault(source, []).append(f"{name}.in")
        producers.extend((name, port) for port in comp.get("outputs", {}))
    bindings = [{"from": f"{c}.{p}", "to": targets} for (c, p), targets in consumers.items()]
    return {
        "schema_version": "1.0.0",
        "system": {"name": "prop_sys", "version": "1.2.3"},
        "schemas": {"Msg": schema},
        "components": components,
        "bindings": bindings,
        "policy": {"security": {"require_auth_on_ingress": True}},
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blueprints())
def test_random_valid_blueprints_compile_deterministically(blueprint):
    raw = dump(blueprint)
    first = compile_sources(raw, DEPLOY)
    assert first.errors == [], "\n".join(d.format() for d in first.errors)
    assert first.ir is not None
    second = compile_sources(raw, DEPLOY)
    assert second.ir is not None
    assert canonical_json(ir_dump(first.ir)) == canonical_json(ir_dump(second.ir))
    assert {k: canonical_json(ir_dump(v)) for k, v in first.slices.items()} == {
        k: canonical_json(ir_dump(v)) for k, v in second.slices.items()
    }
    assert len(first.slices) == len(blueprint["components"])


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "__import__('os').system('id')",
            "${HOME}",
            "'; DROP TABLE x;--",
            "\x00",
            "a" * 5000,
            "..",
            "../../etc/passwd",
            "{{ 7*7 }}",
            "quantity * unit_price",
            "kind",
            "Order",
            "pricer.in",
            "-1",
            "1e309",
        ]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*prefix, i))


def _get(data, path):
    for part in path:
        data = data[part]
    return data


@st.composite
def mutated(draw) -> tuple[bytes, bytes]:
    arch, deploy = orders_arch(), orders_deploy()
    target = draw(st.sampled_from(["arch", "arch", "arch", "deploy"]))
    data = copy.deepcopy(arch if target == "arch" else deploy)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = _get(data, path[:-1])
        action = draw(st.sampled_from(["replace", "delete", "rename", "duplicate"]))
        if action == "replace":
            parent[path[-1]] = draw(JUNK)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(path[-1])
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    arch_raw, deploy_raw = (dump(data), dump(deploy)) if target == "arch" else (dump(arch), dump(data))
    return arch_raw, deploy_raw


def _clean(result) -> None:
    for d in result.diagnostics:
        assert d.line >= 1 and d.col >= 1 and d.message and d.code
        assert d.file in ("architecture.yaml", "deployment.yaml")
        d.format()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_blueprints_give_clean_errors_never_exceptions(raws):
    result = compile_sources(*raws)
    _clean(result)
    if result.errors:
        assert result.ir is None
    else:
        assert result.ir is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_text_mutations_give_clean_errors_never_exceptions(data):
    text = (EXAMPLE / "architecture.yaml").read_bytes()
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(text)))
        cut = data.draw(st.integers(min_value=0, max_value=8))
        insert = data.draw(
            st.binary(max_size=6)
            | st.sampled_from(
                [
                    b":",
                    b"\t",
                    b"- ",
                    b"{",
                    b"]",
                    b"&a",
                    b"*a",
                    b"!!python/object:os.system",
                    b"\n  ",
                    b'"',
                    b"<<: ",
                ]
            )
        )
        text = text[:at] + insert + text[at + cut :]
    result = compile_sources(text, (EXAMPLE / "deployment.yaml").read_bytes())
    _clean(result)
