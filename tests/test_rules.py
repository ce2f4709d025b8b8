"""One test per semantic rule (AC1xx): triggered on a small change of the orders example,
with the message checked. The example itself must compile with no diagnostic at all."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO, compile_data, component, only

from autocoder.diagnostics import rule_table


def test_the_example_is_clean(arch, deploy):
    result = compile_data(arch, deploy, strict=True)
    assert result.diagnostics == []
    assert result.ir is not None


def test_AC100_unknown_component_in_binding(arch):
    arch["bindings"][0]["to"] = "pricr.in"
    (d,) = only(compile_data(arch), "AC100")
    assert "unknown component 'pricr'" in d.message and d.fix == "did you mean 'pricer'?"


def test_AC100_unknown_component_in_deployment(arch, deploy):
    deploy["replicas"]["order_stor"] = 1
    (d,) = only(compile_data(arch, deploy), "AC100")
    assert d.file == "deployment.yaml" and "did you mean 'order_store'?" == d.fix


def test_AC101_unknown_port(arch):
    arch["bindings"][0]["to"] = "pricer.inn"
    (d,) = only(compile_data(arch), "AC101")
    assert "no input port 'inn'" in d.message and d.fix == "did you mean 'in'?"


def test_AC101_input_used_as_source(arch):
    arch["bindings"][0]["from"] = "pricer.in"
    d = only(compile_data(arch), "AC101")[0]
    assert "'in' is an input port of pricer" in d.message


def test_AC101_route_emits_unknown_port(arch):
    component(arch, "orders_api")["config"]["routes"][0]["emit"] = "order"
    (d,) = only(compile_data(arch), "AC101")
    assert "unknown output port 'order'" in d.message and "did you mean 'orders'?" == d.fix


def test_AC102_unknown_schema(arch):
    component(arch, "pricer")["outputs"]["out"] = "PricedOrdr"
    (d,) = only(compile_data(arch), "AC102")
    assert "unknown schema 'PricedOrdr'" in d.message and d.fix == "did you mean 'PricedOrder'?"


def test_AC102_unknown_base_schema(arch):
    arch["schemas"]["PricedOrder"]["extends"] = "Ordr"
    assert "extends" in only(compile_data(arch), "AC102")[0].message


def test_AC103_unbound_input(arch):
    arch["bindings"][2]["to"] = []
    arch["bindings"].pop(2)
    d = only(compile_data(arch), "AC103")[0]
    assert "input notifier.in is bound to nothing" in d.message


def test_AC104_unbound_output_is_a_warning(arch):
    arch["bindings"].pop(2)
    component(arch, "notifier")["inputs"] = {"in": "PricedOrder"}
    arch["components"] = [c for c in arch["components"] if c["name"] != "notifier"]
    result = compile_data(arch)
    (d,) = only(result, "AC104")
    assert d.severity == "warning" and "big_orders.out" in d.message
    assert result.ir is not None  # warnings do not fail
    assert compile_data(arch, strict=True).ir is None  # unless strict


def test_AC105_input_bound_twice(arch):
    arch["bindings"].append({"from": "orders_api.orders", "to": "pricer.in"})
    (d,) = only(compile_data(arch), "AC105")
    assert "already bound by bindings[0]" in d.message


def test_AC106_schema_mismatch(arch):
    arch["bindings"][0] = {"from": "orders_api.orders", "to": "pricer.in"}
    component(arch, "orders_api")["outputs"]["orders"] = "Order"
    arch["bindings"][1]["to"] = ["order_store.in"]
    arch["bindings"].append({"from": "orders_api.orders", "to": "big_orders.in"})
    (d,) = only(compile_data(arch), "AC106")
    assert "sends Order but big_orders.in expects PricedOrder" in d.message


def test_AC107_cycle(arch):
    component(arch, "big_orders")["outputs"]["loop"] = "PricedOrder"
    component(arch, "pricer")["inputs"]["again"] = "PricedOrder"
    arch["bindings"].append({"from": "big_orders.loop", "to": "pricer.again"})
    component(arch, "pricer")["kind"] = "custom"
    component(arch, "pricer").pop("logic")
    component(arch, "pricer").pop("examples")
    component(arch, "pricer")["description"] = "price orders"
    (d,) = only(compile_data(arch), "AC107")
    assert d.message == "cycle: pricer -> big_orders -> pricer"


def test_AC107_cycle_is_reported_in_flow_order():
    from autocoder.analysis.graph import _find_cycle

    cycle = _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    k = cycle.index("a")
    assert cycle[k:] + cycle[:k] == ["a", "b", "c"]


def test_AC108_unreachable(arch):
    component(arch, "orders_api")["kind"] = "custom"
    component(arch, "orders_api").pop("config")
    component(arch, "orders_api").pop("security")
    component(arch, "orders_api")["inputs"] = {"in": "Order"}
    component(arch, "orders_api")["description"] = "relay"
    arch["components"].append(
        {
            "name": "relay",
            "kind": "transformer",
            "inputs": {"in": "Order"},
            "outputs": {"out": "Order"},
            "logic": {"set": {"quantity": "quantity"}},
        }
    )
    arch["bindings"].append({"from": "relay.out", "to": "orders_api.in"})
    arch["components"][-1]["inputs"] = {"in": "Order"}
    component(arch, "relay")["kind"] = "custom"
    component(arch, "relay").pop("logic")
    component(arch, "relay")["description"] = "loops"
    component(arch, "relay")["inputs"] = {"in": "Order"}
    arch["bindings"].append({"from": "orders_api.orders", "to": "relay.in"})
    result = compile_data(arch)
    messages = [d.message for d in only(result, "AC108")]
    assert "component 'pricer' is not reachable from any ingress or source" in messages


def test_AC109_ingress_without_auth(arch):
    component(arch, "orders_api").pop("security")
    (d,) = only(compile_data(arch), "AC109")
    assert "ingress 'orders_api' has no auth" in d.message and "auth: api_key" in d.fix


def test_AC110_secret_in_config_and_env(arch, deploy):
    component(arch, "notifier")["config"] = {"target": "webhook", "url": "https://u:hunter22@example.com/x"}
    deploy["env"]["DB_PASSWORD"] = "s3cr3t-value"
    result = compile_data(arch, deploy)
    found = only(result, "AC110")
    assert {d.file for d in found} == {"architecture.yaml", "deployment.yaml"}
    assert all("plain text" in d.message for d in found)


def test_AC111_sqlite_store_with_replicas(arch, deploy):
    deploy["replicas"] = {"default": 2}
    (d,) = only(compile_data(arch, deploy), "AC111")
    assert "store 'order_store' uses embedded SQLite but would run 2 replicas" in d.message


def test_AC112_capacity_rate_path(arch, deploy):
    deploy["component_overrides"] = {}
    (d,) = only(compile_data(arch, deploy), "AC112")
    assert d.severity == "warning"
    assert "orders_api" in d.message and "100 msg/s" in d.message and "throughput_rps 200" in d.message


def test_AC112_capacity_latency_path(arch):
    arch["policy"]["performance"]["p95_ms"] = 3
    component(arch, "pricer")["budget"] = {"p95_ms": 3}
    (d,) = only(compile_data(arch), "AC112")
    assert "sums to" in d.message and "orders_api -> pricer" in d.message


def test_AC113_duplicate_component(arch):
    arch["components"].append(dict(component(arch, "notifier")))
    (d,) = only(compile_data(arch), "AC113")
    assert "'notifier' is already used" in d.message


def test_AC114_inheritance_cycle_and_redefinition(arch):
    arch["schemas"]["Order"]["extends"] = "PricedOrder"
    assert "inheritance cycle" in only(compile_data(arch), "AC114")[0].message
    arch["schemas"]["Order"].pop("extends")
    arch["schemas"]["PricedOrder"]["fields"]["quantity"] = {"type": "string"}
    assert "redefines inherited type integer" in only(compile_data(arch), "AC114")[0].message


def test_AC115_ports_for_the_kind(arch):
    component(arch, "notifier")["outputs"] = {"out": "PricedOrder"}
    (d,) = only(compile_data(arch), "AC115")
    assert "a sink has exactly 0 output port(s), this one has 1" in d.message


def test_AC116_missing_logic(arch):
    component(arch, "big_orders").pop("logic")
    component(arch, "big_orders").pop("examples")
    (d,) = only(compile_data(arch), "AC116")
    assert "neither logic nor a description" in d.message


def test_AC117_kernel_capability_disabled(arch):
    component(arch, "pricer")["capabilities"] = {"metrics": False}
    assert "metrics is disabled" in only(compile_data(arch), "AC117")[0].message


def test_AC118_example_does_not_fit(arch):
    component(arch, "pricer")["examples"][0]["in"]["quantity"] = 0
    component(arch, "pricer")["examples"][0]["out"]["totl"] = 1
    messages = [d.message for d in only(compile_data(arch), "AC118")]
    assert any("below minimum 1" in m for m in messages)
    assert any("'totl' is not in the output schema" in m for m in messages)


def test_AC119_inconsistent_constraints(arch):
    arch["schemas"]["Order"]["fields"]["quantity"]["maximum"] = 0
    arch["schemas"]["Order"]["fields"]["order_id"]["pattern"] = "([A-Z"
    messages = [d.message for d in only(compile_data(arch), "AC119")]
    assert any("minimum 1 is above maximum 0" in m for m in messages)
    assert any("not a valid regular expression" in m for m in messages)


def test_AC120_config_refers_to_unknown_field(arch):
    component(arch, "order_store")["config"]["key"] = "order"
    (d,) = only(compile_data(arch), "AC120")
    assert "store key 'order' is not a field of PricedOrder" in d.message
    assert d.fix == "did you mean 'order_id'?"


def test_AC121_output_field_not_produced(arch):
    arch["schemas"]["PricedOrder"]["fields"]["currency"] = {"type": "string"}
    (d,) = only(compile_data(arch), "AC121")
    assert "output field 'currency' of PricedOrder is neither set nor carried" in d.message


def test_AC122_resources_above_policy(arch, deploy):
    deploy["resources"]["default"] = {"cpu": "2", "memory": "1Gi"}
    messages = [d.message for d in only(compile_data(arch, deploy), "AC122")]
    assert "cpu 2 for 'default' is above the policy limit 500m" in messages
    assert "memory 1Gi for 'default' is above the policy limit 256Mi" in messages


def test_AC123_https_without_tls(arch, deploy):
    deploy["ingress"] = {"host": "orders.example.com"}
    deploy["policy"] = {"security": {"require_https": True}}
    assert "no tls_secret" in only(compile_data(arch, deploy), "AC123")[0].message


def test_AC124_name_too_long_for_kubernetes(arch):
    arch["system"]["name"] = "a" * 24
    old = "notifier"
    new = "n" * 40
    component(arch, old)["name"] = new
    arch["bindings"][2]["to"] = f"{new}.in"
    (d,) = only(compile_data(arch), "AC124")
    assert "too long for a Kubernetes name" in d.message


def test_AC125_pattern_the_runtime_engine_cannot_run(arch):
    arch["schemas"]["Order"]["fields"]["order_id"]["pattern"] = "^(?=A)[A-Z0-9-]{6,32}$"
    (d,) = only(compile_data(arch), "AC125")
    assert "look-around" in d.message and "field 'order_id'" in d.message and d.fix


def test_AC126_api_key_env_not_declared_as_a_secret(arch, deploy):
    component(arch, "orders_api")["security"]["api_key_env"] = "HOME"
    (d,) = only(compile_data(arch, deploy), "AC126")
    assert "api_key_env 'HOME' of 'orders_api' is not a key declared in deployment.yaml secrets" in d.message
    assert d.file == "architecture.yaml" and d.expected == "one of API_KEY"
    assert "secrets: [{name: orders-secrets, keys: [HOME]}]" in d.fix
    component(arch, "orders_api")["security"]["api_key_env"] = "API_KEX"
    assert only(compile_data(arch, deploy), "AC126")[0].fix.startswith("did you mean 'API_KEY'?")
    deploy["secrets"].append({"name": "ingress", "keys": ["API_KEX"]})
    assert not compile_data(arch, deploy).diagnostics
    deploy["secrets"] = []  # the implicit default API_KEY is not required to be declared
    component(arch, "orders_api")["security"].pop("api_key_env")
    assert not compile_data(arch, deploy).diagnostics


def test_AC127_webhook_header_refers_to_an_undeclared_secret(arch, deploy):
    headers = {"Authorization": "Bearer ${HOOK_TOKEN}", "X-Tenant": "$TENANT-$API_KEX", "X-Price": "$5 flat"}
    component(arch, "notifier")["config"] = {
        "target": "webhook",
        "url": "https://hooks.example.com/x",
        "headers": headers,
    }
    found = only(compile_data(arch, deploy), "AC127")
    refs = {d.message.split(" refers to ")[1].split(",")[0]: d for d in found}
    assert sorted(refs) == ["$API_KEX", "$TENANT", "${HOOK_TOKEN}"]
    assert all(d.file == "architecture.yaml" and "declare it in deployment.yaml" in d.fix for d in found)
    assert refs["$API_KEX"].fix.startswith("did you mean 'API_KEY'?")
    deploy["secrets"].append({"name": "hooks", "keys": ["HOOK_TOKEN", "TENANT", "API_KEX"]})
    assert not compile_data(arch, deploy).diagnostics  # nor AC110: the credential is a reference


def test_AC128_file_sink_path_outside_the_data_directory(arch):
    sink = component(arch, "notifier")
    for path, words in [
        ("/etc/cron.d/x", "is absolute"),
        ("../../home/user/.bashrc", "goes up with `..`"),
        ("logs/../../x.jsonl", "goes up with `..`"),
        ("C:\\out.jsonl", "is absolute"),
        ("logs/", "names a directory"),
    ]:
        sink["config"] = {"target": "file", "path": path}
        (d,) = only(compile_data(arch), "AC128")
        assert words in d.message and "relative to DATA_DIR" in d.fix, path
    sink["config"] = {"target": "file", "path": "logs/big..orders.jsonl"}
    assert not compile_data(arch).diagnostics


def test_the_runtime_fixture_declares_its_api_key():
    fixture = REPO / "tests" / "fixtures" / "runtime"
    from autocoder.compile import compile_directory

    assert compile_directory(fixture).diagnostics == []


def test_every_code_is_listed_used_and_tested():
    table = set(rule_table())
    source = "\n".join(p.read_text() for p in (REPO / "autocoder").rglob("*.py"))
    used = set(re.findall(r'"(AC\d{3})"', source))
    assert used == table, f"codes used but not listed: {used - table}; listed but unused: {table - used}"
    tests = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    untested = {code for code in table if f'"{code}"' not in tests and f"_{code}_" not in tests}
    assert not untested, f"codes without a test: {sorted(untested)}"


def test_AC129_sqlite_aggregator_with_replicas(arch, deploy):
    arch["components"].append(
        {
            "name": "totals",
            "kind": "aggregator",
            "inputs": {"in": "PricedOrder"},
            "outputs": {"out": "OrderTotals"},
            "logic": {"key": "customer", "aggregate": {"count": "count()"}},
        }
    )
    deploy["replicas"] = {"totals": 3}
    found = compile_data(arch, deploy).diagnostics
    (d,) = [x for x in found if x.code == "AC129"]
    assert "aggregator 'totals' keeps its windows in SQLite but would run 3 replicas" in d.message
    deploy["store"] = {"backend": "postgres", "dsn_secret": {"name": "db", "key": "DSN"}}
    assert not [x for x in compile_data(arch, deploy).diagnostics if x.code == "AC129"]
