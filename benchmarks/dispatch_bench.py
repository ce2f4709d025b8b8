"""Where the two doit processes of a build from scratch lose time, an older commit against this
tree, alternating (issue 13: 100 components from scratch with `-n 2`).

Each build (`autocoder build DIR -n 2 --continue` with the scope tasks, run-cache off, a fresh
synthetic project) runs with doit's runner and a few Autocoder functions instrumented (this
script, started as the build's main with --as-build): every worker logs each task's start and
end, every wait of a task for another task's batch record (validate/siblings.py `wait_for_record`,
gen batches left out: the generators' order is the same on both sides) and every wait to get
the path tests' shared server (its lock and its boot, validate/shared_server.py). Per build:

- lost worker-seconds: gaps between one worker's tasks (doit's round trip through its main
  process) + each worker's idle tail (the build's last task end minus its own) + the waits for
  records + the waits for the server (the server's boot uses a core meanwhile: a cost only when
  nothing else runs beside it);
- the batches' sizes per tier (how many siblings each batch took);
- wall and CPU seconds (every process the build started), the span of the workers' tasks.

On a shared machine the seconds stretch with the load on both sides alike; the waits for
records are there or not. Compare the medians, old against new.

Usage: python benchmarks/dispatch_bench.py [--old COMMIT] [--components 100] [--rounds 3]
       [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCOPE = ["check", "ir", "gen", "lint", "typecheck", "test", "bench", "policy", "report"]


def as_build(out: str, argv: list[str]) -> int:
    """Run `autocoder` with `argv`, instrumented; each process logs to `out`.<pid>."""
    import doit.runner as runner

    import autocoder.validate.batch as batch
    import autocoder.validate.shared_server as shared
    import autocoder.validate.siblings as siblings

    files: dict[int, object] = {}

    def log(*fields: object) -> None:
        handle = files.get(os.getpid())
        if handle is None:
            handle = files[os.getpid()] = open(f"{out}.{os.getpid()}", "a", buffering=1)  # noqa: SIM115
        handle.write(" ".join(str(f) for f in fields) + "\n")  # type: ignore[attr-defined]

    execute = runner.Runner.execute_task

    def execute_task(self, task):  # type: ignore[no-untyped-def]
        started = time.time()
        try:
            return execute(self, task)
        finally:
            log("W", task.name, f"{started:.4f}", f"{time.time():.4f}")

    # siblings.py runs every tier's batches in this tree; an older tree's batch.py ran the test tier's
    wait = siblings.wait_for_record

    def wait_for_record(records, name, poll_s=batch.POLL_S):  # type: ignore[no-untyped-def]
        started = time.time()
        try:
            return wait(records, name, poll_s)
        finally:
            log("WAIT", f"{records.parent.name}:{name}", f"{started:.4f}", f"{time.time() - started:.4f}")

    server = shared.shared_server

    @contextlib.contextmanager
    def shared_server(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.time()
        with server(*args, **kwargs) as url:
            log("SRV", "-", f"{started:.4f}", f"{time.time() - started:.4f}")
            yield url

    found = getattr(batch, "_siblings", None)  # an older tree's test-tier search (this one: _pending)

    def _siblings(directory, group, own, records):  # type: ignore[no-untyped-def]
        chosen = found(directory, group, own, records)  # type: ignore[misc]
        log("BATCH", "test", len(chosen))
        return chosen

    pending = siblings._pending

    def _pending(directory, group, own, records):  # type: ignore[no-untyped-def]
        chosen = pending(directory, group, own, records)
        log("BATCH", group.tier, len(chosen))
        return chosen

    runner.Runner.execute_task = execute_task
    siblings.wait_for_record = wait_for_record
    if hasattr(batch, "wait_for_record"):  # an older tree
        batch.wait_for_record = wait_for_record
    shared.shared_server = shared_server
    siblings._pending = _pending
    if found is not None:
        batch._siblings = _siblings
    from autocoder.cli import main

    sys.argv = ["autocoder", *argv]
    return int(main() or 0)


def analyse(trace: str) -> dict:
    """The lost worker-seconds of one traced build (module docstring)."""
    rows = [line.split() for path in glob.glob(f"{trace}.*") for line in Path(path).read_text().splitlines()]
    workers: dict[str, list[tuple[float, float]]] = {}
    for path in glob.glob(f"{trace}.*"):
        spans = [line.split() for line in Path(path).read_text().splitlines() if line.startswith("W ")]
        if spans:
            workers[path] = sorted((float(s[2]), float(s[3])) for s in spans)
    start = min(s[0][0] for s in workers.values())
    end = max(s[-1][1] for s in workers.values())
    gaps = sum(w[k + 1][0] - w[k][1] for w in workers.values() for k in range(len(w) - 1))
    tail = sum(end - w[-1][1] for w in workers.values())
    waits = [float(r[3]) for r in rows if r[0] == "WAIT" and not r[1].startswith("gen-batch")]
    server = [float(r[3]) for r in rows if r[0] == "SRV"]
    sizes: dict[str, dict[str, int]] = {}
    for r in rows:
        if r[0] == "BATCH":
            tier = sizes.setdefault(r[1], {})
            tier[r[2]] = tier.get(r[2], 0) + 1
    return {
        "span_s": round(end - start, 2),
        "lost_worker_s": round(gaps + tail + sum(waits) + sum(server), 2),
        "gaps_s": round(gaps, 2),
        "tail_s": round(tail, 2),
        "record_waits_s": round(sum(waits), 2),
        "record_waits": len([w for w in waits if w > 0.01]),
        "server_waits_s": round(sum(server), 2),
        "batch_sizes": {
            tier: dict(sorted(found.items(), key=lambda kv: int(kv[0]))) for tier, found in sizes.items()
        },
    }


def build(tree: Path | None, components: int, workdir: Path) -> dict:
    from common import stop_background, tree_env

    from autocoder.synthetic import write_synthetic

    project = Path(tempfile.mkdtemp(dir=workdir))
    write_synthetic(project, components)
    trace = str(project.parent / f"{project.name}.trace")
    env = {k: v for k, v in tree_env(tree).items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            __file__,
            "--as-build",
            trace,
            "build",
            str(project),
            "-n",
            "2",
            "--continue",
            *SCOPE,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop_background(project)
    if run.returncode not in (0, 1):
        raise SystemExit(
            f"build in {project} ended {run.returncode}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        )
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 1), "exit": run.returncode, **analyse(trace)}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--as-build":
        raise SystemExit(as_build(sys.argv[2], sys.argv[3:]))
    from common import old_tree, write_comparison

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="b31a2dd", help="the commit to compare with")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dispatch_tail.json")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        tree = old_tree(Path(tmp), args.old)
        for which in (tree, None):  # each tree's machine-wide caches, published untimed
            build(which, 3, Path(tmp))
        for _ in range(args.rounds):
            for name, which in (("old", tree), ("new", None)):
                runs[name].append(build(which, args.components, Path(tmp)))
                loads.append(round(os.getloadavg()[0], 1))
                print(name, runs[name][-1], flush=True)
    keys = (
        "wall_s",
        "cpu_s",
        "span_s",
        "lost_worker_s",
        "gaps_s",
        "tail_s",
        "record_waits_s",
        "server_waits_s",
    )
    summary = {
        name: {k: statistics.median(r[k] for r in found) for k in keys} for name, found in runs.items()
    }
    write_comparison(args.out, args.old, loads, summary, runs, components=args.components, jobs=2)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
