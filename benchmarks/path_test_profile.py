"""Where one path test's time goes in a build from scratch (issue 13, item 4).

In an already built synthetic project (autocoder/synthetic.py; build it first), the shared
path-test server (validate/shared_server.py) is launched as a build from scratch launches it
(every path's components), then every path test runs one after the other the way the build
runs it (validate/path_check.py `PathCheck`: load the generated file, a new httpx client,
`test_path`), with its phases timed from outside, not changed:

- `load_s`: importing the test's file; `client_s`: making its httpx client (or, where
  path_check shares one per process, getting it);
- in `check_path` (runtime/autocoder_runtime/testing.py), each top-level helper's seconds:
  `received` (the count before), the POSTs (`request`), the waits (`wait_for`,
  `wait_received`, `wait_settled`), `dead_letters`; with how many HTTP requests each made,
  what they cost the client in all, and how many `time.sleep` calls and seconds the polls slept;
- `floor_s`: for the same path right after, how long its POST takes to reach its end when
  polled every 2 ms (the server's own processing, not the test's polling).

Medians and sums over the paths, and the load average, go to the results file.

Usage: python benchmarks/path_test_profile.py PROJECT [--rounds 2] [--out F]
"""

from __future__ import annotations

import argparse
import collections
import functools
import statistics
import sys
import time
import types
import uuid
from pathlib import Path
from typing import Any

from common import machine, write_results

PHASES = ("received", "request", "wait_for", "wait_received", "wait_settled", "dead_letters")


