"""The test tier's run of one component's tests as an edit build does it, in a fresh process
(an edit build is one fresh `doit` process): in process (`preload`, then a forked child) against
the project's ready warm worker (validate/warm_worker.py), alternating, median of --rounds.

Each measured run is a new interpreter that imports the test tier and calls `run_tests` on the
component's generated test file, as `test:<component>` does; the figure is the seconds of that
call and of the whole process. A run served by the worker never imports pytest itself, which
is how each run is checked to have been served (or not). The worker is started the way a build
starts it (a rebuild's run in process), and waited for, before the rounds.

Usage: python benchmarks/warm_worker_bench.py PROJECT [--component trans_0] [--rounds 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_results
from common import medians as median_of

RUN = """
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from autocoder.validate.testing import run_tests
src, test_file, junit, scratch = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
call = time.perf_counter()
result = run_tests(src, test_file, junit, scratch)
print(json.dumps({"ok": result.ok, "tests": result.tests, "call_s": time.perf_counter() - call,
                  "served": "pytest" not in sys.modules}))
"""


def one_run(src: Path, test_file: str, work: Path, setting: str) -> dict:
    """One fresh interpreter running a script in the project as doit runs its dodo (sys.path[0]
    the script's folder, which nothing writes to: a folder on sys.path and its listing are part
    of the worker's key)."""
    junit, scratch, script = work / "junit.xml", work / "scratch", work / "runner" / "run_tests_once.py"
    if not script.exists():
        script.parent.mkdir()
        script.write_text(RUN)
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "AUTOCODER_WARM_WORKER": setting, "SQLITE_SYNCHRONOUS": "NORMAL"}
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, str(script), str(src), test_file, str(junit), str(scratch)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=src.parent.parent,  # the project, where doit runs
    )
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"the run failed:\n{run.stderr[-3000:]}")
    found = json.loads(run.stdout.strip().splitlines()[-1])
    if not found["ok"]:
        raise SystemExit(f"the component's tests failed: {found}")
    return {**found, "call_s": round(found["call_s"], 3), "process_s": round(wall, 3)}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("project", type=Path)
    parser.add_argument("--component", default="trans_0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "warm_worker.json")
    args = parser.parse_args()
    from autocoder.validate import warm_worker

    src = args.project.resolve() / "generated" / "src"
    test_file = f"tests/test_{args.component}.py"
    idle = "900"
    loads = [round(os.getloadavg()[0], 1)]
    runs: dict[str, list[dict]] = {"in_process": [], "worker": []}
    with tempfile.TemporaryDirectory(prefix="warm-bench-") as tmp:
        work = Path(tmp)
        (work / "junit.xml").write_text("")  # a rebuild: its run in process starts the worker
        one_run(src, test_file, work, idle)
        os.environ["AUTOCODER_WARM_WORKER"] = idle
        os.environ["SQLITE_SYNCHRONOUS"] = "NORMAL"
        sys.path[0] = str(work / "runner")  # as in the runs, for their key
        worker = warm_worker.worker_for(src, rebuild=False)
        deadline = time.monotonic() + 120
        while worker is not None and not worker.ready.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(args.rounds):
            runs["in_process"].append(one_run(src, test_file, work, "off"))
            runs["worker"].append(one_run(src, test_file, work, idle))
            loads.append(round(os.getloadavg()[0], 1))
    medians = median_of(runs, ("call_s", "process_s"), 3)
    result = {
        "machine": machine(),
        "project": args.project.name,
        "test_file": test_file,
        "rounds": args.rounds,
        "load_average_1m": {"min": min(loads), "max": max(loads), "per_round": loads},
        "served_by_the_worker": [r["served"] for r in runs["worker"]],
        "median": medians,
        "worker_vs_in_process_call": round(medians["worker"]["call_s"] / medians["in_process"]["call_s"], 2),
        "runs": runs,
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
