"""autocoder_runtime.testing.check_path, the body every generated path test calls, against a real
HTTP server on 127.0.0.1 that answers as a generated system does (the routes, /metrics,
/dead-letters, a store's records by key)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from autocoder_runtime.testing import PathCase, check_path, check_paths, received, wait_received

HEADERS = {"X-API-Key": "k"}
ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [("POST", "/readings", "api_key", {"sensor": "s1"})]


class FakeSystem(ThreadingHTTPServer):
    """What the checks read: messages `end` received, records by key, dead letters."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received = 0
        self.records: dict[str, dict[str, Any]] = {}
        self.dead: list[dict[str, Any]] = []
        self.dead_letter_from: str | None = None  # a component that dead-letters what is posted
        self.stored_as: dict[str, Any] | None = None  # what the store keeps instead of the body
        self.metric_queries: list[list[str]] = []  # the names each /metrics request asked for
        self.drop_next_get = False  # close the connection of the next GET without answering
        self.arrived: dict[str, int] = {}  # by end, for a body naming its `ends` (check_paths)
        self.lost: set[str] = set()  # ends no message reaches
        self.once: set[str] = set()  # ends only the first message reaches


class Handler(BaseHTTPRequestHandler):
    server: FakeSystem

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - the http.server interface
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        trace = self.headers["X-Trace-Id"]
        system = self.server
        if "ends" in body:  # to every end it names, as one ingress feeds several paths
            for end in body["ends"]:
                if end == system.dead_letter_from:
                    system.dead.append({"component": end, "trace_id": trace})
                elif end not in system.lost and not (end in system.once and end in system.arrived):
                    system.arrived[end] = system.arrived.get(end, 0) + 1
                    system.records[body["sensor"]] = body
        elif system.dead_letter_from:
            system.dead.append({"component": system.dead_letter_from, "trace_id": trace})
        else:
            system.received += 1
            system.records[body["sensor"]] = system.stored_as or body
        self._send(202, json.dumps({"accepted": True, "trace_id": trace}).encode())

    def do_GET(self) -> None:  # noqa: N802
        system = self.server
        if system.drop_next_get:  # closed without an answer, as a keep-alive timeout does
            system.drop_next_get = False
            self.close_connection = True
            return
        if self.path.partition("?")[0] == "/metrics":
            system.metric_queries.append(parse_qs(urlsplit(self.path).query).get("name[]", []))
            text = f'sys_messages_received_total{{component="log"}} {system.received}\nsys_inbox_backlog 0\n'
            for end, count in system.arrived.items():
                text += f'sys_messages_received_total{{component="{end}"}} {count}\n'
            self._send(200, text.encode(), "text/plain")
        elif self.path.startswith("/dead-letters"):
            self._send(200, json.dumps({"items": system.dead}).encode())
        elif self.path.count("/") == 2 and self.path.rpartition("/")[2] in system.records:
            self._send(200, json.dumps(system.records[self.path.rpartition("/")[2]]).encode())
        else:
            self._send(404, b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def system() -> Iterator[tuple[FakeSystem, httpx.Client]]:
    server = FakeSystem()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}", timeout=5) as client:
        yield server, client
    server.shutdown()
    server.server_close()


def check(client: httpx.Client, *, records: list[tuple[str, str, float]], arrives: bool) -> None:
    check_path(
        client,
        name="sys",
        start="api",
        end="log",
        components=["api", "log"],
        headers=HEADERS,
        routes=ROUTES,
        records=records,
        arrives=arrives,
        wait_s=0.3,
    )


def test_a_message_that_arrives_and_is_recorded_passes(system):
    server, client = system
    check(client, records=[("/readings", "sensor", 0.3)], arrives=True)
    check(client, records=[], arrives=False)
    assert server.received == 2


def test_a_dead_letter_on_the_path_fails_naming_it(system):
    server, client = system
    server.dead_letter_from = "log"
    with pytest.raises(AssertionError, match="'component': 'log'"):
        check(client, records=[], arrives=False)


def test_a_message_that_never_arrives_fails(system):
    server, client = system
    server.dead_letter_from = "elsewhere"  # not on the path: only the missing arrival fails
    with pytest.raises(AssertionError, match="nothing reached log"):
        check(client, records=[], arrives=True)


def test_a_record_other_than_the_message_fails(system):
    server, client = system
    server.stored_as = {"sensor": "other"}
    with pytest.raises(AssertionError, match="log holds"):
        check(client, records=[("/readings", "sensor", 0.3)], arrives=False)