class Meter:
    """Seconds and HTTP requests per top-level phase of one `check_path`, plus sleeps."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()
        self.http_s = 0.0
        self.sleeps = 0
        self.slept_s = 0.0
        self.phase: str | None = None

    def wrap(self, name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.phase is not None:  # nested (wait_received calls received): the outer's
                return fn(*args, **kwargs)
            self.phase, start = name, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.phase = None

        return timed


def instrument(meter: Meter) -> None:
    import autocoder_runtime.testing as testing
    import httpx

    for name in ("received", "wait_for", "wait_received", "wait_settled", "dead_letters"):
        setattr(testing, name, meter.wrap(name, getattr(testing, f"_orig_{name}")))
    send = httpx.Client._orig_send  # type: ignore[attr-defined]

    def counted_send(client: Any, request: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return send(client, request, **kwargs)
        finally:
            meter.http_s += time.perf_counter() - start
            meter.requests[meter.phase or "request"] += 1
            if meter.phase is None:
                meter.seconds["request"] += time.perf_counter() - start

    httpx.Client.send = counted_send  # type: ignore[method-assign]
    sleep = time._orig_sleep  # type: ignore[attr-defined]

    def counted_sleep(seconds: float) -> None:
        meter.sleeps += 1
        meter.slept_s += seconds
        sleep(seconds)

    testing.time.sleep = counted_sleep  # type: ignore[attr-defined]


def originals() -> None:
    import autocoder_runtime.testing as testing
    import httpx

    for name in ("received", "wait_for", "wait_received", "wait_settled", "dead_letters"):
        setattr(testing, f"_orig_{name}", getattr(testing, name))
    httpx.Client._orig_send = httpx.Client.send  # type: ignore[attr-defined]
    time._orig_sleep = time.sleep  # type: ignore[attr-defined]


def floor(url: str, system: str, module: Any) -> float | None:
    """Seconds from the path's POST until it is done with as the test sees it (its end's
    received count rises, or the inbox backlog is back at 0), asked every 2 ms in one small
    /metrics request each: the server's own processing, not the test's polling (None for a
    path from a source: nothing is posted)."""
    import httpx

    if not module.ROUTES:
        return None
    received = f'{system}_messages_received_total{{component="{module.END}"}}'
    backlog = f"{system}_inbox_backlog"

    def counts(client: httpx.Client) -> tuple[float, float]:
        found = {received: 0.0, backlog: 0.0}
        text = client.get(
            "/metrics", headers=module.HEADERS, params={"name[]": [received.split("{")[0], backlog]}
        )
        for line in text.text.splitlines():
            for sample in found:
                if line.startswith(f"{sample} "):
                    found[sample] = float(line[len(sample) + 1 :])
        return found[received], found[backlog]

    with httpx.Client(base_url=url, timeout=10, verify=False) as client:  # noqa: S501 - plain HTTP on 127.0.0.1
        before = counts(client)[0]
        method, path, _auth, body = module.ROUTES[0]
        start = time.perf_counter()
        client.request(
            method, path, json=body, headers={**module.HEADERS, "X-Trace-Id": f"floor-{uuid.uuid4().hex}"}
        )
        deadline = start + module.WAIT_S
        while time.perf_counter() < deadline:
            count, left = counts(client)
            if count > before or left == 0:
                return time.perf_counter() - start
            time._orig_sleep(0.002)  # type: ignore[attr-defined]
    return None


def profile(project: Path, rounds: int) -> dict[str, Any]:
    import httpx

    from autocoder.flowpaths import path_test_file
    from autocoder.tasks import validate_tasks as v
    from autocoder.tasks.compile_tasks import blueprint_outline, project_paths
    from autocoder.validate import path_check
    from autocoder.validate.shared_server import shared_server, stop_shared_server

    originals()
    system = blueprint_outline(project)[0]  # type: ignore[index]
    paths = list(project_paths(project))
    wanted = sorted({c for p in paths for c in p.components})
    rows: list[dict[str, Any]] = []
    server_s = 0.0
    for round_ in range(rounds):
        build = uuid.uuid4().hex
        start = time.perf_counter()
        with shared_server(project, system, build, wanted, lambda: wanted) as url:
            server_s = time.perf_counter() - start
            for path in paths:
                meter = Meter()
                instrument(meter)
                total = time.perf_counter()
                check = path_check.PathCheck(project / v.SRC, path_test_file(path.id))
                check.load()
                assert check.test is not None, check.problem
                started = time.perf_counter()
                shared = getattr(path_check, "client", None)  # this tree: one client per process
                client = shared(url) if shared else httpx.Client(base_url=url, timeout=10)
                client_s = time.perf_counter() - started
                check.test(client)
                if not shared:
                    client.close()
                total_s = time.perf_counter() - total
                module = types.SimpleNamespace(**check.test.__globals__)
                rows.append(
                    {
                        "round": round_,
                        "path": path.id,
                        "components": len(path.components),
                        "total_s": total_s,
                        "load_s": check.load_s,
                        "client_s": client_s,
                        **{f"{k}_s": meter.seconds.get(k, 0.0) for k in PHASES},
                        **{f"{k}_requests": meter.requests.get(k, 0) for k in PHASES},
                        "http_s": meter.http_s,
                        "sleeps": meter.sleeps,
                        "slept_s": meter.slept_s,
                        "floor_s": floor(url, system, module),
                    }
                )
                print(round_, path.id, round(rows[-1]["total_s"], 3), rows[-1]["floor_s"], file=sys.stderr)
        stop_shared_server(project, build)
    return {"server_start_s": round(server_s, 4), "rows": rows}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in rows[0] if k not in ("round", "path")]
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in rows if r[key] is not None]
        if values:
            out[key] = {
                "median": round(statistics.median(values), 4),
                "sum": round(sum(values), 4),
                "max": round(max(values), 4),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "path_test_profile-100.json"
    )
    args = parser.parse_args()
    load = [round(x, 2) for x in __import__("os").getloadavg()[:1]]
    found = profile(args.project.resolve(), args.rounds)
    load.append(round(__import__("os").getloadavg()[0], 2))
    rows = found["rows"]
    result = {
        "project": args.project.name,
        "paths": len({r["path"] for r in rows}),
        "rounds": args.rounds,
        "load_average_1m": load,
        "machine": machine(),
        "server_start_s": found["server_start_s"],
        "per_path": summary(rows),
        "by_kind": {
            kind: summary([r for r in rows if r["path"].split("__")[1].rstrip("0123456789") == kind])
            for kind in sorted({r["path"].split("__")[1].rstrip("0123456789") for r in rows})
        },
    }
    write_results(args.out, result)
    print({k: v["median"] for k, v in result["per_path"].items() if k.endswith(("_s", "requests", "sleeps"))})


if __name__ == "__main__":
    main()
