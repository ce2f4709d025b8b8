"""Batching the lint and bench tiers (validate/siblings.py): a batch gives each component the
findings and verdict a run on its own gives, a failing component fails only its own task, a
record is used only for the exact inputs it was made from, and a batch that crashes falls back
to lone runs."""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import compile_data, orders_arch

from autocoder.codegen.component import generate_component
from autocoder.codegen.provider import get_provider
from autocoder.codegen.strategies import simplest_message
from autocoder.codegen.system import generate_runtime
from autocoder.tasks.validate_tasks import bench_verdict
from autocoder.validate.bench import LOOKS, bench_batch, bench_isolated
from autocoder.validate.findings import Finding
from autocoder.validate.inprocess import importable
from autocoder.validate.isolated import ChildFailed
from autocoder.validate.lint import batched_tool_findings, tool_findings, tool_findings_split
from autocoder.validate.siblings import Siblings, run_batched

CLEAN = "def double(value: int) -> int:\n    return 2 * value\n"
TEST = "from pkg.components.{name} import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
MODULES = {
    "alpha": CLEAN,
    "beta": "import os\n\n\ndef double(value: int) -> int:\n    return  2*value\n",  # F401, format
    "gamma": "def double(value: int) -> int\n    return 2 * value\n",  # a syntax error
    "delta": "def double(value: str) -> int:\n    return 2 * eval(value)\n",  # bandit B307, medium
    "epsilon": CLEAN,
}
RUFF = '[tool.ruff]\nline-length = 110\n\n[tool.ruff.lint]\nselect = ["E", "F", "I", "S"]\n'


def files_of(name: str) -> list[str]:
    return [f"pkg/components/{name}.py", f"tests/test_{name}.py"]


@pytest.fixture
def lint_project(tmp_path: Path) -> tuple[Path, Path, Siblings]:
    """generated/src with a module and a test file per component, and a lint group over them."""
    src = tmp_path / "generated" / "src"
    (src / "pkg" / "components").mkdir(parents=True)
    (src / "tests").mkdir()
    (src / "pyproject.toml").write_text(RUFF)
    for name, text in MODULES.items():
        (src / "pkg" / "components" / f"{name}.py").write_text(text)
        (src / "tests" / f"test_{name}.py").write_text(TEST.format(name=name))
    members = tuple(
        (name, (*(f"generated/src/{f}" for f in files_of(name)), str(src / "pyproject.toml")))  # absolute too
        for name in MODULES
    )
    return tmp_path, src, Siblings("lint", "build-1", members, "reports/lint", rewritten=False)


def lone(src: Path, name: str) -> list[Finding]:
    return sorted(tool_findings(src, files_of(name)))


def test_one_run_over_several_components_gives_each_its_lone_findings(lint_project):
    _, src, _ = lint_project
    split = tool_findings_split(src, {name: files_of(name) for name in MODULES})
    for name in MODULES:
        assert sorted(split[name]) == lone(src, name), name
    rules = {name: {f.rule for f in split[name]} for name in MODULES}
    assert {"F401", "format"} <= rules["beta"] and rules["gamma"] & {"syntax", "invalid-syntax"}
    assert any(f.tool == "bandit" and f.severity == "error" for f in split["delta"])
    assert rules["alpha"] == {"B101", "S101"}  # the clean one: its test's assert only


class Counted:
    """The real lint functions, counting how often a batch and a lone run happen."""

    def __init__(self, src: Path) -> None:
        self.src, self.batches, self.alone = src, [], 0

    def run(self, directory: Path, group: Siblings, name: str) -> list[Finding]:
        def batch(names: list[str]) -> dict[str, Any]:
            self.batches.append(names)
            split = tool_findings_split(self.src, {n: files_of(n) for n in names})
            return {n: [f.to_json() for f in found] for n, found in split.items()}

        def alone() -> list[dict[str, Any]]:
            self.alone += 1
            return [f.to_json() for f in tool_findings(self.src, files_of(name))]

        return sorted(Finding(**f) for f in run_batched(directory, group, name, batch, alone))


