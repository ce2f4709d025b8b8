"""Error recovery: a model-level (schema) error leaves the rest of the blueprint analysed.

A blueprint with many independent mistakes reports every one of them in one run, each once and
at its own file:line:col, and nothing "cascades" from a part that failed validation (no unknown
schema for a schema that exists but is broken, no unknown component for a broken component).
"""

from __future__ import annotations

import copy

from conftest import compile_data, compile_text, component, orders_arch, orders_deploy

# Seven independent mistakes, one per line marked with `# <-`.
ARCH = """\
schema_version: "1.0.0"
system: {name: orders}
schemas:
  Order:
    fields:
      order_id: {type: string, pattern: "^[A-Z0-9-{6,32}$"}
      quantity: {type: integer, minimum: 1}
      unit_price: {type: number, minimum: 0}
  PricedOrder:
    extends: Order
    fields: {total: {type: number}}
  Note:
    fields: {text: {type: strng}}
  SignedNote:
    extends: Note
    fields: {author: {type: string}}
components:
  - name: orders_api
    kind: api_endpoint
    outputs: {orders: Order}
    config: {routes: [{method: POST, path: /orders, emit: orders}]}
    security: {auth: api_key}
  - name: notes_api
    kind: api_endpoint
    outputs: {notes: SignedNote}
    config: {routes: [{method: POST, path: /notes, emit: notes}]}
    security: {auth: api_key}
  - name: note_log
    kind: sink
    inputs: {in: Note}
  - name: pricer
    kind: transformer
    inputs: {in: Order}
    outputs: {out: PricedOrder}
    logic: {set: {total: "quantity * unit_price"}}
  - name: big_orders
    kind: filter
    inputs: {in: PricedOrder}
    outputs: {out: PricedOrder}
    logic: {where: "totl >= 100"}
  - name: order_store
    kind: store
    inputs: {in: PricedOrder}
    config: {key: order_idd}
  - name: notifier
    kind: snk
    inputs: {in: PricedOrder}
  - name: archiver
    kind: custom
    description: Archives every priced order
bindings:
  - {from: orders_api.orders, to: pricer.in}
  - {from: pricer.out, to: [order_store.in, big_orders.in]}
  - {from: big_orders.out, to: notifier.in}
  - {from: notes_api.notes, to: note_log.in}
  - {from: pricer.out, to: archiver.in}
"""

DEPLOY = """\
schema_version: "1.0.0"
replica: {default: 1}
component_overrides:
  notifier: {capabilities: {rate_limit: {rate: 10, burst: 20}}}
secrets: [{name: orders-api-keys, keys: [API_KEY]}]
"""

EXPECTED = [
    ("architecture.yaml", 6, 41, "AC119", "pattern is not a valid regular expression"),  # pattern
    ("architecture.yaml", 13, 27, "AC013", "'schemas.Note.fields.text.type' is 'strng'"),  # type typo
    ("architecture.yaml", 40, 21, "AC202", "unknown field 'totl'"),  # expression field
    ("architecture.yaml", 44, 19, "AC120", "store key 'order_idd'"),  # store key typo
    ("architecture.yaml", 46, 11, "AC013", "'components[6].kind' is 'snk'"),  # bad kind
    ("architecture.yaml", 56, 28, "AC101", "'archiver' has no input port 'in'"),  # binding port
    ("deployment.yaml", 2, 1, "AC010", "unknown key 'replica'"),  # deployment key
]


def test_every_independent_mistake_is_reported_once_in_one_run():
    result = compile_text(ARCH, DEPLOY)
    got = [(d.file, d.line, d.col, d.code, d.message) for d in result.diagnostics]
    assert len(got) == len(EXPECTED), "\n".join(d.format() for d in result.diagnostics)
    for (file, line, col, code, text), (gfile, gline, gcol, gcode, gmessage) in zip(
        EXPECTED, got, strict=True
    ):
        assert (gfile, gline, gcol, gcode) == (file, line, col, code), gmessage
        assert text in gmessage
    assert result.ir is None and not result.ok()


def test_nothing_cascades_from_the_broken_parts():
    messages = " ".join(d.message for d in compile_text(ARCH, DEPLOY).diagnostics)
    # Note is broken, SignedNote extends it, notes_api/note_log use them; notifier is broken
    for name in ("Note'", "SignedNote", "notes_api", "note_log", "notifier", "bound to nothing"):
        assert name not in messages


