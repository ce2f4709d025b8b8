"""A path test run as a plain call in the doit worker, not as a pytest session.

A path's generated test (templates/runtime/test_path.py.j2) is one function, `test_path(system)`,
taking an httpx client of the running system; under pytest its fixture (tests/paths/conftest.py)
hands it one. The build calls that function itself against the server its path tests share:
a pytest session per path (collection, plugins, reports) costs several times the test's own
HTTP round trips. The verdict is written as pytest would: one JUnit XML file per path, read
back by the same parser as every other test tier's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import traceback
import types
import xml.etree.ElementTree as ET  # noqa: N817 - writes our own JUnit file
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder.validate.testing import TestResult, parse_junit

if TYPE_CHECKING:
    import httpx
    from autocoder_runtime.testing import PathCase

TEST_FUNCTION = "test_path"


def run_path_check(src: Path, test_file: str, url: str, junit: Path) -> TestResult:
    """`test_path` of the generated `src/test_file` against the system at `url`; its verdict in
    `junit` (xunit2, one test case) and returned. A failed assertion is a failure, any other
    exception (the file does not load, the server does not answer) an error."""
    return PathCheck(src, test_file).run(url, junit)


class PathCheck:
    """One path's test, loaded (`load`: httpx imported, its file executed) before it runs, so
    that the build loads it while the shared server starts (validate/shared_server.py
    `meanwhile`): that work then overlaps the server's boot instead of following it."""

    def __init__(self, src: Path, test_file: str) -> None:
        self.path = src / test_file
        self.classname = test_file.removesuffix(".py").replace("/", ".")
        self.test: Callable[[Any], object] | None = None
        self.module: types.ModuleType | None = None  # the loaded file: its constants (`case`)
        self.problem: tuple[str, str, str] | None = None  # why it could not load
        self.load_s: float | None = None  # None: not loaded yet

    def load(self) -> None:
        """Import httpx and the test's file, once; a file that does not load is the test's
        error, reported by `run`."""
        if self.load_s is not None:
            return
        started = time.perf_counter()
        try:
            import httpx  # noqa: F401 - the client `run` makes; imported here, ahead of it

            self.module = _load(self.path, self.classname)
            self.test = getattr(self.module, TEST_FUNCTION)
        except Exception as exc:  # noqa: BLE001 - whatever loading raised is the test's error
            self.problem = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        self.load_s = time.perf_counter() - started

    def run(self, url: str, junit: Path) -> TestResult:
        """Call the test with a client of the system at `url` (loading it first if no one
        did); its verdict in `junit` and returned. Its time: loading plus running."""
        self.load()
        started = time.perf_counter()
        problem = self.problem
        if self.test is not None:
            try:
                self.test(client(url))
            except AssertionError as exc:
                problem = ("failure", str(exc) or "assertion failed", traceback.format_exc())
            except Exception as exc:  # noqa: BLE001 - whatever the test raised is its verdict
                problem = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        seconds = (self.load_s or 0.0) + time.perf_counter() - started
        _write_junit(junit, self.classname, seconds, problem)
        return parse_junit(junit)

    def passed(self, junit: Path, seconds: float) -> TestResult:
        """The verdict of a run that passed in a batch (`run_path_batch`): the JUnit file a
        passing `run` writes, with the seconds the batch gave this test."""
        _write_junit(junit, self.classname, seconds, None)
        return parse_junit(junit)

    def case(self) -> PathCase | None:
        """The test's arguments to the runtime's `check_path`, read from the generated file's
        constants (templates/runtime/test_path.py.j2), when its `test_path` is exactly that
        call of them; None for any other test (it is run alone, by `run`)."""
        from autocoder_runtime.testing import PathCase, check_path

        self.load()
        module = self.module
        if module is None or getattr(module, "check_path", None) is not check_path:
            return None  # calls some other check_path (or none)
        if not _is_generated_check(self.path):
            return None
        try:
            return PathCase(
                **{field: getattr(module, constant) for field, constant in CASE_CONSTANTS.items()}
            )
        except AttributeError:
            return None


# check_path's keyword arguments, and the constants of a generated path test passed as each
CASE_CONSTANTS = {
    "name": "SYSTEM",
    "start": "START",
    "end": "END",
    "components": "COMPONENTS",
    "headers": "HEADERS",
    "routes": "ROUTES",
    "records": "RECORDS",
    "arrives": "ARRIVES",
    "wait_s": "WAIT_S",
}


