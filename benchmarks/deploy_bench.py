"""Stage 4 on every example: time of the deployment and validation tasks, of `sign` and
`autocoder verify`; checks run and findings per scanner; the size of the image build context.

For each example: generate (not timed), then `autocoder build EX deploy` (cold, then a no-op),
the validators alone in process, `sign` with a key from `autocoder keygen`, and `verify`.
Writes results/deploy.json.

    python benchmarks/deploy_bench.py [--examples orders telemetry]
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

from common import REPO, machine, timed_build, write_results

from autocoder.deploy.validate import validate_deployments


def context_bytes(deployments: Path) -> int:
    """What the .dockerignore lets into the build context: the wheels and constraints.txt."""
    files = [deployments / "constraints.txt", *sorted((deployments / "wheels").glob("*.whl"))]
    return sum(p.stat().st_size for p in files)


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, cwd=cwd)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{command} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return elapsed


def measure(example: str, work: Path, env: dict[str, str]) -> dict[str, object]:
    project = work / example
    shutil.copytree(
        REPO / "examples" / example,
        project,
        ignore=shutil.ignore_patterns("generated", ".doit*", "deployments", "dist"),
    )
    timed_build(project, "gen")
    cold, ran = timed_build(project, "deploy")
    noop, ran_noop = timed_build(project, "deploy")
    start = time.perf_counter()
    result = validate_deployments(project / "deployments", work / f"{example}-reports", {})
    validate_s = time.perf_counter() - start
    sign_s = timed([sys.executable, "-m", "autocoder.cli", "build", str(project), "sign"], env, work)
    tarball = next((project / "dist").glob("*.tar.gz"))
    verify_s = timed([sys.executable, "-m", "autocoder.cli", "verify", str(tarball)], env, work)
    return {
        "deploy_cold_s": round(cold, 2),
        "deploy_tasks_run": sorted(ran),
        "deploy_noop_s": round(noop, 2),
        "deploy_noop_tasks_run": ran_noop,
        "validation_in_process_s": round(validate_s, 2),
        "checks": result.checks,
        "findings": len(result.findings),
        "unsuppressed_findings": len(result.failing),
        "sign_s": round(sign_s, 2),
        "verify_s": round(verify_s, 2),
        "package_bytes": tarball.stat().st_size,
        "image_context_bytes": context_bytes(project / "deployments"),
        "manifest_files": len(list((project / "deployments" / "k8s").rglob("*.yaml"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    examples = sorted(p.name for p in (REPO / "examples").iterdir() if (p / "architecture.yaml").exists())
    parser.add_argument("--examples", nargs="+", default=examples)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "deploy.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deploy-bench-") as tmp:
        work = Path(tmp)
        env = {"COSIGN_PASSWORD": "bench"}
        timed(
            [sys.executable, "-m", "autocoder.cli", "keygen", "--output-prefix", str(work / "bench")],
            env,
            work,
        )
        env["AUTOCODER_SIGNING_KEY"] = str(work / "bench.key")
        results = {"machine": machine(), "examples": {ex: measure(ex, work, env) for ex in args.examples}}
    write_results(args.out, results)
    print(json.dumps({ex: r["unsuppressed_findings"] for ex, r in results["examples"].items()}))


if __name__ == "__main__":
    main()
