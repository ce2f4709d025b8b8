"""The type tier (`typecheck`: mypy over the generated package and its tests), an older Autocoder
against this tree, alternating in one run (issue: fast edits).

Each measurement is a fresh interpreter calling validate/types.py's `typecheck` on a project's
generated sources, as a build's typecheck action does: wall seconds of that call (mypy's import
included) and CPU seconds of the process, plus, for this tree, the CPU the project's mypy
daemon spent answering it (read from /proc: the daemon is not a child). Scenarios:
- `cold`: no project cache and no machine-wide cache (AUTOCODER_MYPY_CACHE=off): a machine's
  first project, or the first after mypy or the environment changed;
- `second_project`: no project cache; the machine-wide cache was published by another project
  (examples/orders, built first, not timed): third-party packages and the runtime are cached,
  the project's own modules are not;
- `after_runtime_change` (this tree only; the older one is `cold` then, its cache key held the
  runtime's fingerprint): the machine-wide cache is an earlier runtime's. Here the runtime did
  not really change, so this is a lower bound: a real change also re-checks the runtime's
  changed modules;
- `edit`: one component's logic rewritten (a different text each time) in a project checked
  before: the older tree runs mypy in process on its incremental cache; this tree asks the
  project's daemon, started by the rebuild before (set up untimed, waited for until ready).
The trees take turns, so a busy machine slows both alike: compare them by the ratio.

Usage: python benchmarks/typecheck_bench.py [--old COMMIT] [--components 100] [--rounds 2]
       [--edits 5] [--edit-project DIR ...] [--workdir DIR] [--out FILE]
(--edit-project: an already built project, e.g. 500 components, copied for each tree; only
its generated/src is used.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, old_tree, write_results

from autocoder.synthetic import write_synthetic

DRIVER = """
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from autocoder.validate.types import typecheck
src = Path(sys.argv[1])
findings = typecheck(src, sys.argv[2], src.parent / ".cache" / "mypy")
print(json.dumps({"s": time.perf_counter() - start, "findings": len(findings)}))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _daemon_cpu(src: Path) -> float:
    """CPU seconds so far of the project's mypy daemons (0 when none runs)."""
    total = 0.0
    for status in (src.parent / ".cache" / "dmypy").glob("*.json"):
        try:
            pid = json.loads(status.read_text())["pid"]
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, KeyError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run(tree: Path | None, src: Path, system: str, shared: str, daemon: str = "off") -> dict:
    """One typecheck in a fresh interpreter with `tree`'s autocoder (None: this one)."""
    env = {**os.environ, "AUTOCODER_MYPY_CACHE": shared, "AUTOCODER_MYPY_DAEMON": daemon}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    daemon_before, cpu = _daemon_cpu(src), _children_cpu()
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(src), system],
        env=env,
        cwd=src.parent.parent.parent,  # not a repository: `-c` puts the cwd first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu_s"] = round(_children_cpu() - cpu + _daemon_cpu(src) - daemon_before, 3)
    result["s"] = round(result["s"], 3)
    return result


def _build_sources(project: Path) -> None:
    """Generate a project's sources and tests (the `gen` tasks), nothing else."""
    env = {**os.environ, "AUTOCODER_CACHE": "off"}
    subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen", "-n", "2"],
        env=env,
        check=True,
        capture_output=True,
    )


def _system(src: Path) -> str:
    return next(p.parent.name for p in src.glob("*/app.py"))


def _forget(src: Path) -> None:
    """No project cache and no daemon (a daemon of this tree is stopped through its status)."""
    from autocoder.validate.mypy_daemon import Daemon

    folder = src.parent / ".cache" / "dmypy"
    for status in folder.glob("*.json") if folder.is_dir() else []:
        Daemon(src, folder, status.stem, (), (), 0, 0.0).stop()
    shutil.rmtree(src.parent / ".cache", ignore_errors=True)


def _edit(src: Path, round_: int) -> None:
    """Rewrite one transformer's expression to a text no earlier round wrote (its size changes)."""
    module = sorted((src / _system(src) / "components").glob("trans_*.py"))[0]
    text = module.read_text()
    module.write_text(re.sub(r"\* 1 \+ [0-9.]+", f"* 1 + 0.5{'1' * (round_ + 1)}", text, count=1))


