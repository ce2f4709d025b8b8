"""Batching the test tier (validate/batch.py): a batch gives each component exactly the verdict,
JUnit file (apart from times) and result a run of its file alone gives, for passing, failing and
crashing components, and a record is used only for the exact inputs it tested."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from junits import normalized_junit

from autocoder.validate.batch import Member, TierGroup, run_in_group
from autocoder.validate.testing import run_tests, run_tests_batch

PASSING = """
import pytest


def test_prints():
    print("out of a passing test")
    assert 1 + 1 == 2


@pytest.mark.parametrize("value", [1, 2, 3])
def test_parametrized(value):
    assert value > 0


@pytest.mark.skip(reason="not here")
def test_skipped():
    raise AssertionError


class TestGrouped:
    def test_in_class(self):
        assert "a" in "abc"
"""

FAILING = """
def test_fine():
    assert True


def test_wrong():
    assert 1 == 2, "one is not two"
"""

BROKEN_IMPORT = """
import no_such_module_anywhere  # noqa: F401


def test_never():
    pass
"""

CRASHING = """
import os


def test_crash():
    os._exit(3)
"""

NAMES = {
    "alpha": PASSING,
    "beta": FAILING,
    "gamma": PASSING.replace("1 + 1", "2 + 0"),
    "delta": BROKEN_IMPORT,
}


def _project(root: Path, sources: dict[str, str]) -> tuple[Path, TierGroup]:
    """A project directory with generated/src/tests/test_<name>.py per component (a module file
    per component as its other input) and a test group over them."""
    src = root / "generated" / "src"
    (src / "tests").mkdir(parents=True)
    (src / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (src / "tests" / "__init__.py").write_text("")
    (src / "tests" / "conftest.py").write_text("TEST_TIMEOUT_S = 30.0\n")
    members = []
    for name, text in sources.items():
        (src / "tests" / f"test_{name}.py").write_text(text)
        (src / f"{name}.py").write_text(f"NAME = {name!r}\n")
        own = (f"generated/src/{name}.py", f"generated/src/tests/test_{name}.py")
        members.append(Member(name, f"tests/test_{name}.py", own))
    shared = ("generated/src/tests/conftest.py",)
    return src, TierGroup("build-token", tuple(members), shared, "generated/reports/junit")


def _siblings_of(directory: Path, group: TierGroup, own: Member, records: Path) -> list[tuple[Member, str]]:
    """The siblings a test batch of `own` claims (the protocol's search, validate/siblings.py),
    as members, each with the hash of its inputs now."""
    from autocoder.validate.siblings import _pending

    return [(group.member(n), digest) for n, digest in _pending(directory, group.siblings, own.name, records)]


def _alone(src: Path, test_file: str, scratch: Path) -> tuple[dict[str, object], bytes]:
    junit = scratch / "alone" / f"{Path(test_file).stem}.xml"
    result = run_tests(src, test_file, junit, scratch)
    return result.to_json(), normalized_junit(junit.read_bytes())


def test_a_session_of_several_files_vouches_only_for_wholly_passing_ones_with_their_lone_junit(
    tmp_path: Path,
) -> None:
    src, group = _project(tmp_path, {k: v for k, v in NAMES.items() if k != "delta"})
    files = [m.test_file for m in group.members]
    (tmp_path / "batch").mkdir()
    vouched = run_tests_batch(src, files, tmp_path / "batch")  # forked: nothing of it stays here
    assert vouched["tests/test_beta.py"] is None  # a failure: its own task runs it alone
    for name in ("alpha", "gamma"):
        data = vouched[f"tests/test_{name}.py"]
        assert data is not None
        assert normalized_junit(data) == _alone(src, f"tests/test_{name}.py", tmp_path)[1]


def test_batched_build_gives_every_component_its_lone_result_and_junit(tmp_path: Path) -> None:
    """Each task of a mix of passing, failing and not-importable components, run as a batched
    build runs them (the first task batches the others), against the same files run alone."""
    src, group = _project(tmp_path, NAMES)
    alone = {m.name: _alone(src, m.test_file, tmp_path) for m in group.members}
    reports = tmp_path / "generated" / "reports"
    results = {}
    for member in group.members:
        junit = reports / "junit" / f"{member.name}.xml"
        scratch = tmp_path / "scratch" / member.name
        scratch.mkdir(parents=True)
        result = run_in_group(tmp_path, src, group, member.name, junit, scratch)
        results[member.name] = (result.to_json(), normalized_junit(junit.read_bytes()))
    assert results == alone
    assert [alone[n][0]["exit_code"] for n in NAMES] == [0, 1, 0, 2]
    records = tmp_path / "generated" / ".cache" / "test-batch" / "build-token"
    # alpha batched the others: gamma's passing run is recorded, beta and delta run alone
    assert json.loads((records / "gamma.json").read_text())["inputs"]
    assert json.loads((records / "beta.json").read_text()) == {}
    assert json.loads((records / "delta.json").read_text()) == {}


def test_a_record_is_used_only_for_the_inputs_it_tested(tmp_path: Path) -> None:
    """gamma passes in alpha's batch; then its test file changes (as when its generator task
    rewrites it later in the build) so that it fails: its task runs the new file alone."""
    src, group = _project(tmp_path, {"alpha": PASSING, "gamma": PASSING})
    reports = tmp_path / "generated" / "reports"
    (tmp_path / "s1").mkdir()
    assert run_in_group(tmp_path, src, group, "alpha", reports / "junit" / "alpha.xml", tmp_path / "s1").ok
    (src / "tests" / "test_gamma.py").write_text(FAILING)
    (tmp_path / "s2").mkdir()
    result = run_in_group(tmp_path, src, group, "gamma", reports / "junit" / "gamma.xml", tmp_path / "s2")
    assert not result.ok
    assert [f["test"] for f in result.failed] == ["tests.test_gamma::test_wrong"]


def test_a_crashing_batch_blames_nobody_each_component_runs_alone(tmp_path: Path) -> None:
    src, group = _project(tmp_path, {"alpha": PASSING, "crash": CRASHING, "gamma": PASSING})
    reports = tmp_path / "generated" / "reports"
    verdicts = {}
    for member in group.members:
        scratch = tmp_path / "scratch" / member.name
        scratch.mkdir(parents=True)
        junit = reports / "junit" / f"{member.name}.xml"
        result = run_in_group(tmp_path, src, group, member.name, junit, scratch)
        verdicts[member.name] = (result.ok, result.exit_code)
    assert verdicts == {"alpha": (True, 0), "crash": (False, 3), "gamma": (True, 0)}


def test_a_component_claimed_by_a_gone_process_is_tested_by_its_own_task(tmp_path: Path) -> None:
    src, group = _project(tmp_path, {"alpha": PASSING})
    records = tmp_path / "generated" / ".cache" / "test-batch" / "build-token"
    records.mkdir(parents=True)
    (records / "alpha.claim").write_text("999999999")  # no such process: its batch died
    (tmp_path / "s").mkdir()
    result = run_in_group(tmp_path, src, group, "alpha", tmp_path / "junit.xml", tmp_path / "s")
    assert result.ok
    assert result.tests == 6


@pytest.mark.parametrize("old", ["other-build"])
def test_a_new_build_deletes_the_records_of_earlier_builds(tmp_path: Path, old: str) -> None:
    src, group = _project(tmp_path, {"alpha": PASSING, "gamma": PASSING})
    stale = tmp_path / "generated" / ".cache" / "test-batch" / old
    stale.mkdir(parents=True)
    (stale / "alpha.json").write_text(json.dumps({"inputs": "x", "junit": "<testsuites/>"}))
    (tmp_path / "s").mkdir()
    assert run_in_group(tmp_path, src, group, "alpha", tmp_path / "junit.xml", tmp_path / "s").ok
    assert not stale.exists()


def test_an_edits_lone_task_deletes_the_records_of_earlier_builds_too(tmp_path: Path) -> None:
    """An edit's test task finds no sibling and runs alone; as in every batching tier
    (validate/siblings.py), the build's first task still deletes the earlier builds' records,
    so that one directory per edit does not pile up, and writes its claim where the dispatcher
    looks (TierGroup.records_dir)."""
    src, group = _project(tmp_path, {"alpha": PASSING})
    stale = tmp_path / "generated" / ".cache" / "test-batch" / "other-build"
    stale.mkdir(parents=True)
    (stale / "alpha.claim").write_text("1")
    (tmp_path / "s").mkdir()
    assert run_in_group(tmp_path, src, group, "alpha", tmp_path / "junit.xml", tmp_path / "s").ok
    assert not stale.exists()
    records = group.records_dir(tmp_path)
    assert records == tmp_path / "generated" / ".cache" / "test-batch" / "build-token"
    assert sorted(p.name for p in records.iterdir()) == ["alpha.claim"]


def test_a_missing_shared_input_leaves_every_member_to_its_own_task(tmp_path: Path) -> None:
    """The shared inputs (conftest, shared modules, fingerprint) are looked at once per search:
    while one is missing no member can be tested, so none is claimed."""
    _, group = _project(tmp_path, NAMES)
    records = tmp_path / "records"
    records.mkdir()
    alpha = group.member("alpha")
    assert [member.name for member, _ in _siblings_of(tmp_path, group, alpha, records)] == [
        "delta",
        "gamma",
        "beta",
    ]
    for path in records.iterdir():
        path.unlink()
    (tmp_path / group.shared[0]).unlink()
    assert _siblings_of(tmp_path, group, alpha, records) == []
    assert list(records.iterdir()) == []


def test_skipping_unused_pytest_plugins_changes_no_result_or_junit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """testing.UNUSED_PLUGINS: with and without them, each file gives the same result and the
    same JUnit file (assertion messages included)."""
    from autocoder.validate import testing

    assert testing.UNUSED_PLUGINS  # what this test is about
    src, group = _project(tmp_path, {"alpha": PASSING, "beta": FAILING})
    (tmp_path / "trimmed").mkdir()
    (tmp_path / "full").mkdir()
    trimmed = {m.name: _alone(src, m.test_file, tmp_path / "trimmed") for m in group.members}
    monkeypatch.setattr(testing, "UNUSED_PLUGINS", ())
    full = {m.name: _alone(src, m.test_file, tmp_path / "full") for m in group.members}
    assert trimmed == full
    assert b"one is not two" in trimmed["beta"][1]


def test_an_edit_batches_no_member_that_ran_after_its_inputs_changed(tmp_path: Path) -> None:
    """Which members a task batches is guessed from file times: a member whose JUnit file
    (rewritten by every run) is newer than its inputs ran already, even when its result JSON,
    rewritten only when its bytes change, is older than a shared input (a new Autocoder rewrote
    the validation fingerprint, then every task ran once with the same verdicts)."""
    _, group = _project(tmp_path, NAMES)
    reports = tmp_path / "generated" / "reports"
    for folder in ("junit", "test"):
        (reports / folder).mkdir(parents=True)
    shared = tmp_path / group.shared[0]
    os.utime(shared, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    for member in group.members:
        for path in member.own:
            os.utime(tmp_path / path, ns=(1_000_000_000_000_000_000,) * 2)
        (reports / "test" / f"{member.name}.json").write_text("{}")
        os.utime(reports / "test" / f"{member.name}.json", ns=(1_500_000_000_000_000_000,) * 2)
        (reports / "junit" / f"{member.name}.xml").write_text("<testsuites/>")
        os.utime(reports / "junit" / f"{member.name}.xml", ns=(2_500_000_000_000_000_000,) * 2)
    records = tmp_path / "records"
    records.mkdir()
    alpha = group.member("alpha")
    assert _siblings_of(tmp_path, group, alpha, records) == []
    # gamma's JUnit file older than the shared input: its task will run, so alpha takes it
    os.utime(reports / "junit" / "gamma.xml", ns=(1_500_000_000_000_000_000,) * 2)
    assert [member.name for member, _ in _siblings_of(tmp_path, group, alpha, records)] == ["gamma"]


def test_members_not_generated_yet_do_not_end_the_search_for_siblings(tmp_path: Path) -> None:
    """In a build from scratch a test task can start while the last components are still being
    generated: members whose module is missing are skipped, not taken for up to date, so the
    search reaches the pending ones before them (counted as up to date, UP_TO_DATE_RUN of them
    at the end of the order left the task to run its file alone)."""
    from autocoder.validate.batch import UP_TO_DATE_RUN

    names = [f"c{i}" for i in range(UP_TO_DATE_RUN + 6)]
    _, group = _project(tmp_path, dict.fromkeys(names, PASSING))
    for name in names[4:]:  # the end of the order is not generated yet
        (tmp_path / "generated" / "src" / f"{name}.py").unlink()
    records = tmp_path / "records"
    records.mkdir()
    found = [member.name for member, _ in _siblings_of(tmp_path, group, group.member("c0"), records)]
    assert found == ["c3", "c2", "c1"]


STORE = """
from typing import Any, ClassVar

