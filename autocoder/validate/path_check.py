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
import time
import traceback
import xml.etree.ElementTree as ET  # noqa: N817 - writes our own JUnit file
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autocoder.validate.testing import TestResult, parse_junit

TEST_FUNCTION = "test_path"


def run_path_check(src: Path, test_file: str, url: str, junit: Path) -> TestResult:
    """`test_path` of the generated `src/test_file` against the system at `url`; its verdict in
    `junit` (xunit2, one test case) and returned. A failed assertion is a failure, any other
    exception (the file does not load, the server does not answer) an error."""
    import httpx

    classname = test_file.removesuffix(".py").replace("/", ".")
    started = time.perf_counter()
    problem: tuple[str, str, str] | None = None
    try:
        test = _load(src / test_file, classname)
        with httpx.Client(base_url=url, timeout=10) as client:
            test(client)
    except AssertionError as exc:
        problem = ("failure", str(exc) or "assertion failed", traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - whatever the test raised is its verdict
        problem = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
    _write_junit(junit, classname, time.perf_counter() - started, problem)
    return parse_junit(junit)


def _load(path: Path, name: str) -> Callable[[Any], object]:
    """The test function of the file at `path` (loaded under a module name of its own, not
    registered: the build never imports it any other way)."""
    spec = importlib.util.spec_from_file_location(f"_autocoder_path_check.{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    test = getattr(module, TEST_FUNCTION, None)
    if not callable(test):
        raise ImportError(f"{path} has no function {TEST_FUNCTION}")
    return test  # type: ignore[no-any-return]


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
