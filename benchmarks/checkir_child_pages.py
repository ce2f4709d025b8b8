"""How much of the warm worker's `check` child is copy-on-write: its CPU seconds and minor page
faults after a one-component edit, cold (as the worker's children run: every page it writes is
first copied from the worker's) and warm (the same work again in the same child, on pages it
has already copied).

One interpreter does what the warm worker does before it serves (warm_compile.warm_up, then
gc.freeze) in a built copy of a project; per edit (benchmarks/edit_profile.py's) it forks a
child that runs warm_compile.check_child on the edited blueprint (cold), then writes the
blueprint back as it was before the edit and runs check_child again (warm: the child's memo
now holds the edited text, so this compile too differs from it in one component), then
restores the edit. The difference between the two is what the child pays for the pages it
shares with the worker: the reference counts it writes of objects it reads and the worker's
free memory it allocates in.

Usage: python benchmarks/checkir_child_pages.py PROJECT [--edits 6] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import machine, write_results
from common import medians as median_of

HERE = Path(__file__).resolve().parent

CHILD = """
import gc, json, os, resource, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from edit_profile import edit
from autocoder.tasks import compile_tasks, warm_compile
project = Path({project!r})
arch = project / "architecture.yaml"
warm_compile.warm_up(project)
gc.collect()
gc.freeze()

def measured():
    compile_tasks._COMPILED.clear()
    faults, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    outcome, planned = warm_compile.check_child(project, False)
    return {{
        "cpu_s": round(time.process_time() - cpu, 4),
        "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
        "passed": outcome.failure is None and planned is not None,
    }}

for _ in range({edits}):
    before = arch.read_text()
    edit(arch)
    edited = arch.read_text()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        cold = measured()
        arch.write_text(before)
        warm = measured()
        arch.write_text(edited)
        os.write(write, json.dumps({{"cold": cold, "warm": warm}}).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(os.read(read, 4096).decode(), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--edits", type=int, default=6)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "checkir-child-pages.json")
    args = parser.parse_args()
    project = args.project.resolve()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    loads = [round(os.getloadavg()[0], 1)]
    code = CHILD.format(here=str(HERE), project=str(project), edits=args.edits)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    loads.append(round(os.getloadavg()[0], 1))
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    runs = {"cold": [r["cold"] for r in rows], "warm": [r["warm"] for r in rows]}
    medians = median_of(runs, ("cpu_s", "minor_faults"))
    write_results(
        args.out,
        {
            "machine": machine(),
            "project": project.name,
            "load_average_1m": loads,
            "all_passed": all(r["passed"] for rs in runs.values() for r in rs),
            "median": medians,
            "copy_on_write_share_of_cpu": round(1 - medians["warm"]["cpu_s"] / medians["cold"]["cpu_s"], 3),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