def test_each_task_gets_its_lone_findings_from_one_batch(lint_project):
    directory, src, group = lint_project
    counted = Counted(src)
    results = {name: counted.run(directory, group, name) for name in MODULES}
    assert counted.batches == [["alpha", "epsilon", "delta", "gamma", "beta"]] and counted.alone == 0
    for name in MODULES:
        assert results[name] == lone(src, name), name
    # the batched tasks' entry point in lint.py gives the same
    fresh = Siblings("lint", "build-2", group.members, group.results, rewritten=False)
    assert sorted(batched_tool_findings(directory, src, fresh, "beta", files_of)) == lone(src, "beta")


def test_a_record_is_used_only_for_the_inputs_it_was_made_from(lint_project):
    directory, src, group = lint_project
    counted = Counted(src)
    counted.run(directory, group, "alpha")  # batches the other four
    module = src / "pkg" / "components" / "beta.py"
    module.write_text(module.read_text().replace("import os\n", ""))  # its generator rewrote it
    fixed = counted.run(directory, group, "beta")
    assert counted.alone == 1 and "F401" not in {f.rule for f in fixed}
    assert fixed == lone(src, "beta")
    assert counted.run(directory, group, "gamma") == lone(src, "gamma") and counted.alone == 1


def test_a_batch_that_fails_falls_back_to_lone_runs(lint_project):
    directory, src, group = lint_project

    def crash(names: list[str]) -> dict[str, Any]:
        raise RuntimeError("the batch died")

    found = run_batched(directory, group, "alpha", crash, lambda: "alone")
    assert found == "alone"
    counted = Counted(src)
    for name in ("beta", "gamma", "delta", "epsilon"):  # each: the empty record, then alone
        assert counted.run(directory, group, name) == lone(src, name)
    assert counted.alone == 4 and not counted.batches


def test_an_edit_runs_alone_and_looks_at_no_up_to_date_sibling(lint_project):
    directory, src, group = lint_project
    results = directory / group.results
    results.mkdir(parents=True)
    for name in MODULES:
        (results / f"{name}.json").write_text("{}")
    counted = Counted(src)
    assert counted.run(directory, group, "beta") == lone(src, "beta")
    assert counted.alone == 1 and not counted.batches
    records = directory / "generated" / ".cache" / "lint-batch" / "build-1"
    assert sorted(p.name for p in records.iterdir()) == ["beta.claim"]


# --------------------------------------------------------------------------- bench

SYSTEM = "benchlint_sys"  # a name no other test imports: the bench imports the package in process
MEASURED = ("pricer", "big_orders")


