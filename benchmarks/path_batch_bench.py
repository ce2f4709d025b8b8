"""The path tests of a build from scratch, an older Autocoder against this tree, alternating
(issue 13, item 4: the `test:path.*` tasks' seconds).

In an already built synthetic project (autocoder/synthetic.py; build it first), each run does
what `doit -n 2` does with the path tests of a build from scratch: every path's record of a
passing run and every path's result are removed (so the shared server serves every path's
components, and a batch may take every path along), then two worker processes run the path
tasks' actions as the tree's task generator makes them (autocoder/tasks/validate_tasks.py
`_path_tasks`: `run_path_test`, with its batching group where the tree has one), dealt in
turn, against the one server the first of them starts (validate/shared_server.py), and the
teardown stops it. A run where a path test failed is recorded as failed (the worker's last
line) and left out of the medians. Per run: the sum of the actions' seconds (what doit's
reporter counts as the path tasks' time), the slowest one (the first: it waits for the
server's start), the sum without it, and the wall time of the two workers. The trees take
turns (--rounds each; the old one from `--old COMMIT` via common.old_tree, with its own
runtime, which its server runs too), so a busy machine slows both alike: compare the ratios.

Usage: python benchmarks/path_batch_bench.py PROJECT [--old COMMIT] [--rounds 3] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import machine, old_tree, tree_env, write_results

WORKER = r"""
import json, sys, time
from pathlib import Path
from typing import Any
import autocoder_runtime.testing  # noqa: F401 - the doit worker has it (validate/testing.py preload)
from autocoder.tasks import validate_tasks as v
directory, system, build, ids = Path(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
# each task's action as the tree's task generator makes it (with its batching group, if any)
actions = {t["name"]: t["actions"][0] for t in v._path_tasks(directory, system, build)}
seconds = {}
for path_id in ids:
    start = time.perf_counter()
    function, arguments = actions[f"path.{path_id}"]
    failed = function(*arguments)
    seconds[path_id] = time.perf_counter() - start
    assert failed is None, failed
print(json.dumps(seconds))
"""

TASKS = r"""
import sys
from pathlib import Path
from autocoder.tasks import validate_tasks as v
list(v._path_tasks(Path(sys.argv[1]), sys.argv[2], "warm-up"))
"""

STOP = r"""
import sys
from pathlib import Path
from typing import Any
from autocoder.tasks import validate_tasks as v
v.stop_shared_server(Path(sys.argv[1]), sys.argv[2])
"""


def path_ids(project: Path) -> list[str]:
    return sorted(
        p.stem.removeprefix("test_") for p in (project / "generated/src/tests/paths").glob("test_*.py")
    )


def one_run(project: Path, env: dict[str, str], system: str) -> dict[str, Any]:
    """The path actions of a build from scratch in two workers: sum, max and wall seconds."""
    for record in (project / "generated/.cache/paths").glob("path.*.inputs.json"):
        record.unlink()  # as from scratch: no path passed yet
    for result in (project / "generated/reports/test").glob("path.*.json"):
        result.unlink()  # nor has a result: the tests a batch may take along (validate/siblings.py)
    ids, build = path_ids(project), uuid.uuid4().hex
    # doit makes the tasks once, before its workers fork: here the first making writes the
    # validation fingerprint file, which the two workers would otherwise both write at once
    subprocess.run([sys.executable, "-c", TASKS, str(project), system], cwd=project, env=env, check=True)
    start = time.perf_counter()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(project), system, build, json.dumps(ids[i::2])],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    seconds: dict[str, float] = {}
    failed: list[str] = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        if worker.returncode != 0:  # a path test failed: its last line
            failed.append(err.strip().splitlines()[-1][:300] if err.strip() else "no output")
        else:
            seconds.update(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - start
    subprocess.run([sys.executable, "-c", STOP, str(project), build], cwd=project, env=env, check=True)
    if failed:  # the run counts as failed, its seconds not at all
        return {"failed": failed}
    return {
        "sum_s": sum(seconds.values()),
        "max_s": max(seconds.values()),
        "sum_but_max_s": sum(seconds.values()) - max(seconds.values()),
        "wall_s": wall,
        "paths": len(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--old", default="02e648d")
    parser.add_argument("--system", default="synthetic")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "path_batch-100.json")
    args = parser.parse_args()
    project = args.project.resolve()
    with tempfile.TemporaryDirectory(prefix="path-batch-") as work:
        trees = {"old": tree_env(old_tree(Path(work), args.old)), "new": tree_env(None)}
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        loads = [round(os.getloadavg()[0], 2)]
        for _ in range(args.rounds):
            for name, env in trees.items():
                run = one_run(project, env, args.system)
                run["load_1m"] = round(os.getloadavg()[0], 2)
                runs[name].append({k: round(v, 4) if isinstance(v, float) else v for k, v in run.items()})
                print(name, runs[name][-1], file=sys.stderr)
        loads.append(round(os.getloadavg()[0], 2))
    medians = {
        name: {
            key: round(statistics.median(r[key] for r in found if "failed" not in r), 4)
            for key in ("sum_s", "max_s", "sum_but_max_s", "wall_s")
        }
        for name, found in runs.items()
    }
    write_results(
        args.out,
        {
            "project": project.name,
            "old": args.old,
            "rounds": args.rounds,
            "load_average_1m": loads,
            "machine": machine(),
            "runs": runs,
            "failed_runs": {name: sum("failed" in r for r in found) for name, found in runs.items()},
            "medians": medians,
            "ratio_new_over_old": {
                key: round(medians["new"][key] / medians["old"][key], 3)
                for key in ("sum_s", "sum_but_max_s", "wall_s")
            },
        },
    )


if __name__ == "__main__":
    main()
