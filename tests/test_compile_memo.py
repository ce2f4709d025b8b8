"""The per-component compile memo (autocoder/analysis/memo.py) changes nothing but speed.

Every blueprint here is compiled without the memo, and with it: empty, filled by the same
blueprint, and filled by another one (an earlier version, or a foreign blueprint). The
diagnostics (text, file, line, column, order) and the bytes of ir.v1.json and of every slice
must be identical. The blueprints: the examples and fixtures, a synthetic system under edits
of every sort, every rule's error from tests/test_rules.py and every YAML error from
tests/test_yaml_errors.py. A stale entry (of an edited component, schema, deployment,
wiring or name) is never used: poisoned, it would show.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
import test_rules
import test_yaml_errors
import yaml
from conftest import REPO, orders_arch, orders_deploy
from conftest import dump as yaml_bytes

from autocoder.analysis.memo import ComponentMemo
from autocoder.blueprint.splice import ParseMemo
from autocoder.canonical import canonical_json
from autocoder.compile import CompileResult, compile_sources
from autocoder.diagnostics import Diagnostic
from autocoder.ir.models import dump
from autocoder.synthetic import synthetic_architecture, synthetic_deployment
from autocoder.tasks import compile_tasks

BLUEPRINTS = sorted(
    p.parent
    for p in [*REPO.glob("examples/*/architecture.yaml"), *REPO.glob("tests/fixtures/*/architecture.yaml")]
)


def filled(arch: bytes, deploy: bytes) -> ComponentMemo:
    memo = ComponentMemo()
    compile_sources(arch, deploy, memo=memo)
    return memo


def copied(memo: ComponentMemo) -> ComponentMemo:
    """A memo with the same entries (a compile replaces its memo's entries with its own)."""
    parse = ParseMemo(dict(memo.parse.items), memo.parse.skeleton, dict(memo.parse.validated))
    return ComponentMemo(
        dict(memo.analyses),
        dict(memo.slices),
        dict(memo.deployed),
        parse=parse,
        wirings=memo.wirings,
        graph=memo.graph,
        capacity=memo.capacity,
    )


def fingerprint(result: CompileResult) -> tuple:
    """Everything a compile gives the build: diagnostics in order, and the IR files' bytes."""
    ir = canonical_json(dump(result.ir)) if result.ir is not None else None
    slices = {name: canonical_json(dump(s)) for name, s in result.slices.items()}
    return [(d, d.format()) for d in result.diagnostics], ir, slices


def assert_same_with_memo(
    arch: bytes, deploy: bytes, *others: ComponentMemo, own: bool = True
) -> CompileResult:
    """Compile without the memo, then (unless not `own`) with an empty one and the one it
    leaves, and with each of `others` (memos of other blueprints): all must give the same."""
    plain = compile_sources(arch, deploy)
    expected = fingerprint(plain)
    memos = [*([ComponentMemo(), filled(arch, deploy)] if own else []), *map(copied, others)]
    for memo in memos:
        assert fingerprint(compile_sources(arch, deploy, memo=memo)) == expected
    return plain


ORDERS_MEMO = filled(yaml_bytes(orders_arch()), yaml_bytes(orders_deploy()))


@pytest.mark.parametrize("directory", BLUEPRINTS, ids=lambda p: p.name)
def test_examples_and_fixtures(directory: Path) -> None:
    arch, deploy = (
        (directory / "architecture.yaml").read_bytes(),
        (directory / "deployment.yaml").read_bytes(),
    )
    result = assert_same_with_memo(arch, deploy, ORDERS_MEMO)
    assert result.ir is not None


def _synthetic() -> tuple[str, dict, dict]:
    arch = synthetic_architecture(41)
    return yaml.safe_dump(arch, sort_keys=False), arch, synthetic_deployment()


def _edits() -> dict[str, tuple[str, str]]:
    """Name -> (architecture text, deployment text), each an edit of the synthetic system."""
    text, arch, deploy = _synthetic()
    deploy_text = yaml.safe_dump(deploy, sort_keys=False)
    first_score = "value * 1 + 0.5"
    assert first_score in text
    edits = {
        "expression": (text.replace(first_score, "0.5 + value * 1", 1), deploy_text),
        "lines_shift_above": ("# a comment\n\n" + text, deploy_text),
        "type_error": (text.replace(first_score, "value > 1", 1), deploy_text),
        "yaml_error": (text.replace(first_score, "'a' + value", 1), deploy_text),
        "syntax_error": (text.replace(first_score, "value * (", 1), deploy_text),
        "unknown_field": (text.replace(first_score, "valeu * 2", 1), deploy_text),
        "replicas": (text, yaml.safe_dump({**deploy, "replicas": {"trans_0": 2}}, sort_keys=False)),
        "longer_line": (text.replace(first_score, "value  *  1  +  0.5", 1), deploy_text),
    }
    swapped = dict(arch, components=[arch["components"][0], *reversed(arch["components"][1:])])
    edits["reordered"] = (yaml.safe_dump(swapped, sort_keys=False), deploy_text)
    schema = dict(arch)
    schema["schemas"] = json.loads(json.dumps(arch["schemas"]))
    first = next(iter(schema["schemas"].values()))
    first["fields"]["extra"] = {"type": "string", "required": False}
    edits["schema_changed"] = (yaml.safe_dump(schema, sort_keys=False), deploy_text)
    # an alias in one component of an anchor in another: the memo stands aside
    anchored = text.replace(f"score: {first_score}", f"score: &expr {first_score}", 1)
    assert "score: value * 2 + 0.5" in anchored
    edits["anchor"] = (anchored.replace("score: value * 2 + 0.5", "score: *expr", 1), deploy_text)
    # the wiring: filte_0 feeds sink_0 only (store_0 loses its input: an error, positioned)
    rewired = text.replace(
        "- from: filte_0.out\n  to:\n  - store_0.in\n  - sink_0.in\n",
        "- from: filte_0.out\n  to: sink_0.in\n",
        1,
    )
    assert rewired != text
    edits["wiring"] = (rewired, deploy_text)
    # a name: trans_0 becomes trans_zero everywhere (its text and the bindings)
    edits["name"] = (
        text.replace("trans_0.", "trans_zero.").replace("name: trans_0\n", "name: trans_zero\n"),
        deploy_text,
    )
    assert "trans_zero" in edits["name"][0] and "trans_0" not in edits["name"][0]
    # a schema's field type: every component reading it is checked again
    edits["schema_type"] = (
        text.replace("      score:\n        type: number", "      score:\n        type: string", 1),
        deploy_text,
    )
    assert edits["schema_type"][0] != text
    # the same component text one line lower (a comment line added in the component above)
    edits["line_inside_above"] = (
        text.replace("  kind: transformer\n", "  # a note\n  kind: transformer\n", 1),
        deploy_text,
    )
    return edits


def _deploy_text(deploy: dict) -> str:
    return yaml.safe_dump(deploy, sort_keys=False)


def test_an_anchor_in_the_blueprint_turns_the_memo_off() -> None:
    """An alias's data and position come from its anchor, which may lie in another component."""
    arch, deploy = _edits()["anchor"]
    memo = ComponentMemo()
    result = compile_sources(arch.encode(), deploy.encode(), memo=memo)
    assert memo.hits == memo.computed == 0 and not memo.analyses and result.ir is not None


@pytest.mark.parametrize("edit", sorted(_edits()))
def test_synthetic_system_under_edits(edit: str) -> None:
    text, _, deploy = _synthetic()
    before = filled(text.encode(), _deploy_text(deploy).encode())
    arch_text, deploy_text = _edits()[edit]
    assert_same_with_memo(arch_text.encode(), deploy_text.encode(), before, ORDERS_MEMO)
    memo = copied(before)
    compile_sources(arch_text.encode(), deploy_text.encode(), memo=memo)
    used = memo.hits + memo.computed > 0
    assert used == (edit not in ("anchor", "yaml_error"))  # the others validate: it is used


def _poisoned(memo: ComponentMemo) -> ComponentMemo:
    """`memo` with every entry wrong in a way a compile's output shows: a warning no check
    makes, and slices of another system."""
    mark = Diagnostic("architecture.yaml", 1, 1, "AC104", "POISON")
    analyses = {
        key: dataclasses.replace(a, diagnostics=(*a.diagnostics, mark)) for key, a in memo.analyses.items()
    }
    slices = {key: s.model_copy(update={"system": "poison"}) for key, s in memo.slices.items()}
    deployed = {
        key: dataclasses.replace(d, diagnostics=(*d.diagnostics, mark)) for key, d in memo.deployed.items()
    }
    return ComponentMemo(analyses, slices, deployed)


def _shows_poison(result: CompileResult) -> bool:
    return any(d.message == "POISON" for d in result.diagnostics) or any(
        s.system == "poison" for s in result.slices.values()
    )


def _stale_wirings(memo: ComponentMemo) -> ComponentMemo:
    """`memo` with its wiring keys replaced by "STALE" and, under those keys, poisoned slices:
    a compile that takes the wiring keys from the memo uses the poisoned slices."""
    assert memo.wirings is not None
    bindings, whole, names = memo.wirings
    poisoned = _poisoned(memo).slices
    slices = {**memo.slices, **{(key, "STALE"): s for (key, _), s in poisoned.items()}}
    stale = (bindings, whole, dict.fromkeys(names, "STALE"))
    return ComponentMemo(dict(memo.analyses), slices, wirings=stale, graph=memo.graph)


def test_wiring_keys_are_taken_from_the_memo_only_for_the_same_resolved_bindings() -> None:
    """A component's wiring key (analysis.memo.wiring_key) is a function of the resolved
    bindings: the memo's are used for bindings of the same JSON, and not after an edit of a
    component's port that changes them (here the ingress's output schema: the bindings'
    `schema`) though no component's text but the ingress's changed."""
    text, _, deploy = _synthetic()
    deploy_bytes = _deploy_text(deploy).encode()
    memo = filled(text.encode(), deploy_bytes)
    assert _shows_poison(compile_sources(text.encode(), deploy_bytes, memo=_stale_wirings(memo)))
    edited = text.replace("  outputs:\n    out: Reading\n", "  outputs:\n    out: Scored\n", 1)
    assert edited != text and edited.index("out: Scored") < edited.index("name: trans_0")
    stale = _stale_wirings(memo)
    result = compile_sources(edited.encode(), deploy_bytes, memo=stale)
    assert not _shows_poison(result) and stale.hits > 0
    assert fingerprint(result) == fingerprint(compile_sources(edited.encode(), deploy_bytes))


def _stale_graph(memo: ComponentMemo) -> ComponentMemo:
    """`memo` with its graph (analysis.memo.Graph) and capacity estimates wrong in a way the IR
    shows: a binding's schema named POISON, an estimate of a terminal that does not exist."""
    assert memo.graph is not None and memo.capacity is not None
    bindings = [{**memo.graph.bindings[0], "schema": "POISON"}, *memo.graph.bindings[1:]]
    graph = dataclasses.replace(memo.graph, bindings=bindings, wiring=None, binding_models=None)
    key, estimates = memo.capacity
    poison = {**estimates[0], "terminal": "POISON"}
    return ComponentMemo(
        dict(memo.analyses), dict(memo.slices), graph=graph, capacity=(key, [*estimates, poison])
    )


def _graph_poisoned(result: CompileResult, plain: CompileResult) -> tuple[bool, bool]:
    """Whether `result`'s IR shows _stale_graph's binding, and its capacity estimate."""
    assert result.ir is not None and plain.ir is not None
    capacity = [c.terminal for c in result.ir.metadata.capacity]
    return any(b.schema_name == "POISON" for b in result.ir.bindings), "POISON" in capacity


def test_the_graph_and_capacity_are_taken_from_the_memo_only_when_what_they_read_is_the_same() -> None:
    """After an edit of a component's logic, the bindings, the graph and the capacity estimates
    are the last compile's (poisoned, they show); after an edit of a port, of a rate limit or
    of deployment.yaml, not (poisoned, they do not show: each is made afresh)."""
    text, _, deploy = _synthetic()
    deploy_bytes = _deploy_text(deploy).encode()
    memo = filled(text.encode(), deploy_bytes)
    arch_text = _edits()["expression"][0]
    plain = compile_sources(arch_text.encode(), deploy_bytes)
    result = compile_sources(arch_text.encode(), deploy_bytes, memo=_stale_graph(memo))
    assert _graph_poisoned(result, plain) == (True, True)
    port = text.replace("  outputs:\n    out: Reading\n", "  outputs:\n    out: Scored\n", 1)
    rate = text.replace(
        "- name: trans_0\n  kind: transformer\n",
        "- name: trans_0\n  kind: transformer\n"
        "  capabilities:\n    rate_limit:\n      rate: 7\n      burst: 7\n",
        1,
    )
    edits = {
        "port": (port, deploy_bytes, (False, False)),
        "rate": (rate, deploy_bytes, (True, False)),  # the graph is the same; the rates are not
        "replicas": (text, _edits()["replicas"][1].encode(), (False, False)),
    }
    for name, (arch_text, deploy_text, poisoned) in edits.items():
        assert arch_text != text or deploy_text != deploy_bytes, name
        plain = compile_sources(arch_text.encode(), deploy_text)
        result = compile_sources(arch_text.encode(), deploy_text, memo=_stale_graph(memo))
        assert _graph_poisoned(result, plain) == poisoned, name
        if poisoned == (False, False):
            assert fingerprint(result) == fingerprint(plain), name


def test_poisoned_entries_show_when_used() -> None:
    """The stale-entry tests below can fail: a memo whose entries are used shows its poison."""
    text, _, deploy = _synthetic()
    arch, deploy_bytes = text.encode(), _deploy_text(deploy).encode()
    assert _shows_poison(compile_sources(arch, deploy_bytes, memo=_poisoned(filled(arch, deploy_bytes))))


@pytest.mark.parametrize(
    "edit", ["lines_shift_above", "replicas", "schema_changed", "schema_type", "wiring", "name"]
)
def test_an_edit_outside_one_component_uses_no_entry(edit: str) -> None:
    """A change of the schemas, deployment.yaml, the wiring, a name or the positions: every
    entry of the blueprint before is stale, none is used (poisoned, none shows)."""
    text, _, deploy = _synthetic()
    memo = _poisoned(filled(text.encode(), _deploy_text(deploy).encode()))
    arch_text, deploy_text = _edits()[edit]
    result = compile_sources(arch_text.encode(), deploy_text.encode(), memo=memo)
    assert not _shows_poison(result)
    assert fingerprint(result) == fingerprint(compile_sources(arch_text.encode(), deploy_text.encode()))


@pytest.mark.parametrize(
    "edit", ["expression", "type_error", "unknown_field", "longer_line", "line_inside_above"]
)
def test_the_edited_component_never_uses_its_old_entry(edit: str) -> None:
    """Only the edited component's entries are poisoned: the compile after the edit equals a
    fresh one, so they were not used; every other component's were."""
    text, _, deploy = _synthetic()
    deploy_bytes = _deploy_text(deploy).encode()
    memo = filled(text.encode(), deploy_bytes)
    arch_text, _ = _edits()[edit]
    probe = copied(memo)
    compile_sources(arch_text.encode(), deploy_bytes, memo=probe)
    stale_analyses = memo.analyses.keys() - probe.analyses.keys()
    stale_slices = memo.slices.keys() - probe.slices.keys()
    stale_deployed = memo.deployed.keys() - probe.deployed.keys()
    assert stale_analyses and stale_deployed == stale_analyses  # the edited component's key changed
    poisoned = _poisoned(memo)
    mixed = ComponentMemo(
        {k: (poisoned if k in stale_analyses else memo).analyses[k] for k in memo.analyses},
        {k: (poisoned if k in stale_slices else memo).slices[k] for k in memo.slices},
        {k: (poisoned if k in stale_deployed else memo).deployed[k] for k in memo.deployed},
    )
    result = compile_sources(arch_text.encode(), deploy_bytes, memo=mixed)
    assert fingerprint(result) == fingerprint(compile_sources(arch_text.encode(), deploy_bytes))
    assert mixed.hits > 0


def test_an_edit_reuses_every_other_component() -> None:
    """The point of the memo: after editing one component, only it is analysed and built."""
    text, _, deploy = _synthetic()
    deploy_bytes = _deploy_text(deploy).encode()
    memo = filled(text.encode(), deploy_bytes)
    compile_sources(_edits()["expression"][0].encode(), deploy_bytes, memo=memo)
    assert memo.computed == 3  # trans_0's analysis, its deployment checks and its slice
    assert memo.hits == 3 * 41 - 3
    assert len(memo.analyses) == len(memo.deployed) == len(memo.slices) == 41  # the stale ones are gone
    assert memo.graph is not None and memo.capacity is not None


def test_entries_below_an_edit_that_adds_lines_are_used_with_their_lines_moved() -> None:
    """A line added in trans_0 moves every component below it: their entries are still used,
    and their diagnostics (an error in the last transformer here) land on the new lines,
    exactly as a fresh compile puts them."""
    text, _, deploy = _synthetic()
    deploy_bytes = _deploy_text(deploy).encode()
    last = text.rindex("score: value")
    end = text.index("\n", last)
    broken = text[:last] + "score: value > 1" + text[end:]
    memo = filled(broken.encode(), deploy_bytes)
    plain_before = compile_sources(broken.encode(), deploy_bytes)
    assert plain_before.errors and plain_before.ir is None
    grown = broken.replace("  kind: transformer\n", "  # a note\n  # another\n  kind: transformer\n", 1)
    result = compile_sources(grown.encode(), deploy_bytes, memo=memo)
    expected = compile_sources(grown.encode(), deploy_bytes)
    assert fingerprint(result) == fingerprint(expected)
    assert [d.line for d in expected.errors] == [d.line + 2 for d in plain_before.errors]
    # trans_0's analysis and deployment checks only; no IR: an error
    assert memo.computed == 2 and memo.hits == 2 * 40


def test_deployment_findings_below_an_edit_that_adds_lines_are_moved_with_their_component() -> None:
    """check_deployment's per-component entries (analysis.memo.Deployed): a credential in the
    last sink's config (AC110, in architecture.yaml) lands on its new line after lines are
    added above it, and a store's second replica (AC111, in deployment.yaml) stays where it is,
    exactly as a fresh compile puts them."""
    text, _, deploy = _synthetic()
    at = text.rindex("    target: log\n")
    leaky = text[:at] + "    target: webhook\n    url: https://u:hunter22@example.com/x\n" + text[at + 16 :]
    deploy_bytes = _deploy_text({**deploy, "replicas": {"store_0": 2}}).encode()
    memo = filled(leaky.encode(), deploy_bytes)
    before = compile_sources(leaky.encode(), deploy_bytes)
    assert {(d.code, d.file) for d in before.diagnostics} == {
        ("AC110", "architecture.yaml"),
        ("AC111", "deployment.yaml"),
    }
    grown = leaky.replace("  kind: transformer\n", "  # a note\n  # another\n  kind: transformer\n", 1)
    result = compile_sources(grown.encode(), deploy_bytes, memo=memo)
    expected = compile_sources(grown.encode(), deploy_bytes)
    assert fingerprint(result) == fingerprint(expected)
    moved = {d.code: d.line - b.line for d, b in zip(expected.diagnostics, before.diagnostics, strict=True)}
    assert moved == {"AC110": 2, "AC111": 0}
    # every other component's analysis and deployment checks (AC111 is an error: no IR)
    assert before.errors and len(memo.deployed) == 41 and memo.hits == 2 * 40


def _rule_cases() -> list[tuple[str, object]]:
    return [
        (name, fn)
        for name, fn in inspect.getmembers(test_rules, inspect.isfunction)
        if name.startswith("test_")
    ]


@pytest.mark.parametrize("case", _rule_cases(), ids=lambda c: c[0])
def test_every_rule_error(case: tuple[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each blueprint tests/test_rules.py makes (one per rule) compiles the same with the
    memo, including with the memo of the clean example it was made from."""
    name, fn = case

    def compile_data(arch: dict, deploy: dict | None = None, *, strict: bool = False) -> CompileResult:
        deploy_bytes = yaml_bytes(deploy if deploy is not None else orders_deploy())
        assert_same_with_memo(yaml_bytes(arch), deploy_bytes, ORDERS_MEMO)
        return compile_sources(yaml_bytes(arch), deploy_bytes, strict=strict)

    monkeypatch.setattr(test_rules, "compile_data", compile_data)
    fixtures = {"arch": orders_arch, "deploy": orders_deploy}
    params = inspect.signature(fn).parameters  # type: ignore[arg-type]
    if not set(params) <= set(fixtures):
        pytest.skip(f"{name} needs fixtures {sorted(params)}")
    fn(**{p: fixtures[p]() for p in params})  # type: ignore[operator]


def _yaml_cases() -> list[tuple[str, object]]:
    return [
        (name, fn)
        for name, fn in inspect.getmembers(test_yaml_errors, inspect.isfunction)
        if name.startswith("test_") and not inspect.signature(fn).parameters
    ]


@pytest.mark.parametrize("case", _yaml_cases(), ids=lambda c: c[0])
def test_every_yaml_error(case: tuple[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    name, fn = case
    example = REPO / "examples" / "orders"

    def compile_text(arch: str, deploy: str | None = None) -> CompileResult:
        deploy_bytes = deploy.encode() if deploy is not None else (example / "deployment.yaml").read_bytes()
        # a file that does not parse never reaches the memo: one comparison is enough
        return assert_same_with_memo(arch.encode(), deploy_bytes, ORDERS_MEMO, own=False)

    monkeypatch.setattr(test_yaml_errors, "compile_text", compile_text)
    fn()  # type: ignore[operator]


def _ir_files(project: Path) -> dict[str, bytes]:
    generated = project / "generated"
    files = [generated / "ir.v1.json", *sorted((generated / "ir").glob("*.json"))]
    return {str(p.relative_to(generated)): p.read_bytes() for p in files}


def test_tasks_use_the_process_memo_and_write_what_a_fresh_compile_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check and ir as the build runs them (in process: the tests turn the warm worker off):
    with the process's memo after an edit, the IR files and the check report equal those of
    a compile without it (AUTOCODER_COMPILE_MEMO=off), edit after edit."""
    text, _, deploy = _synthetic()
    fresh, memoised = tmp_path / "fresh", tmp_path / "memoised"
    for project in (fresh, memoised):
        project.mkdir()
        (project / "architecture.yaml").write_text(text)
        (project / "deployment.yaml").write_text(_deploy_text(deploy))

    def build(project: Path, memo: bool) -> None:
        compile_tasks._COMPILED.clear()
        monkeypatch.setenv(compile_tasks.MEMO_ENV, "on" if memo else "off")
        assert compile_tasks.run_check(project, False) is None
        assert compile_tasks.run_ir(project, False) is None

    build(fresh, memo=False)
    build(memoised, memo=True)
    edits = [_edits()["expression"][0], _edits()["longer_line"][0], text]
    for edited in edits:
        for project in (fresh, memoised):
            (project / "architecture.yaml").write_text(edited)
        build(fresh, memo=False)
        build(memoised, memo=True)
        assert compile_tasks.process_memo().hits > 0  # type: ignore[union-attr]
        assert _ir_files(memoised) == _ir_files(fresh)
        report = Path("generated", "reports", "check.json")
        assert (memoised / report).read_bytes() == (fresh / report).read_bytes()
