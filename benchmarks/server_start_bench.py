"""The generated system's server from process start to ready, this tree against an older one.

For each tree, a 100-component synthetic project (autocoder/synthetic.py write_synthetic) is
built from scratch (`AUTOCODER_CACHE=off autocoder build DIR -n 2`, bytecode written as in a
user's build) with that tree's autocoder and runtime (common.old_tree, common.tree_env: its
runtime first on PYTHONPATH). Then, alternating the trees, --repeats times each, its
`python -m synthetic serve --host 127.0.0.1 --port 0 --ready-fd W` is started as
test:integration and the path tests' shared server start it (autocoder_runtime.testing
launch): on fresh data, with an API key and LOG_LEVEL=INFO. Measured per start:

- `ready_wall_s`: from just before the process is started to the line on its ready pipe;
- `ready_cpu_s`: the server's CPU seconds (user + system, every thread) at that moment,
  read from /proc (10 ms ticks);
- `total_cpu_s`: its CPU seconds over its whole life, start to exit after SIGTERM (the idle
  seconds and the stop included: the build pays them too), from wait4;
- `idle_cpu_ms_per_s`: its CPU milliseconds a second while it serves nothing, over --idle
  seconds after ready (a build's path-test server idles until the build ends), from the
  scheduler's per-thread counters (nanoseconds);
- `stop_wall_s`: from SIGTERM to its exit (uvicorn's graceful stop and the system's drain).

Medians per tree and their ratios (this tree / the old one); the machine's load average is
recorded (it is shared: compare ratios, CPU seconds are steadier than wall).

Usage: python benchmarks/server_start_bench.py [--old 4e0e687] [--components 100]
       [--repeats 5] [--idle 5] [--out benchmarks/results/server_start-s11.json]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import medians, old_tree, stop_background, tree_env, write_comparison

KEYS = ("ready_wall_s", "ready_cpu_s", "total_cpu_s", "idle_cpu_ms_per_s", "stop_wall_s")
TICK = os.sysconf("SC_CLK_TCK")
OUT = "server_start-s11.json"


def build(project: Path, tree: Path | None, components: int) -> Path:
    """The synthetic project built from scratch with `tree`'s autocoder (None: this one);
    its generated source folder. Its warm worker and mypy daemon are stopped after."""
    from autocoder.synthetic import write_synthetic

    write_synthetic(project, components)
    env = tree_env(tree)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's build writes bytecode
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "-n", "2"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    stop_background(project)
    if run.returncode != 0:
        raise SystemExit(f"build of {project} failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return project / "generated" / "src"


def cpu_now(pid: int) -> float:
    """CPU seconds (user + system, all threads) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def threads_cpu_ns(pid: int) -> int:
    """CPU nanoseconds the live threads of process `pid` have run so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total


def start_once(src: Path, tree: Path | None, data: Path, log: Path, idle_s: float) -> dict[str, float]:
    """One `serve` of the system under `src` with `tree`'s runtime: the figures of KEYS."""
    env = tree_env(tree)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("SERVE_ONLY", None)
    paths = [str(src), *([env["PYTHONPATH"]] if tree is not None else [])]
    env.update(
        {"PYTHONPATH": os.pathsep.join(paths), "DATA_DIR": str(data), "API_KEY": "k", "LOG_LEVEL": "INFO"}
    )
    read, write = os.pipe()
    command = [sys.executable, "-m", "synthetic", "serve", "--host", "127.0.0.1", "--port", "0"]
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [*command, "--ready-fd", str(write)], env=env, cwd=src, stdout=out, stderr=out, pass_fds=(write,)
        )
        os.close(write)
        with os.fdopen(read, "rb") as ready:
            line = ready.readline()
        wall = time.perf_counter() - start
        cpu = cpu_now(process.pid) if line else 0.0
        idle = 0.0
        if line and idle_s > 0:
            before, since = threads_cpu_ns(process.pid), time.perf_counter()
            time.sleep(idle_s)
            idle = (threads_cpu_ns(process.pid) - before) / 1e6 / (time.perf_counter() - since)
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(process.pid, 0)
        stop = time.perf_counter() - stopping
        process.returncode = os.waitstatus_to_exitcode(status)
    if not line:
        raise SystemExit(f"the server did not become ready:\n{log.read_text()[-3000:]}")
    if '"undrained": 0' not in log.read_text():
        raise SystemExit(f"the server did not stop cleanly:\n{log.read_text()[-3000:]}")
    return {
        "ready_wall_s": round(wall, 4),
        "ready_cpu_s": round(cpu, 3),
        "total_cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
        "idle_cpu_ms_per_s": round(idle, 3),
        "stop_wall_s": round(stop, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="4e0e687")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle after ready (0: none)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="server-start-") as tmp:
        work = Path(tmp)
        trees = {"old": old_tree(work, args.old), "new": None}
        sources = {name: build(work / f"p-{name}", tree, args.components) for name, tree in trees.items()}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        loads = [round(os.getloadavg()[0], 2)]
        for round_ in range(args.repeats):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                data = work / f"data-{name}-{round_}"
                log = work / f"server-{name}-{round_}.log"
                runs[name].append(start_once(sources[name], trees[name], data, log, args.idle))
            loads.append(round(os.getloadavg()[0], 2))
    summary = medians(runs, KEYS, 4)
    summary["ratio_new_old"] = {
        key: round(summary["new"][key] / summary["old"][key], 3) for key in KEYS if summary["old"][key]
    }
    write_comparison(
        args.out, args.old, loads, summary, runs, components=args.components, repeats=args.repeats
    )


if __name__ == "__main__":
    main()