def test_a_broken_binding_leaves_its_ports_bound():
    arch = orders_arch()
    arch["bindings"][2] = {"from": "big_orders.out", "to": "notifier.in", "condition": 5}
    component(arch, "order_store")["config"]["key"] = "id"
    result = compile_data(arch)
    # the condition's type and the store key; big_orders.out and notifier.in are not unbound
    assert sorted(d.code for d in result.diagnostics) == ["AC011", "AC120"]


def test_an_unreadable_binding_silences_the_unbound_checks_only():
    arch = orders_arch()
    arch["bindings"].append("pricer.out -> notifier.in")
    component(arch, "pricer")["logic"]["set"]["total"] = "quantity * price"
    # the expression is still checked; no AC103/AC104 (which ports it binds is unknown)
    assert [d.code for d in compile_data(arch).diagnostics] == ["AC202", "AC011"]


def test_broken_deployment_entries_are_left_out_alone():
    deploy = orders_deploy()
    deploy["replicas"] = {"default": "two", "pricr": 1}
    deploy["secrets"] = [{"name": "Bad Name", "keys": ["API_KEY"]}]
    result = compile_data(orders_arch(), deploy)
    codes = sorted(d.code for d in result.diagnostics)
    # the bad replica count and secret name, and the unknown component next to them;
    # no AC126 for api_key_env against secrets that failed to validate
    assert codes == ["AC011", "AC013", "AC100"], [d.format() for d in result.diagnostics]
    assert all(d.file == "deployment.yaml" for d in result.diagnostics)


def test_a_broken_policy_or_system_does_not_fake_findings():
    arch = orders_arch()
    arch["policy"]["security"]["require_auth_on_ingress"] = "yes"
    del component(arch, "orders_api")["security"]  # would be AC109 under the default policy
    arch["system"]["name"] = "Orders" + "x" * 80  # would be AC124 (too long) as written
    component(arch, "big_orders")["logic"]["where"] = "totl >= 100"
    codes = [d.code for d in compile_data(arch).diagnostics]
    assert codes == ["AC013", "AC202", "AC011"]  # name, expression, policy: no AC109, no AC124


def test_a_schema_version_problem_still_stops_the_file():
    text = ARCH.replace('"1.0.0"', '"2.0.0"', 1)
    result = compile_text(text, DEPLOY)
    assert [d.code for d in result.diagnostics] == ["AC014", "AC010"]


def test_the_clean_example_still_compiles():
    result = compile_data(copy.deepcopy(orders_arch()), orders_deploy(), strict=True)
    assert result.diagnostics == [] and result.ir is not None


def test_a_component_with_a_bad_name_or_an_emptied_binding_cascades_nothing():
    arch = orders_arch()
    component(arch, "notifier")["name"] = "Notifier"  # the bindings still say notifier.in
    arch["bindings"][1]["to"] = []
    result = compile_data(arch)
    assert [d.code for d in result.diagnostics] == ["AC013", "AC013"], [
        d.format() for d in result.diagnostics
    ]


def test_a_bad_field_type_leaves_the_schema_and_its_other_fields_checked():
    """The issue's five mistakes, the type typo in the schema every other one reads: the
    schema keeps its other fields (and the bad field's name), so the expression and the store
    key are still checked, and nothing reading the bad field is."""
    arch = orders_arch()
    arch["schemas"]["Order"]["fields"]["order_id"]["type"] = "strng"  # 1 field type typo
    component(arch, "big_orders")["logic"]["where"] = "totl >= 100"  # 2 unknown field
    component(arch, "order_store")["config"]["key"] = "ordr_id"  # 3 store key typo
    arch["bindings"][2]["to"] = "notifier.input"  # 4 unknown binding port
    deploy = orders_deploy()
    deploy["replicaz"] = {"default": 1}  # 5 unknown deployment key
    result = compile_data(arch, deploy)
    got = {(d.code, d.message.split(";")[0]) for d in result.diagnostics}
    assert {code for code, _ in got} >= {"AC013", "AC202", "AC120", "AC101", "AC010"}, got
    assert any("totl" in message for _, message in got) and any("ordr_id" in m for _, m in got)
    assert result.ir is None


def test_nothing_is_reported_about_what_reads_a_field_that_failed():
    arch = orders_arch()
    arch["schemas"]["Order"]["fields"]["quantity"]["type"] = "integr"
    component(arch, "pricer")["logic"]["set"]["total"] = "quantity * unit_price"  # reads it
    component(arch, "order_store")["config"]["key"] = "quantity"  # names it
    result = compile_data(arch)
    # the type typo only: no unknown field, no store key, no example complaints
    assert [d.code for d in result.diagnostics] == ["AC013"], [d.format() for d in result.diagnostics]