def _wait_ready(src: Path) -> None:
    deadline = time.monotonic() + 300
    while not list((src.parent / ".cache" / "dmypy").glob("*.ready")):
        if time.monotonic() > deadline:
            raise SystemExit(f"{src}: the mypy daemon was not ready after 300 s")
        time.sleep(0.2)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--old", default="e7342bf")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--edit-project", type=Path, nargs="*", default=[])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "typecheck.json")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="typecheck-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    old = old_tree(workdir, args.old)
    trees: dict[str, Path | None] = {"old": old, "new": None}
    loads = [os.getloadavg()[0]]

    project = workdir / f"synthetic-{args.components}"
    write_synthetic(project, args.components)
    _build_sources(project)
    orders = workdir / "orders"
    ignored = shutil.ignore_patterns("generated", "deployments", "dist", ".doit.db")
    shutil.copytree(REPO / "examples" / "orders", orders, ignore=ignored)
    _build_sources(orders)
    copies = {}
    for name in trees:
        for source in [project, *args.edit_project]:
            copy = workdir / name / source.name / "generated" / "src"
            shutil.copytree(source / "generated" / "src", copy)
            copies[name, source.name] = copy
    shared = {name: str(workdir / name / "shared") for name in trees}
    for name, tree in trees.items():  # the other project publishes each tree's machine-wide cache
        orders_copy = workdir / name / "orders" / "generated" / "src"
        shutil.copytree(orders / "generated" / "src", orders_copy)
        run(tree, orders_copy, "orders", shared[name])
    loads.append(os.getloadavg()[0])

    results: dict[str, dict[str, list[dict]]] = {}
    src_of = {name: copies[name, project.name] for name in trees}
    system = _system(src_of["new"])
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in order:
            _forget(src_of[name])
            results.setdefault("cold", {}).setdefault(name, []).append(
                run(trees[name], src_of[name], system, "off")
            )
        for name in order:
            _forget(src_of[name])
            results.setdefault("second_project", {}).setdefault(name, []).append(
                run(trees[name], src_of[name], system, shared[name])
            )
        _forget(src_of["new"])
        published, earlier = _runtime_changed(Path(shared["new"]))
        results.setdefault("after_runtime_change", {}).setdefault("new", []).append(
            run(None, src_of["new"], system, shared["new"])
        )
        shutil.rmtree(published)  # this project's, published by that run: back to the other's
        earlier.rename(published)
        loads.append(os.getloadavg()[0])

    for source in [project, *args.edit_project]:
        key = f"edit_{source.name}"
        edit_system = _system(copies["new", source.name])
        for name, tree in trees.items():  # a checked project; this tree's daemon started and ready
            src = copies[name, source.name]
            run(tree, src, edit_system, shared[name], daemon="900")
            run(tree, src, edit_system, shared[name], daemon="900")
            if tree is None:
                _wait_ready(src)
        for round_ in range(args.edits):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                src = copies[name, source.name]
                _edit(src, round_)
                results.setdefault(key, {}).setdefault(name, []).append(
                    run(trees[name], src, edit_system, shared[name], daemon="900")
                )
        for name in trees:
            _forget(copies[name, source.name])
        loads.append(os.getloadavg()[0])

    summary = {}
    for scenario, by_tree in results.items():
        entry: dict[str, object] = {
            f"median_{what}_{name}": round(statistics.median(r[what] for r in runs), 3)
            for name, runs in by_tree.items()
            for what in ("s", "cpu_s")
        }
        if "old" in by_tree:
            entry["new_vs_old_wall"] = round(entry["median_s_new"] / entry["median_s_old"], 3)  # type: ignore[operator]
            entry["new_vs_old_cpu"] = round(entry["median_cpu_s_new"] / entry["median_cpu_s_old"], 3)  # type: ignore[operator]
        summary[scenario] = entry
    write_results(
        args.out,
        {
            "components": args.components,
            "edit_projects": [p.name for p in args.edit_project],
            "old": args.old,
            "new": _head(),
            "machine": machine(),
            "load_average_1m": [round(x, 1) for x in loads],
            "runs": results,
            "summary": summary,
        },
    )


def _runtime_changed(root: Path) -> tuple[Path, Path]:
    """Make the machine-wide cache look like an earlier runtime's (renamed to another
    fingerprint); returns its path and its new path."""
    published = next(p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith("."))
    earlier = published.with_name("0" * 16)
    published.rename(earlier)
    return published, earlier


def _head() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    return head.stdout.strip() + (" (working tree)" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    main()
