"""Stage 4 on every example: time of the deployment and validation tasks, of `sign` and
`autocoder verify`; checks run, seconds and findings per scanner; the size of the image build
context; and what checkov costs: `autocoder tools install` into an empty tools folder, and its
scan in every validation (checkov as a build finds it: run `autocoder tools install` first).

For each example: generate (not timed), then `autocoder build EX deploy` (cold, then a no-op),
the validators alone in process with the example's own suppressions, `sign` with a key from
`autocoder keygen`, and `verify`. The run-cache is off (a cold build must run). Writes
results/deploy.json with the load average before and after (the machine may be shared).

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

from autocoder.deploy.tools import CHECKOV_VERSION
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
    plan = json.loads((project / "generated" / "deploy" / "plan.json").read_text())
    waived = {s["rule"]: s["reason"] for s in plan["suppressions"]}
    result = validate_deployments(project / "deployments", work / f"{example}-reports", waived)
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
        "scanner_s": {name: round(t, 2) for name, t in result.seconds.items()},
        "skipped": result.skipped,
        "suppressed": sorted({f.rule for f in result.findings if f.suppressed}),
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
    os.environ["AUTOCODER_CACHE"] = "off"
    if os.environ.get("AUTOCODER_CHECKOV", "").strip():
        raise SystemExit("unset AUTOCODER_CHECKOV: the benchmark measures the build as it runs by default")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="deploy-bench-") as tmp:
        work = Path(tmp)
        install_s = timed(
            [sys.executable, "-m", "autocoder.cli", "tools", "install"],
            {"AUTOCODER_TOOLS_DIR": str(work / "tools")},
            work,
        )
        env = {"COSIGN_PASSWORD": "bench"}
        timed(
            [sys.executable, "-m", "autocoder.cli", "keygen", "--output-prefix", str(work / "bench")],
            env,
            work,
        )
        env["AUTOCODER_SIGNING_KEY"] = str(work / "bench.key")
        examples = {ex: measure(ex, work, env) for ex in args.examples}
    results = {
        "machine": {**machine(), "load_before": load_before, "load_after": os.getloadavg()},
        "checkov": {"version": CHECKOV_VERSION, "install_into_empty_tools_dir_s": round(install_s, 2)},
        "examples": examples,
    }
    write_results(args.out, results)
    print(json.dumps({ex: r["unsuppressed_findings"] for ex, r in results["examples"].items()}))


if __name__ == "__main__":
    main()
