"""A test session collects only the files it was given (validate.testing._GivenFilesOnly): pytest
no longer makes a node for every other test file of the folder on the way, and what the session
runs, reports and writes to JUnit is what it was without the hook."""

from __future__ import annotations

from pathlib import Path

import pytest
from junits import normalized_junit

from autocoder.validate import testing
from autocoder.validate.isolated import run_forked

PASSING = "def test_one():\n    assert 1 + 1 == 2\n"
FAILING = "def test_two():\n    assert 1 == 2, 'one is not two'\n"
BROKEN = "import no_such_module_anywhere\n"
OTHERS = 30


class _Collected:
    """Every file pytest made a collector for, and every test it ran."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.ran: list[str] = []

    def pytest_collect_file(self, file_path: Path) -> None:
        self.files.append(file_path.name)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.ran.append(f"{report.nodeid} {report.outcome}")


def _project(root: Path) -> Path:
    src = root / "src"
    (src / "tests" / "sub").mkdir(parents=True)
    (src / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    for folder in (src / "tests", src / "tests" / "sub"):
        (folder / "__init__.py").write_text("")
    (src / "tests" / "conftest.py").write_text("TEST_TIMEOUT_S = 30.0\n")
    (src / "tests" / "test_alpha.py").write_text(PASSING)
    (src / "tests" / "test_beta.py").write_text(FAILING)
    (src / "tests" / "sub" / "test_gamma.py").write_text(PASSING)
    for n in range(OTHERS):  # what a session on the three above must not even look at
        (src / "tests" / f"test_other_{n}.py").write_text(BROKEN)
    return src


def _session(src: Path, scratch: Path) -> tuple[int, list[str], list[str], bytes]:
    collected = _Collected()
    files = ["tests/test_alpha.py", "tests/test_beta.py", "tests/sub/test_gamma.py"]
    junit = scratch / "junit.xml"
    code, _ = testing._session(src, files, scratch, [collected], [f"--junitxml={junit}"])
    return code, collected.files, collected.ran, normalized_junit(junit.read_bytes())


def _run(src: Path, scratch: Path) -> tuple[int, list[str], list[str], bytes]:
    """The session in a forked child, as the build runs it (nothing of it stays here)."""
    scratch.mkdir()
    return run_forked(_session, (src, scratch), 60)


def test_a_session_collects_only_its_files_and_runs_and_reports_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _project(tmp_path)
    code, files, ran, junit = _run(src, tmp_path / "given")
    # (pytest walks a folder again for each file given in it: a given file can come twice)
    assert set(files) == {"test_alpha.py", "test_beta.py", "test_gamma.py"} and len(files) <= 9

    monkeypatch.setattr(testing, "_GivenFilesOnly", object)  # pytest's own collection
    code_all, files_all, ran_all, junit_all = _run(src, tmp_path / "all")
    assert len(files_all) > OTHERS  # each folder's every file, for each file given

    assert (code, ran, junit) == (code_all, ran_all, junit_all)
    assert code == 1 and ran == [
        "tests/test_alpha.py::test_one passed",
        "tests/test_beta.py::test_two failed",
        "tests/sub/test_gamma.py::test_one passed",
    ]
    assert b"one is not two" in junit