def test_the_checks_ask_metrics_only_for_the_samples_they_read(system):
    """Every /metrics request names what it reads (`?name[]=`): a 100-component system's whole
    text costs its server tens of milliseconds per poll (benchmarks/path_test_profile.py)."""
    server, client = system
    check(client, records=[], arrives=True)
    check(client, records=[], arrives=False)
    assert server.metric_queries
    assert {name for names in server.metric_queries for name in names} == {
        "sys_messages_received_total",
        "sys_inbox_backlog",
    }
    assert all(server.metric_queries)


def test_a_wait_stays_bounded_by_its_time(system):
    """The polls back off, but a wait that never succeeds still ends at its limit, and asks
    more than once meanwhile (first after 5 ms)."""
    server, client = system
    server.dead_letter_from = "elsewhere"  # nothing ever reaches the end
    started = time.monotonic()
    assert wait_received(client, "sys", "log", HEADERS, 0.0, 0.3) == 0.0
    assert time.monotonic() - started >= 0.3
    assert len(server.metric_queries) >= 4  # 5, 10, 20, 40, 50... ms: several looks in 0.3 s


def test_a_get_whose_connection_the_server_closed_unanswered_is_asked_again(system):
    server, client = system
    server.received = 3
    server.drop_next_get = True
    assert received(client, "sys", "log", HEADERS) == 3.0
    assert not server.drop_next_get and len(server.metric_queries) == 1


ENDS = ["a", "b", "c", "d"]


def case(end: str, *, arrives: bool = True, records: bool = False) -> PathCase:
    """A path from `api` to `end`; every case posts the same message, which reaches every end."""
    return PathCase(
        name="sys",
        start="api",
        end=end,
        components=["api", end],
        headers=HEADERS,
        routes=[("POST", "/readings", "api_key", {"sensor": "s1", "ends": ENDS})],
        records=[("/readings", "sensor", 0.3)] if records else [],
        arrives=arrives,
        wait_s=0.3,
    )


def test_paths_checked_together_pass_as_each_alone_does(system):
    server, client = system
    cases = [case("a", records=True), case("b"), case("c", arrives=False)]
    assert check_paths(client, cases) == [None, None, None]
    assert server.arrived == {"a": 3, "b": 3, "c": 3, "d": 3}  # each case's message
    # the counts before, then one request per poll for every case's end and the backlog
    assert {name for names in server.metric_queries for name in names} == {
        "sys_messages_received_total",
        "sys_inbox_backlog",
    }
    assert len(server.metric_queries) <= 3


def test_paths_checked_together_fail_as_each_alone_fails(system):
    """A dead letter on one case's components under its trace, a message that never reaches an
    end it must reach: those cases fail, with check_path's reasons (which a lone run gives);
    the others pass."""
    server, client = system
    server.dead_letter_from = "b"
    server.lost = {"c"}
    verdicts = check_paths(client, [case("a"), case("b", arrives=False), case("c"), case("d", arrives=False)])
    assert verdicts[0] is None and verdicts[3] is None
    assert verdicts[1] is not None and "'component': 'b'" in verdicts[1]
    assert verdicts[2] == "nothing reached c"
    for path, says in ((case("b", arrives=False), "'component': 'b'"), (case("c"), "nothing reached c")):
        with pytest.raises(AssertionError, match=says):
            check_path(client, **path.__dict__)


def test_an_end_must_take_in_every_message_of_the_round(system):
    """The cases' messages are alike: where one must arrive, all must. An end that took in one
    of two fails the round's case, though one message would pass a lone check."""
    server, client = system
    server.once = {"b"}
    assert check_paths(client, [case("a"), case("b")]) == [None, "nothing reached b"]


def test_paths_checked_together_post_alike_to_their_own_ends(system):
    _, client = system
    with pytest.raises(ValueError, match="an end of its own"):
        check_paths(client, [case("a"), case("a")])
    other = PathCase(**{**case("b").__dict__, "routes": [("POST", "/other", "api_key", {"sensor": "s2"})]})
    with pytest.raises(ValueError, match="same system, headers and routes"):
        check_paths(client, [case("a"), other])
    with pytest.raises(ValueError, match="routes"):
        check_paths(client, [PathCase(**{**case("a").__dict__, "routes": []})])
    assert check_paths(client, []) == []