def _is_generated_check(path: Path) -> bool:
    """Whether the file's `test_path` is the generated one: a single call of `check_path` with
    each keyword argument its constant (CASE_CONSTANTS), so that a batch checks exactly what
    the test itself would check."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return False
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == TEST_FUNCTION]
    if len(functions) != 1 or len(functions[0].body) != 1:
        return False
    statement = functions[0].body[0]
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return False
    call = statement.value
    given = {k.arg: k.value.id for k in call.keywords if isinstance(k.value, ast.Name)}
    return (
        isinstance(call.func, ast.Name)
        and call.func.id == "check_path"
        and [ast.unparse(a) for a in call.args] == ["system"]
        and len(call.keywords) == len(CASE_CONSTANTS)
        and given == CASE_CONSTANTS
        and [a.arg for a in functions[0].args.args] == ["system"]
    )


def run_path_batch(checks: dict[str, PathCheck], url: str) -> dict[str, float]:
    """Several path tests against the system at `url`, in rounds of the runtime's
    `check_paths` (one per set of tests that post the same messages: paths from one start);
    the seconds of each one that passed, by name. A test that is not a generated check
    (`case`), or whose end an earlier one of its round has, is left out, as is any that
    failed: the caller runs those alone, so a failure's verdict and message are always a lone
    run's. Each passed test is given its loading plus an equal share of its round's time."""
    from autocoder_runtime.testing import check_paths

    rounds: dict[str, dict[str, PathCase]] = {}
    for name, check in checks.items():
        case = check.case()
        if case is None or not case.routes:
            continue
        alike = rounds.setdefault(json.dumps([case.name, case.headers, case.routes], sort_keys=True), {})
        if case.end not in {c.end for c in alike.values()}:
            alike[name] = case
    passed: dict[str, float] = {}
    for cases in rounds.values():
        started = time.perf_counter()
        problems = check_paths(client(url), list(cases.values()))
        share = (time.perf_counter() - started) / len(cases)
        for name, problem in zip(cases, problems, strict=True):
            if problem is None:
                passed[name] = (checks[name].load_s or 0.0) + share
    return passed


KEEPALIVE_S = 1.0  # well under uvicorn's timeout_keep_alive (5 s)
_CLIENTS: dict[tuple[int, str], Any] = {}  # this process's client of the latest server


def client(url: str) -> httpx.Client:
    """An httpx client of the system at `url`, one per process and server, which the path
    tests of a build share: a new client costs ~0.1 s (it loads the CA bundle; more on a
    cold cache) and a new connection, more than a path test's own requests. The server is
    always plain HTTP on 127.0.0.1 (shared_server), so no TLS context is ever used: none is
    made. Nothing of one test is kept for the next: the requests carry their own headers and
    the system sets no cookies. A client of an earlier server (replaced) is closed."""
    import httpx

    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"path tests run against a server on 127.0.0.1, not {url!r}")
    key = (os.getpid(), url)  # a forked worker makes its own: a connection is not shared
    found = _CLIENTS.get(key)
    if found is None:
        for old in [k for k in _CLIENTS if k[0] == key[0]]:
            _CLIENTS.pop(old).close()
        _CLIENTS.clear()  # another process's (inherited by a fork): not ours to close
        found = _CLIENTS[key] = httpx.Client(
            base_url=url,
            timeout=10,
            verify=False,  # noqa: S501 - plain HTTP on 127.0.0.1: no TLS context is used
            # an idle connection is dropped after 1 s, long before the server's keep-alive
            # timeout (uvicorn: 5 s) closes its end: the build's worker may run other tasks
            # between two path tests, and a request on a connection the server is closing
            # just then fails ("Server disconnected without sending a response")
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S),
        )
    return found  # type: ignore[no-any-return]


def close_clients() -> None:
    """Close this process's clients (the build's server stopped: shared_server's teardown), so
    that a later server on the same port gets a new client, not a dead connection."""
    for key in [k for k in _CLIENTS if k[0] == os.getpid()]:
        _CLIENTS.pop(key).close()


def _load(path: Path, name: str) -> types.ModuleType:
    """The module of the file at `path`, which has the test function (loaded under a module
    name of its own, not registered: the build never imports it any other way)."""
    spec = importlib.util.spec_from_file_location(f"_autocoder_path_check.{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    test = getattr(module, TEST_FUNCTION, None)
    if not callable(test):
        raise ImportError(f"{path} has no function {TEST_FUNCTION}")
    return module


def _write_junit(junit: Path, classname: str, seconds: float, problem: tuple[str, str, str] | None) -> None:
    from autocoder.fsutil import atomic_write

    counts = {"failure": 0, "error": 0}
    if problem is not None:
        counts[problem[0]] = 1
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="autocoder-path-check",
        tests="1",
        failures=str(counts["failure"]),
        errors=str(counts["error"]),
        skipped="0",
        time=f"{seconds:.3f}",
    )
    case = ET.SubElement(suite, "testcase", classname=classname, name=TEST_FUNCTION, time=f"{seconds:.3f}")
    if problem is not None:
        kind, message, trace = problem
        ET.SubElement(case, kind, message=message[:2000]).text = trace
    junit.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(junit, ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n", durable=False)
