"""A path test called in the build's worker (autocoder.validate.path_check): its verdict and
JUnit file, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autocoder.validate.path_check import PathCheck, run_path_batch, run_path_check
from autocoder.validate.testing import parse_junit


class Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        body = b'{"value": 1}'
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def check(tmp_path: Path, url: str, body: str):
    test = tmp_path / "tests" / "paths" / "test_a__b.py"
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(body)
    junit = tmp_path / "junit" / "path.a__b.xml"
    return run_path_check(tmp_path, "tests/paths/test_a__b.py", url, junit), junit


def test_a_passing_path_test_is_one_passed_case(tmp_path, url):
    result, junit = check(
        tmp_path, url, 'def test_path(system):\n    assert system.get("/ok").json() == {"value": 1}\n'
    )
    assert result.ok and result.tests == 1 and not result.failed
    assert (
        parse_junit(junit).tests == 1
        and 'classname="tests.paths.test_a__b" name="test_path"' in junit.read_text()
    )


def test_a_failed_assertion_is_a_failure_with_its_message(tmp_path, url):
    body = (
        "def test_path(system):\n"
        '    r = system.get("/missing")\n'
        '    assert r.status_code == 200, f"got {r.status_code}"\n'
    )
    result, junit = check(tmp_path, url, body)
    assert not result.ok and result.failures == 1
    assert result.failed == [
        {"test": "tests.paths.test_a__b::test_path", "kind": "failure", "message": "got 404"}
    ]
    assert "<failure" in junit.read_text()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('def test_path(system):\n    system.get("http://127.0.0.1:1/")\n', "ConnectError"),
        ("x = 1\n", "has no function test_path"),
        ("def test_path(system:\n", "SyntaxError"),
    ],
)
def test_anything_else_is_an_error(tmp_path, url, body, says):
    result, _ = check(tmp_path, url, body)
    assert not result.ok and result.errors == 1 and says in result.failed[0]["message"], result.failed


def test_a_path_check_loads_its_test_once_before_it_runs(tmp_path, url):
    """The build loads a path's test while the shared server starts (PathCheck.load), then
    runs it: the file is executed once, and its verdict is the same as a load-and-run."""
    test = tmp_path / "tests" / "paths" / "test_a__b.py"
    test.parent.mkdir(parents=True, exist_ok=True)
    loads = tmp_path / "loads"
    test.write_text(
        f"from pathlib import Path\nPath({str(loads)!r}).open('a').write('x')\n"
        'def test_path(system):\n    assert system.get("/ok").json() == {"value": 1}\n'
    )
    checked = PathCheck(tmp_path, "tests/paths/test_a__b.py")
    checked.load()
    checked.load()
    assert loads.read_text() == "x" and checked.test is not None and checked.problem is None
    result = checked.run(url, tmp_path / "junit" / "one.xml")
    assert loads.read_text() == "x"  # not loaded again
    assert result.ok and result.tests == 1
    again, _ = check(tmp_path, url, test.read_text())
    assert (again.ok, again.tests, again.failed) == (result.ok, result.tests, result.failed)


def test_a_test_that_does_not_load_is_an_error_when_it_runs(tmp_path, url):
    test = tmp_path / "tests" / "paths" / "test_a__b.py"
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text("raise RuntimeError('broken at import')\n")
    checked = PathCheck(tmp_path, "tests/paths/test_a__b.py")
    checked.load()  # does not raise: the run reports it
    assert checked.test is None and checked.problem is not None
    result = checked.run(url, tmp_path / "junit" / "one.xml")
    assert not result.ok and result.errors == 1
    assert "RuntimeError: broken at import" in result.failed[0]["message"]


def test_the_path_tests_of_a_process_share_one_client_per_server(tmp_path, url):
    """One client per process and server (a new one costs ~0.1 s): the same for every check
    against `url`, a new one once the build's server stopped (close_clients), and only for a
    server on 127.0.0.1."""
    from autocoder.validate.path_check import client, close_clients

    first = client(url)
    assert client(url) is first
    for _ in range(2):
        result, _ = check(
            tmp_path, url, 'def test_path(system):\n    assert system.get("/ok").json() == {"value": 1}\n'
        )
        assert result.ok
    assert client(url) is first and not first.is_closed
    close_clients()
    assert first.is_closed
    second = client(url)
    assert second is not first and second.get("/ok").json() == {"value": 1}
    close_clients()
    with pytest.raises(ValueError, match="127.0.0.1"):
        client("http://example.com:80")


GENERATED_FORM = """
from autocoder_runtime.testing import check_path

