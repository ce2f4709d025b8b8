"""The test tier: run generated tests with pytest in this process and read the JUnit XML.

In-process because a Python start-up plus imports costs more than most components' tests;
the generated package does not change while one build runs, so import caching is harmless.
"""

from __future__ import annotations

import contextlib
import io
import xml.etree.ElementTree as ET  # noqa: N817 - parses our own pytest's JUnit output
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autocoder.validate.inprocess import environment, importable


@dataclass
class TestResult:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    exit_code: int = 0
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failures and not self.errors and self.tests > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
            "failed": self.failed,
            "exit_code": self.exit_code,
        }


# The tests' databases live in a temporary directory deleted after the run: surviving a power
# cut is not what they test (the runtime's own tests do), and with SQLite's FULL default every
# commit of every test's fresh database waits for an fsync, which on a busy disk dominates the
# tier. NORMAL still survives the process being killed (WAL), so no test's verdict changes.
THROWAWAY_DATABASES = {"SQLITE_SYNCHRONOUS": "NORMAL"}


def run_pytest(src: Path, test_file: str, junit: Path, data_dir: Path) -> TestResult:
    """pytest on one generated test file, JUnit XML to `junit`, stores under `data_dir`."""
    import pytest

    junit.parent.mkdir(parents=True, exist_ok=True)
    args = [
        str(src / test_file),
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(src),
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        "--no-header",
    ]
    buffer = io.StringIO()
    importable(src)
    with (
        environment(DATA_DIR=str(data_dir), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **THROWAWAY_DATABASES),
        contextlib.redirect_stdout(buffer),
        contextlib.redirect_stderr(buffer),
    ):
        code = int(pytest.main(args, plugins=[_NoGcPerSession()]))
    result = parse_junit(junit) if junit.exists() else TestResult()
    result.exit_code = code
    result.output = buffer.getvalue()
    return result


class _NoGcPerSession:
    """pytest runs a full gc.collect() at the end of every session to find unraisable
    exceptions; in a process that runs many sessions that grows to 0.2 s each. pytest's own
    pytester turns it off the same way."""

    def pytest_configure(self, config: Any) -> None:
        from _pytest.unraisableexception import gc_collect_iterations_key

        config.stash[gc_collect_iterations_key] = 0


def parse_junit(path: Path) -> TestResult:
    root = ET.parse(path).getroot()  # noqa: S314 - a file our own pytest run just wrote
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    result = TestResult()
    for suite in suites:
        result.tests += int(suite.get("tests", 0))
        result.failures += int(suite.get("failures", 0))
        result.errors += int(suite.get("errors", 0))
        result.skipped += int(suite.get("skipped", 0))
        for case in suite.findall("testcase"):
            for kind in ("failure", "error"):
                node = case.find(kind)
                if node is not None:
                    message = (node.get("message") or node.text or "").strip().splitlines()
                    result.failed.append(
                        {
                            "test": f"{case.get('classname', '')}::{case.get('name', '')}",
                            "kind": kind,
                            "message": message[0][:500] if message else "",
                        }
                    )
    return result