from autocoder_runtime.kinds import Store
from autocoder_runtime.messages import strict_json
from autocoder_runtime.spec import ComponentSpec
from autocoder_runtime.testing import stored
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from pydantic import BaseModel

PHASES = (Phase.explicit, Phase.generate, Phase.shrink)  # not explain: it traces every line, slowly


class Reading(BaseModel):
    sensor: str
    value: float


class Kept(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Reading}
    spec = ComponentSpec.model_validate({"config": {"key": "sensor"}})
    LEAK = False  # a broken store also writes each message under a second key

    async def aprocess(self, port, message):
        out = await super().aprocess(port, message)
        if self.LEAK:
            await self.system.database().record_put(self.name, "zz", strict_json({**message, "sensor": "zz"}))
        return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,
    phases=PHASES,
)
@given(st.fixed_dictionaries({"sensor": st.text("ab", min_size=1, max_size=3), "value": st.floats(-9, 9)}))
def test_records_read_back(message: dict[str, Any]) -> None:
    valid = Kept.inputs["in"].model_validate(message).model_dump(mode="json")
    assert stored(Kept, "in", [message]) == {message["sensor"]: valid}
"""

STORE_CONFTEST = """
import pytest
from autocoder_runtime.testing import release_databases

TEST_TIMEOUT_S = 30.0


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    yield
    release_databases()
"""


def test_batched_store_tests_on_the_runtime_harness_give_their_lone_results(tmp_path: Path) -> None:
    """Property tests of stores on the runtime's test harness (one reused, emptied database per
    test), as the generated ones are: batched, a passing store passes and a leaky one fails with
    the JUnit file and message its lone run gives, and no record of one reaches another."""
    sources = {"kept": STORE, "leaky": STORE.replace("LEAK = False", "LEAK = True")}
    src, group = _project(tmp_path, sources)
    (src / "tests" / "conftest.py").write_text(STORE_CONFTEST)
    alone = {m.name: _alone(src, m.test_file, tmp_path) for m in group.members}
    results = {}
    for member in group.members:
        junit = tmp_path / "generated" / "reports" / "junit" / f"{member.name}.xml"
        scratch = tmp_path / "scratch" / member.name
        scratch.mkdir(parents=True)
        result = run_in_group(tmp_path, src, group, member.name, junit, scratch)
        results[member.name] = (result.to_json(), normalized_junit(junit.read_bytes()))
    assert results == alone
    assert [alone[n][0]["exit_code"] for n in sources] == [0, 1]
    assert b"{'zz': {'sensor': 'zz', 'value': 0.0}}" in alone["leaky"][1]  # its extra record, nothing else
