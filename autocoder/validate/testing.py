"""The test tier: run generated tests with pytest and read the JUnit XML.

Each run happens in a child forked from the build process (validate/isolated.py), which has
imported pytest, hypothesis, the runtime and the generated package's shared modules once
(`preload`): a Python start-up plus those imports costs more than most components' tests,
while a fork costs milliseconds, and a test that crashes, hangs or leaks takes only its own
task down. The generated package does not change while one build runs, so the imports the
children inherit are current.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import sys
import xml.etree.ElementTree as ET  # noqa: N817 - parses our own pytest's JUnit output
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autocoder import hypothesis_cache
from autocoder.validate import warm_worker
from autocoder.validate.inprocess import environment, importable
from autocoder.validate.isolated import ChildFailed, heartbeat, run_forked


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


STARTUP_LIMIT_S = 120.0  # a child's start and collection, before its first test begins
DEFAULT_TEST_LIMIT_S = 120.0  # per test, when no conftest says (TEST_TIMEOUT_S)


def run_tests(src: Path, test_file: str, junit: Path, scratch: Path) -> TestResult:
    """`run_pytest` in a forked child (of the project's warm worker when it has a ready one,
    else of this process after `preload`); a child that crashes or hangs is a failed run, its
    reason in the output (the JUnit file, if any, is what the child finished writing). A
    rebuild (the JUnit file is there from an earlier run) that ran in process starts a worker."""
    worker = warm_worker.worker_for(src, rebuild=junit.exists())
    try:
        return run_forked(
            run_pytest,
            (src, test_file, junit, scratch),
            STARTUP_LIMIT_S,
            worker=worker,
            prepare=functools.partial(preload, src),
        )
    except ChildFailed as exc:
        result = parse_junit(junit) if junit.exists() else TestResult()
        result.exit_code = 3
        result.output = f"the test run of {test_file} {exc}"
        return result


def preload(src: Path) -> None:
    """Import in this long-lived process what every test run needs, so that each forked child
    finds it in memory: pytest with its plugins, hypothesis, the runtime's test helpers and
    the generated package's shared modules (its components are each test's own); then warm
    up once (`warm_up`)."""
    import importlib

    importable(src)
    for package in sorted(p.parent.name for p in src.glob("*/models.py")):
        importlib.import_module(f"{package}.models")
    warm_up()
    _publish_once(src.parent.parent)


@functools.cache
def _publish_once(project: Path) -> None:
    """What warm-up made hypothesis derive (Unicode tables, the constants of the modules this
    process loaded from outside the project: never a generated module's, such as the models
    imported above), kept for the machine's next projects; once a process."""
    hypothesis_cache.publish(project)


WARM_UP = """
import pytest
from autocoder_runtime.testing import run_once  # noqa: F401
from hypothesis import HealthCheck, given, settings, strategies as st


@pytest.mark.parametrize("value", [1.0])
def test_parametrized(value):
    assert value == pytest.approx(1.0)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.fixed_dictionaries({"a": st.from_regex("^[a-z0-9-]{1,8}$", fullmatch=True),
       "b": st.floats(allow_nan=False), "c": st.integers(), "d": st.text(max_size=3),
       "e": st.booleans(), "f": st.lists(st.integers(), max_size=2)}))
def test_property(message):
    assert set(message) == set("abcdef")
"""


