"""What the benchmark scripts share: timing a real build, and the machine they ran on."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def timed_build(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, list[str]]:
    """`autocoder build PROJECT ARGS` as a subprocess (in `env`, default this process's):
    wall seconds and the tasks it executed."""
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *args],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"build {args} failed in {project}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return elapsed, [line[3:] for line in run.stdout.splitlines() if line.startswith(".  ")]


def json_build(
    project: Path, tree: Path | None, tasks: list[str], jobs: int, mypy_daemon: bool = False
) -> tuple[float, float, dict]:
    """`autocoder build PROJECT [-n JOBS] --continue --reporter json TASKS` with `tree`'s autocoder
    (an `old_tree`; None: this one), the run-cache off (and the mypy daemon unless
    `mypy_daemon`): its wall seconds, the CPU seconds of it and of everything it started, and
    doit's JSON report."""
    env = tree_env(tree) if mypy_daemon else {**tree_env(tree), "AUTOCODER_MYPY_DAEMON": "off"}
    report, wall, cpu = reported_build(
        project, env, [*(["-n", str(jobs)] if jobs > 1 else []), "--continue", *tasks]
    )
    return wall, cpu, report


def synthetic_bytes(components: int) -> tuple[bytes, bytes]:
    """The bytes of a synthetic architecture.yaml of `components` components and its
    deployment.yaml, as compile_sources takes them (the benchmarks compile in process)."""
    import yaml

    from autocoder.synthetic import synthetic_architecture, synthetic_deployment

    arch = yaml.safe_dump(synthetic_architecture(components), sort_keys=False).encode()
    deploy = yaml.safe_dump(synthetic_deployment(), sort_keys=False).encode()
    return arch, deploy


def medians(
    runs: dict[str, list[dict[str, Any]]], keys: Iterable[str], digits: int | None = None
) -> dict[str, dict[str, float]]:
    """Per side of `runs` (its name -> one dict of figures per run), the median of each key,
    rounded to `digits` when given."""
    keys = list(keys)

    def median(values: Iterable[float]) -> float:
        found = statistics.median(values)
        return found if digits is None else round(found, digits)

    return {name: {key: median(r[key] for r in found) for key in keys} for name, found in runs.items()}


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of `repeats` calls of `fn`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reported_build(project: Path, env: dict[str, str], args: list[str]) -> tuple[dict, float, float]:
    """`autocoder build PROJECT *args --reporter json`: doit's JSON report, the wall seconds
    and the CPU seconds of every process the build started (SystemExit when no report came)."""

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    before, start = cpu(), time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *args, "--reporter", "json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall, used = time.perf_counter() - start, cpu() - before
    if "{" not in run.stdout:
        raise SystemExit(f"build in {project} printed no report:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    report, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])
    return report, wall, used


def stop_background(project: Path) -> int:
    """Stop the helpers a build of `project` left running (its warm worker and mypy daemon,
    validate/background.py): a benchmark that builds project after project would otherwise
    have each one's helper warm up (3-6 CPU-seconds) during the next builds, whichever tree
    they are. Returns how many were stopped."""
    wanted = str(project)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        helper = any(w in ("autocoder.validate.warm_worker", "autocoder.validate.mypy_daemon") for w in words)
        if helper and any(w.startswith(wanted) for w in words):
            found.append(int(entry.name))
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in found):
        time.sleep(0.05)
    return len(found)


def machine() -> dict[str, object]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))


def tree_env(tree: Path | None) -> dict[str, str]:
    """This environment with the run-cache off (everything really runs); with `tree` (an
    `old_tree`), its autocoder and its runtime before this tree's installed ones."""
    env = {**os.environ, "AUTOCODER_CACHE": "off"}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "runtime")])
    return env


def write_comparison(
    path: Path, old: str, loads: list[float], summary: dict, runs: dict, **fields: object
) -> None:
    """The results of an old-tree-against-this-one benchmark, with the machine and its loads."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    write_results(
        path,
        {
            "machine": machine(),
            **fields,
            "old": old,
            "new": f"{head.stdout.strip()} (working tree)",
            "load_average_1m": loads,
            "summary": summary,
            "runs": runs,
        },
    )


def main(doc: str, measure: Callable[[int, int], dict], sizes: list[int], repeats: int, out: str) -> None:
    """The command line every size-sweeping benchmark shares: --sizes, --repeats, --out."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / out)
    args = parser.parse_args()
    results = {
        "machine": machine(),
        "repeats": args.repeats,
        "sizes": {str(n): measure(n, args.repeats) for n in args.sizes},
    }
    write_results(args.out, results)


def old_tree(workdir: Path, commit: str) -> Path:
    """The repository at `commit`, extracted (not checked out: the repository is untouched).
    Its templates, rules and schemas are linked into its autocoder package, so that importing
    autocoder.templates from it finds its own (an editable install of this tree would
    otherwise answer for autocoder.templates: it maps that name to this tree's templates/)."""
    tree = workdir / f"autocoder-{commit}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    for name in ("templates", "rules", "schemas"):
        (tree / "autocoder" / name).symlink_to(tree / name, target_is_directory=True)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import autocoder, autocoder.templates, autocoder.codegen; "
            "print(autocoder.__file__); print(autocoder.templates.__path__[0])",
        ],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,  # not this repository: `python -c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    for line in probe.stdout.split():
        if not Path(line).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"the old generator imports {line}, not from {tree}")
    return tree


def build_gen(directory: Path, generator: Path | None = None) -> Path:
    """`autocoder build DIRECTORY gen`, with the autocoder package under `generator` when given
    (an older tree from `old_tree`); returns the generated source folder."""
    env = dict(os.environ)
    if generator is not None:
        env["PYTHONPATH"] = str(generator)
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(directory), "gen"],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise SystemExit(f"build of {directory} failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return directory / "generated" / "src"
