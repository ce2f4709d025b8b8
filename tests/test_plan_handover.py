"""tasks/plan_handover.py: with `doit -n`, `check`'s worker hands `ir`'s plan to the worker that
runs `ir`; the plan file is data whose paths are checked, used once, by its own build only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autocoder.layout import GENERATED
from autocoder.tasks import compile_tasks, plan_handover, warm_compile
from autocoder.tasks.plan_handover import Planned

EXAMPLE = Path(__file__).parent.parent / "examples" / "orders"
ALLOWED = warm_compile.PROJECTIONS


@pytest.fixture
def planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Planned]:
    """A copy of the example with its IR written, edited so that a plan has files to write."""
    monkeypatch.setenv("AUTOCODER_WARM_WORKER", "off")
    directory = tmp_path / "project"
    shutil.copytree(EXAMPLE, directory)
    compile_tasks._COMPILED.clear()
    assert compile_tasks.check_in_process(directory, False) is None
    assert compile_tasks.ir_in_process(directory, False) is None
    for name in warm_compile.PROJECTIONS:  # rewritten by the plan (`after`), not `kept`
        (directory / name).write_bytes(b"{}\n")
    compile_tasks._COMPILED.clear()
    found = warm_compile.plan(directory, False)
    assert found is not None and found.plan.after
    return directory, found


def _same(one: Planned, other: Planned) -> bool:
    return vars(one.plan) == vars(other.plan) and (one.key, one.err, one.components, one.kept) == (
        other.key,
        other.err,
        other.components,
        other.kept,
    )


def test_a_handed_over_plan_is_the_plan_once_and_for_its_own_build_and_key(planned) -> None:
    directory, plan = planned
    plan_handover.write(directory, "build1", plan)
    assert plan_handover.take(directory, "build2", plan.key, ALLOWED) is None  # another build's
    taken = plan_handover.take(directory, "build1", plan.key, ALLOWED)
    assert taken is not None and _same(taken, plan)
    assert plan_handover.take(directory, "build1", plan.key, ALLOWED) is None  # used once
    plan_handover.write(directory, "build1", plan)
    assert plan_handover.take(directory, "build1", ("0" * 64, False), ALLOWED) is None  # other bytes
    plan_handover.write(directory, "build1", plan)
    plan_handover.write(directory, "build3", plan)  # a later build removes the earlier's
    assert sorted(p.name for p in (directory / plan_handover.FOLDER).iterdir()) == ["build3.json"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("after", [["../outside.json", "e30K"]]),
        ("after", [[f"{GENERATED}/ir.v1.json", "e30K"]]),  # not a projection
        ("kept", [["/etc/passwd", "0" * 64]]),
        ("ir", "not base64!"),
        ("slices", "no list"),
    ],
)
def test_a_plan_file_naming_another_path_or_not_holding_data_is_not_used(planned, field, value) -> None:
    directory, plan = planned
    plan_handover.write(directory, "build1", plan)
    path = directory / plan_handover.FOLDER / "build1.json"
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    assert plan_handover.take(directory, "build1", plan.key, ALLOWED) is None
    assert not (directory / "outside.json").exists()


def _ir_files(directory: Path) -> dict[str, bytes]:
    generated = directory / GENERATED
    files = [*generated.glob("*.json"), *generated.glob("ir/*.json"), *generated.glob("reports/check.json")]
    return {str(p.relative_to(generated)): p.read_bytes() for p in sorted(files)}


def test_ir_in_the_other_doit_worker_writes_check_s_plan(tmp_path: Path) -> None:
    """`-n 2`: `ir` takes the plan `check` handed over (its file is gone after the build) and
    the files are the bytes of a one-process build."""
    env = {**os.environ, "AUTOCODER_WARM_WORKER": "off", "AUTOCODER_CACHE": "off"}
    built = {}
    for jobs in ("1", "2"):
        directory = tmp_path / f"n{jobs}"
        shutil.copytree(EXAMPLE, directory)
        command = [sys.executable, "-m", "autocoder.cli", "build", str(directory), "-n", jobs, "check", "ir"]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
        built[jobs] = _ir_files(directory)
        folder = directory / plan_handover.FOLDER
        assert not (list(folder.iterdir()) if folder.is_dir() else [])
    assert len(built["2"]) > 5 and built["2"] == built["1"]