@functools.cache
def warm_up() -> None:
    """One small pytest session with a hypothesis test in this process, once: pytest's lazy
    imports (pdb, tomllib...), compiled regular expressions and hypothesis's strategy caches
    are then inherited by every child instead of being redone in each (~70 ms a run). What the
    warm worker does before it serves (no generated code: only `preload` imports that)."""
    from autocoder.validate.inprocess import scratch_directory

    path = list(sys.path)  # the session's folders (deleted after it) leave it as they found it
    with scratch_directory("autocoder-warm-up-") as scratch:
        (scratch / "src" / "tests").mkdir(parents=True)
        (scratch / "src" / "tests" / "test_warm_up.py").write_text(WARM_UP)
        (scratch / "src" / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
        result = run_pytest(scratch / "src", "tests/test_warm_up.py", scratch / "junit.xml", scratch)
    sys.path[:] = path
    if not result.ok:  # only a cost: the children redo what it would have done
        logging.getLogger(__name__).warning("test tier warm-up failed:\n%s", result.output[-2000:])


def run_pytest(src: Path, test_file: str | list[str], junit: Path, scratch: Path) -> TestResult:
    """pytest on one generated test file (or several in one session: the benchmark of
    batching, benchmarks/test_tier_bench.py) in this process, JUnit XML to `junit`; the
    tests' databases and temporary files under `scratch`."""
    junit.parent.mkdir(parents=True, exist_ok=True)
    files = [test_file] if isinstance(test_file, str) else test_file
    code, output = _session(src, files, scratch, [], [f"--junitxml={junit}"])
    result = parse_junit(junit) if junit.exists() else TestResult()
    result.exit_code = code
    result.output = output
    return result


def run_tests_batch(src: Path, test_files: list[str], scratch: Path) -> dict[str, bytes | None]:
    """`run_pytest_batch` in a forked child; a child that crashes or hangs vouches for none of
    its files (every value None: each is then run alone, so none is blamed for another)."""
    preload(src)
    try:
        return run_forked(run_pytest_batch, (src, test_files, scratch), STARTUP_LIMIT_S)
    except ChildFailed:
        return dict.fromkeys(test_files)


def run_pytest_batch(src: Path, test_files: list[str], scratch: Path) -> dict[str, bytes | None]:
    """Several generated test files in one pytest session in this process, each with its own
    JUnit file as a session of its own would write it (`_JUnitPerFile`). Per file: its JUnit
    bytes when everything in it passed (at least one test, no failure or error) and nothing in
    the session failed that cannot be told apart by file; otherwise None, as for every file
    when the session itself did not finish normally (exit code other than 0 or 1): the caller
    runs those files alone, so a failing file gets exactly its own session's verdict and message."""
    junits = {name: scratch / "junit" / f"{index}.xml" for index, name in enumerate(test_files)}
    per_file = _JUnitPerFile(junits)
    # a file that does not import fails alone (its own task re-runs it); the others still run
    code, _ = _session(src, test_files, scratch, [per_file], ["--continue-on-collection-errors"])
    vouched: dict[str, bytes | None] = dict.fromkeys(test_files)
    if code not in (0, 1) or per_file.unattributed:
        return vouched
    for name, junit in junits.items():
        result = parse_junit(junit) if junit.exists() else TestResult()
        if result.tests > 0 and not result.failures and not result.errors:
            vouched[name] = junit.read_bytes()
    return vouched


# pytest's built-in plugins that generated tests never use (no doctests, pastebin, unittest
# classes, debugger, stepwise runs, subtests, `tmpdir`/`testdir`, --setup-only/--setup-plan):
# skipped, a session saves their registration, options and hook calls: its fixed CPU cost was
# 56.8 ms against 76.2 ms, a forked file 0.94x (benchmarks/results/pytest_plugins.json);
# tests/test_test_batching.py checks that results and JUnit files stay the same.
UNUSED_PLUGINS: tuple[str, ...] = (
    "debugging",
    "doctest",
    "legacypath",
    "pastebin",
    "setuponly",
    "setupplan",
    "stepwise",
    "subtests",
    "unittest",
)


def _session(
    src: Path,
    test_files: list[str],
    scratch: Path,
    plugins: list[Any],
    options: Sequence[str] = (),
) -> tuple[int, str]:
    """One pytest session on `test_files` (paths relative to `src`) in this process, with our
    plugins and extra `options`: its exit code and output."""
    import pytest

    args = [
        *(str(src / name) for name in test_files),
        *options,
        "-q",
        "-p",
        "no:cacheprovider",
        *(option for plugin in UNUSED_PLUGINS for option in ("-p", f"no:{plugin}")),
        "--rootdir",
        str(src),
        "-o",
        "junit_family=xunit2",
        "--no-header",
        f"--basetemp={scratch / 'tmp'}",  # not pytest's default, which keeps the last 3 runs
    ]
    buffer = io.StringIO()
    importable(src)
    with (
        environment(
            DATA_DIR=str(scratch / "data"), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **THROWAWAY_DATABASES
        ),
        contextlib.redirect_stdout(buffer),
        contextlib.redirect_stderr(buffer),
    ):
        code = int(pytest.main(args, plugins=[_NoGcPerSession(), _GivenFilesOnly(), _Heartbeat(), *plugins]))
    return code, buffer.getvalue()


class _GivenFilesOnly:
    """To find the files a session was given, pytest collects every directory on the way to
    them, and makes a collector node for each of its entries before it keeps those on the
    way: for each file given, a node for every other test file of the system (at 100
    components, a session of 7 files made ~720 nodes, most of its collection time; the more
    components, the more for each). pytest asks this hook about every entry that is neither a
    file it was given nor a directory on the way to one (`Session.isinitpath`), none of which
    a session on those files runs: each is passed over before a node is made for it."""

    @staticmethod
    def pytest_ignore_collect(collection_path: Path) -> bool:
        return True


class _JUnitPerFile:
    """pytest's own JUnit writer (`LogXML`, configured from the session's ini options as
    `--junitxml` configures it), one per test file: each report goes to the writer of the file
    its node id is in, so each file's JUnit holds what a session on that file alone would write
    (apart from times, timestamp and host). A failed report of no single file (a conftest or
    directory that did not collect, an internal error) sets `unattributed`."""

    def __init__(self, junits: dict[str, Path]) -> None:
        self.junits = junits
        self.writers: dict[str, Any] = {}
        self.unattributed = False

    def pytest_configure(self, config: Any) -> None:
        from _pytest.junitxml import LogXML

        for name, junit in self.junits.items():
            self.writers[name] = LogXML(
                str(junit),
                config.option.junitprefix,
                config.getini("junit_suite_name"),
                config.getini("junit_logging"),
                config.getini("junit_duration_report"),
                config.getini("junit_family"),
                config.getini("junit_log_passing_tests"),
            )

    def _writer(self, report: Any) -> Any:
        path = report.nodeid.split("::", 1)[0]
        writer = self.writers.get(path)
        if writer is None and not report.passed:
            self.unattributed = True
        return writer

    def pytest_sessionstart(self) -> None:
        for writer in self.writers.values():
            writer.pytest_sessionstart()

    def pytest_runtest_logreport(self, report: Any) -> None:
        writer = self._writer(report)
        if writer is not None:
            writer.pytest_runtest_logreport(report)

    def pytest_collectreport(self, report: Any) -> None:
        writer = self._writer(report)
        if writer is not None:
            writer.pytest_collectreport(report)

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.unattributed = True

    def pytest_sessionfinish(self) -> None:
        for writer in self.writers.values():
            writer.pytest_sessionfinish()


class _Heartbeat:
    """Tells the parent, as each test starts, how long it may take: the time limit that the
    generated conftest puts on every test (TEST_TIMEOUT_S), which the parent enforces too."""

    limit_s = DEFAULT_TEST_LIMIT_S

    def pytest_collection_finish(self, session: Any) -> None:
        limits = [
            float(value)
            for plugin in session.config.pluginmanager.get_plugins()
            if isinstance(value := getattr(plugin, "TEST_TIMEOUT_S", None), (int, float))
        ]
        self.limit_s = max(limits, default=DEFAULT_TEST_LIMIT_S)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        heartbeat(self.limit_s)


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