@pytest.fixture(scope="module")
def orders_src(tmp_path_factory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """examples/orders' pricer (a transformer) and big_orders (a filter), generated in memory;
    their package forgotten afterwards."""
    arch = orders_arch()
    arch["system"]["name"] = SYSTEM
    del arch["schemas"]["Order"]["fields"]["order_id"]["pattern"]  # a quick simplest message
    result = compile_data(arch)
    assert result.ir is not None, [d.format() for d in result.diagnostics]
    files = generate_runtime(result.ir)
    for name in MEASURED:
        files.update(generate_component(result.slices[name], get_provider("offline")))
    src = tmp_path_factory.mktemp("orders") / "src"
    for path, text in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
    try:
        yield src, result.slices
    finally:
        if str(src) in sys.path:
            sys.path.remove(str(src))
        for module in [m for m in sys.modules if m == SYSTEM or m.startswith(SYSTEM + ".")]:
            del sys.modules[module]


TIMES = {"p50_ms", "p95_ms", "p95_lower_bound_ms", "p95_upper_bound_ms", "wall_p50_ms", "wall_p95_ms"}
TIMES |= {"run_queue_wait_ms", "iterations", "decision"}  # a later look when the machine is busy


def test_one_child_measures_each_component_as_its_own_child_does(orders_src, tmp_path):
    src, slices = orders_src
    batched = bench_batch(src, [slices[n] for n in MEASURED], tmp_path / "batch", simplest_message)
    assert sorted(batched) == sorted(MEASURED)
    for name in MEASURED:
        alone = bench_isolated(src, slices[name], tmp_path / name, simplest_message)
        assert set(batched[name]) == set(alone)
        same = {k: v for k, v in batched[name].items() if k not in TIMES}
        assert same == {k: v for k, v in alone.items() if k not in TIMES}, name
        assert batched[name]["ok"] and batched[name]["dead_letters"] == 0
        assert batched[name]["rule"]["load_correction"] == "run-queue wait subtracted"
        assert json.loads(json.dumps(batched[name])) == batched[name]  # a record holds it exactly


@contextlib.contextmanager
def big_orders_as(src: Path, text: str) -> Iterator[None]:
    """big_orders' module replaced by `text` (imported in the children only), then restored."""
    module = src / SYSTEM / "components" / "big_orders.py"
    saved = module.read_text()
    module.write_text(text)
    try:
        yield
    finally:
        module.write_text(saved)


def test_a_crash_in_the_batch_fails_only_the_crashing_component(orders_src, tmp_path):
    src, slices = orders_src
    with big_orders_as(src, "import os\n\nos._exit(3)\n"):  # kills whichever child imports it
        with pytest.raises(ChildFailed):
            bench_batch(src, [slices[n] for n in MEASURED], tmp_path / "batch", simplest_message)
        members = tuple((n, (f"src/{SYSTEM}/components/{n}.py",)) for n in MEASURED)
        group = Siblings("bench", "build-1", members, "reports/bench", rewritten=True)

        def measure(name: str) -> dict[str, Any]:
            return run_batched(
                tmp_path,
                group,
                name,
                lambda names: bench_batch(src, [slices[n] for n in names], tmp_path / "b", simplest_message),
                lambda: bench_isolated(src, slices[name], tmp_path / name, simplest_message),
            )

        assert measure("pricer")["ok"]  # its batch crashed: measured alone
        with pytest.raises(ChildFailed, match="exit"):
            measure("big_orders")  # the empty record: alone, and its own child dies


def test_a_component_over_its_budget_fails_in_a_batch_with_its_lone_message(
    orders_src, tmp_path, monkeypatch
):  # noqa: E501
    """The components of a batch share the child's loop and database: no verdict changes. A
    pricer whose logic sleeps past its limit (2 ms + 25 %) fails in a batch as alone, at the
    first look, with the same task message but for the times; the filter measured after it in
    the same child passes."""
    src, slices = orders_src
    importable(src)
    cls = importlib.import_module(f"{SYSTEM}.components.pricer").COMPONENT
    original = cls.transform

    def sleeping(self, msg):
        time.sleep(0.003)
        return original(self, msg)

    monkeypatch.setattr(cls, "transform", sleeping)  # the forked children inherit it
    batched = bench_batch(src, [slices["pricer"], slices["big_orders"]], tmp_path / "batch", simplest_message)
    alone = bench_isolated(src, slices["pricer"], tmp_path / "alone", simplest_message)
    for result in (batched["pricer"], alone):
        assert result["ok"] is False and result["dead_letters"] == 0
        assert result["decision"] == "lower bound over the limit" and result["iterations"] == LOOKS[0]
    messages = [bench_verdict("pricer", result) for result in (batched["pricer"], alone)]
    assert all(m is not None and "over its performance budget" in m.message for m in messages)
    assert len({re.sub(r"[0-9.]+", "N", m.message) for m in messages if m is not None}) == 1
    assert batched["big_orders"]["ok"] is True and bench_verdict("big_orders", batched["big_orders"]) is None


def test_a_component_that_raises_in_a_batch_leaves_the_next_ones_their_own_measurement(orders_src, tmp_path):
    src, slices = orders_src
    with big_orders_as(src, "raise RuntimeError('broken module')\n"):
        members = [slices["big_orders"], slices["pricer"]]
        batched = bench_batch(src, members, tmp_path / "batch", simplest_message)
    assert sorted(batched) == ["pricer"]  # big_orders' own task runs it alone and fails
    assert batched["pricer"]["ok"] and batched["pricer"]["dead_letters"] == 0


def test_a_build_deletes_the_records_of_earlier_builds(lint_project):
    directory, src, group = lint_project
    Counted(src).run(directory, group, "alpha")
    later = Siblings("lint", "build-2", group.members, group.results, rewritten=False)
    Counted(src).run(directory, later, "beta")
    records = directory / "generated" / ".cache" / "lint-batch"
    assert sorted(p.name for p in records.iterdir()) == ["build-2"]


def test_both_forms_of_ruffs_format_report_name_the_unformatted_files():
    from autocoder.validate.lint import unformatted

    before_0_15 = "Would reformat: pkg/a.py\nWould reformat: tests/test_a.py\n2 files would be reformatted\n"
    later = (
        "unformatted: File would be reformatted\n --> pkg/a.py:5:12\n  |\n4 | def f():\n"
        "invalid-syntax: Expected `:`, found newline\n --> pkg/b.py:1:30\n"
        "unformatted: File would be reformatted\n --> tests/test_a.py:1:1\n1 file would be reformatted\n"
    )
    assert unformatted(before_0_15) == unformatted(later) == ["pkg/a.py", "tests/test_a.py"]


def test_the_search_passes_over_components_not_generated_yet(lint_project):
    """From scratch with -n 2 the last components are generated last: a task early in the
    build still finds the pending ones before them."""
    directory, src, _ = lint_project
    # last in the task order, 20 components whose files do not exist yet: more than the 16
    # done ones in a row that end a search
    order = [*MODULES, *(f"late_{i}" for i in range(20))]
    members = tuple(
        (name, (*(f"generated/src/{f}" for f in files_of(name)), str(src / "pyproject.toml")))
        for name in order
    )
    group = Siblings("lint", "build-3", members, "reports/lint", rewritten=False)
    counted = Counted(src)
    assert counted.run(directory, group, "alpha") == lone(src, "alpha")
    assert counted.batches == [["alpha", "epsilon", "delta", "gamma", "beta"]]


def test_bandit_gives_what_its_own_default_run_gives_nosec_comments_included(tmp_path):
    """bandit_findings runs the files without "nosec" in them with ignore_nosec (no tokenizing):
    its issues are still exactly those of one plain bandit run over all the files, whose
    `# nosec` comments (blanket or naming a test) still suppress, and others do not."""
    from bandit.core import config as bandit_config
    from bandit.core import manager as bandit_manager

    from autocoder.validate.lint import bandit_findings

    sources = {
        "blanket.py": "def f(value):\n    return eval(value)  # nosec\n",
        "named.py": "def f(value):\n    return eval(value)  # nosec B307\n",
        "other_test.py": "def f(value):\n    return eval(value)  # nosec B101\n",
        "upper.py": "def f(value):\n    return eval(value)  # NOSEC\n",
        "comment.py": "# a comment\ndef f(value):\n    assert value\n    return eval(value)  # why\n",
        "plain.py": "import pickle\n\n\ndef f(data):\n    return pickle.loads(data)\n",
        "broken.py": "def f(value)\n    return eval(value)\n",
        "mentions.py": "def f(value):\n    return eval(value)\n\n\nNOTE = 'nosec'\n",
    }
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
    files = sorted(sources)
    manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)
    manager.discover_files([str(tmp_path / f) for f in files], False)
    manager.run_tests()
    expected = [
        (Path(i.fname).name, i.lineno, i.col_offset + 1, i.test_id, i.severity)
        for i in manager.get_issue_list()
    ]
    found = [
        (f.path, f.line, f.col, f.rule, f.message.rsplit("severity ", 1)[1][:-1].upper())
        for f in bandit_findings(tmp_path, files)
    ]
    assert found == expected
    flagged = {f[0] for f in found if f[3] == "B307"}
    assert flagged == {
        "other_test.py",
        "upper.py",
        "comment.py",
        "mentions.py",
    }  # blanket/named nosec suppress
