"""Benchmark of the typed IR boundary (issue 8, item 7).

Every gen, lint and bench task loads its component's slice, and gen:runtime and policy load
ir.v1.json, so the cost of reading them into the typed models (autocoder.ir.models) is paid
on every build. On a synthetic blueprint of 500 components, written to a temp dir:
- the 500 slices read as plain JSON (`json.loads`, what the tasks did before) and as typed
  models (`load_slice`: `Slice.model_validate_json`), median of 7, and their ratio;
- ir.v1.json the same way (`load_ir`);
- the compile itself (build_ir now validates into the models), median of 5;
- that every file dumps back to its own bytes (the models are the on-disk format).
With `--old COMMIT` (the tree before the typed boundary), also:
- `autocoder build DIR gen` of every example and a 50-component synthetic blueprint by both
  trees: the IR files and generated sources must be byte-identical;
- the compile of 500 components by both, CPU seconds in subprocesses, alternating, median.
Ratios within one run are what survive a noisy machine.

Usage: python benchmarks/ir_load_bench.py [--old COMMIT] [--out benchmarks/results/ir_load.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, build_gen, machine, median_s, old_tree, synthetic_bytes, write_results

from autocoder.canonical import canonical_json
from autocoder.compile import compile_sources
from autocoder.ir.models import dump, load_ir, load_slice
from autocoder.ir.write import write_ir
from autocoder.synthetic import write_synthetic

COMPONENTS = 500


# run by the tree under test (an older one has no benchmarks/common.py on its path)
COMPILE_CPU = """
import statistics, time, yaml
from autocoder.compile import compile_sources
from autocoder.synthetic import synthetic_architecture, synthetic_deployment
arch = yaml.safe_dump(synthetic_architecture(%d), sort_keys=False).encode()
deploy = yaml.safe_dump(synthetic_deployment(), sort_keys=False).encode()
times = []
for _ in range(5):
    start = time.process_time()
    assert compile_sources(arch, deploy).ir is not None
    times.append(time.process_time() - start)
print(statistics.median(times))
"""


def compile_cpu_s(generator: Path | None) -> float:
    """Median CPU seconds of one compile of COMPONENTS components, in a fresh process."""
    env = {"PYTHONPATH": str(generator)} if generator is not None else {}
    run = subprocess.run(
        [sys.executable, "-c", COMPILE_CPU % COMPONENTS],
        env={**os.environ, **env},
        cwd=generator or REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(run.stdout.split()[-1])


def tree_bytes(generated: Path) -> dict[str, bytes]:
    """The IR files and generated sources (not caches, reports or fingerprints)."""
    files = [*generated.glob("ir*.json"), *generated.glob("ir/*.json"), *generated.glob("src/**/*")]
    return {str(p.relative_to(generated)): p.read_bytes() for p in sorted(files) if p.is_file()}


def against_old(commit: str, workdir: Path) -> dict[str, object]:
    old = old_tree(workdir, commit)
    projects = {p.name: p for p in sorted((REPO / "examples").iterdir())}
    synthetic = workdir / "synthetic"
    synthetic.mkdir()
    write_synthetic(synthetic, 50)
    projects["synthetic"] = synthetic
    differ: list[str] = []
    compared = 0
    for name, source in projects.items():
        trees = []
        for label, generator in (("old", old), ("new", None)):
            project = workdir / f"{name}-{label}"
            shutil.copytree(source, project, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
            build_gen(project, generator)
            trees.append(tree_bytes(project / "generated"))
        compared += len(trees[1])
        differ += [
            f"{name}/{path}"
            for path in sorted(set(trees[0]) | set(trees[1]))
            if trees[0].get(path) != trees[1].get(path)
        ]
    rounds = [(compile_cpu_s(old), compile_cpu_s(None)) for _ in range(3)]
    old_s = statistics.median(r[0] for r in rounds)
    new_s = statistics.median(r[1] for r in rounds)
    return {
        "old_commit": commit,
        "generated_files_compared": compared,
        "generated_files_that_differ": differ,
        "compile_cpu_s_old": round(old_s, 4),
        "compile_cpu_s_new": round(new_s, 4),
        "compile_ratio_new_to_old": round(new_s / old_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ir_load.json")
    parser.add_argument("--old", help="a commit before the typed IR boundary, to compare with")
    args = parser.parse_args()
    arch, deploy = synthetic_bytes(COMPONENTS)
    result = compile_sources(arch, deploy)
    assert result.ir is not None, result.diagnostics[:3]
    compile_s = median_s(lambda: compile_sources(arch, deploy), 5)
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp)
        write_ir(generated, result.ir, result.slices)
        slices = sorted((generated / "ir").glob("*.json"))
        ir_file = generated / "ir.v1.json"
        same_bytes = all(canonical_json(dump(load_slice(p))) == p.read_bytes() for p in slices)
        same_bytes = same_bytes and canonical_json(dump(load_ir(ir_file))) == ir_file.read_bytes()
        slices_json = median_s(lambda: [json.loads(p.read_text()) for p in slices], 7)
        slices_typed = median_s(lambda: [load_slice(p) for p in slices], 7)
        ir_json = median_s(lambda: json.loads(ir_file.read_text()), 7)
        ir_typed = median_s(lambda: load_ir(ir_file), 7)
    results = {
        "machine": machine(),
        "components": COMPONENTS,
        "compile_median_s": round(compile_s, 4),
        "slices": {
            "json_loads_median_ms": round(slices_json * 1000, 2),
            "typed_median_ms": round(slices_typed * 1000, 2),
            "typed_per_slice_ms": round(slices_typed * 1000 / len(slices), 4),
            "ratio_typed_to_json": round(slices_typed / slices_json, 2),
        },
        "ir_v1": {
            "json_loads_median_ms": round(ir_json * 1000, 2),
            "typed_median_ms": round(ir_typed * 1000, 2),
            "ratio_typed_to_json": round(ir_typed / ir_json, 2),
        },
        "dump_gives_the_same_bytes": same_bytes,
    }
    if args.old:
        with tempfile.TemporaryDirectory() as tmp:
            results["against_old"] = against_old(args.old, Path(tmp))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