SYSTEM = "sys"
START = "api"
END = "log"
COMPONENTS = ["api", "log"]
HEADERS = {"X-API-Key": "k"}
ROUTES = [("POST", "/readings", "api_key", {"sensor": "s1"})]
RECORDS = []
ARRIVES = True
WAIT_S = 0.2


def test_path(system):
    check_path(
        system,
        name=SYSTEM,
        start=START,
        end=END,
        components=COMPONENTS,
        headers=HEADERS,
        routes=ROUTES,
        records=RECORDS,
        arrives=ARRIVES,
        wait_s=WAIT_S,
    )
"""


def path_check(tmp_path: Path, body: str) -> PathCheck:
    test = tmp_path / "tests" / "paths" / "test_a__b.py"
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(body)
    return PathCheck(tmp_path, "tests/paths/test_a__b.py")


def test_a_generated_path_test_gives_its_check_path_arguments_for_a_batch(tmp_path):
    case = path_check(tmp_path, GENERATED_FORM).case()
    assert case is not None
    assert (case.name, case.end, case.components, case.arrives, case.wait_s) == (
        "sys",
        "log",
        ["api", "log"],
        True,
        0.2,
    )
    assert case.routes == [("POST", "/readings", "api_key", {"sensor": "s1"})]


@pytest.mark.parametrize(
    "change",
    [
        ("        wait_s=WAIT_S,\n", "        wait_s=1.0,\n"),  # not its constant
        ("        arrives=ARRIVES,\n", ""),  # an argument left out
        ("def test_path(system):\n", "def test_path(system):\n    assert system.get('/ok')\n"),  # more
    ],
)
def test_a_path_test_that_does_more_or_other_than_the_generated_call_is_never_batched(tmp_path, url, change):
    """A batch checks exactly what the generated call of check_path would; any other test (an
    edited file) is left out of it, to run alone."""
    check = path_check(tmp_path, GENERATED_FORM.replace(*change))
    assert check.case() is None
    assert run_path_batch({"path.a__b": check}, url) == {}


def test_paths_through_a_breaker_or_a_tight_rate_limit_are_not_batched(tmp_path: Path):
    """A round posts one message per path, all fanning out alike: a circuit breaker could open,
    or a rate limit's bucket empty, on the round's messages where the lone test's one passes
    (the webhooks example's billing_hook breaker did). Such paths are run alone."""
    import shutil
    import subprocess
    import sys

    import yaml

    from autocoder.tasks.validate_tasks import _stateful

    example = Path(__file__).parent.parent / "examples" / "webhooks"
    project = tmp_path / "webhooks"
    project.mkdir()
    shutil.copy(example / "deployment.yaml", project)
    arch = yaml.safe_load((example / "architecture.yaml").read_text())
    for component in arch["components"]:
        if component["name"] == "normalise":  # tighter than the kernel's default (burst 1000)
            component["capabilities"] = {"rate_limit": {"rate": 5, "burst": 2}}
        if component["name"] == "event_log":  # as loose as the default: no state that matters
            component["capabilities"] = {"rate_limit": {"rate": 1000, "burst": 1000}}
    (project / "architecture.yaml").write_text(yaml.safe_dump(arch, sort_keys=False))
    build = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "check", "ir"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    everything = {"events_api", "normalise", "event_log", "billing_hook", "urgent_only", "pager_hook"}
    assert _stateful(project, everything) == {"normalise", "billing_hook", "pager_hook"}
    assert _stateful(project, {"missing"}) == {"missing"}  # no slice: run alone
