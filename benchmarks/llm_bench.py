"""Benchmark of LLM-written logic: requests, tokens and time through the cache and the lock.

examples/reviews (two `custom` components) without its lock, against the test suite's scripted
OpenAI-protocol server on 127.0.0.1 (tests/llm_server.py: fixed answers, 100 tokens in and
20 out each), with the real `autocoder build DIR gen` as a subprocess:
- cold build, no-op build, a one-component change (triage's description), a rebuild of both
  modules from the cache (modules deleted), and a build of a fresh checkout with the lock and
  no server (--frozen): requests and tokens each (expected 2, 0, 1, 0, 0);
- cache-hit latency: one CompletionCache.get of a stored completion (median of 2000).

Usage: python benchmarks/llm_bench.py [--out FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, write_results

sys.path.insert(0, str(REPO / "tests"))
from llm_server import REVIEWS_BODIES, body_answer, per_component, serving  # noqa: E402

from autocoder.llm.cache import CompletionCache, cache_key  # noqa: E402

EXAMPLE = REPO / "examples" / "reviews"
USAGE = re.compile(r"LLM: (\d+) call\(s\), (\d+) cache hit\(s\), (\d+) from the lock, (\d+) tokens in, (\d+)")


def build(project: Path, *args: str) -> dict[str, float | int]:
    """One build and what it spent, from its summary line."""
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    found = USAGE.search(run.stdout)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"build failed in {project}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    calls, hits, locked, tokens_in, tokens_out = (int(g) for g in found.groups())
    return {
        "seconds": round(seconds, 3),
        "calls": calls,
        "cache_hits": hits,
        "locked": locked,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
    }


def builds(tmp: Path) -> dict[str, dict[str, float | int]]:
    project = tmp / "project"
    project.mkdir()
    for name in ("architecture.yaml", "deployment.yaml"):
        shutil.copy(EXAMPLE / name, project / name)
    results = {}
    with serving(per_component({k: [body_answer(v)] for k, v in REVIEWS_BODIES.items()})) as server:
        llm = ("--llm-base-url", server.url, "--llm-model", "scripted")
        results["cold"] = build(project, *llm)
        results["noop"] = build(project, *llm)
        arch = project / "architecture.yaml"
        arch.write_text(arch.read_text().replace("rating is 1.", "rating is 1 (the lowest)."))
        results["one_component_change"] = build(project, *llm)
        for module in ("scorer", "triage"):
            (project / "generated/src/reviews/components" / f"{module}.py").unlink()
        results["both_from_cache"] = build(project, *llm)
        results["server_requests"] = {"total": server.calls}
    subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "lock", str(project)], check=True, capture_output=True
    )
    clone = tmp / "clone"
    clone.mkdir()
    for name in ("architecture.yaml", "deployment.yaml", "autocoder.lock"):
        shutil.copy(project / name, clone / name)
    results["locked_no_llm"] = build(clone, "--frozen")
    return results


def cache_hit_latency(tmp: Path, repeats: int = 2000) -> dict[str, float]:
    cache = CompletionCache(tmp / "cache")
    key = cache_key({"messages": [{"role": "user", "content": "x" * 4000}], "model": "m"})
    cache.put(key, {"content": REVIEWS_BODIES["scorer"], "tokens_in": 100, "tokens_out": 20, "problems": []})
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        cache.get(key)
        samples.append(time.perf_counter() - start)
    cache.close()
    samples.sort()
    return {
        "get_us_median": round(statistics.median(samples) * 1e6, 1),
        "get_us_p95": round(samples[int(len(samples) * 0.95)] * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llm.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "machine": machine(),
            "example": "examples/reviews (2 custom components)",
            "builds": builds(Path(tmp)),
            "cache_hit": cache_hit_latency(Path(tmp)),
        }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
