"""Where `check` and `ir` spend their time at 500 components (issue: fast edits, item 3).

Each stage of compile_sources is timed alone on the same synthetic blueprint, in process, in
CPU seconds, best of --repeats (the estimate of a stage's own cost on a busy machine), plus what
a `check` task pays before it compiles anything: importing the compiler (pydantic builds the
blueprint models' validators at import), measured as CPU seconds of a fresh interpreter; and
what `ir` pays after: encoding ir.v1.json and every slice as canonical JSON, and write_ir as
the task runs it, with and without its index of unchanged slices. The shares are the
figures to compare; the seconds depend on the machine's load.

Usage: python benchmarks/compile_stages_bench.py [--components 500] [--repeats 9] [--out FILE]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine, synthetic_bytes, write_results

from autocoder.analysis.components import check_components
from autocoder.analysis.context import Context
from autocoder.analysis.deployment import check_deployment
from autocoder.analysis.graph import check_bindings, check_capacity, check_graph
from autocoder.analysis.schemas import resolve_schemas
from autocoder.blueprint.models import Architecture, Deployment
from autocoder.blueprint.source import parse_yaml
from autocoder.blueprint.validate import validate_model
from autocoder.canonical import canonical_json
from autocoder.compile import compile_sources
from autocoder.ir.build import build_ir
from autocoder.ir.models import dump
from autocoder.ir.write import WRITTEN_INDEX, encode_ir, write_ir

IMPORT_CPU = """
import resource
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start = cpu()
import autocoder.tasks.dodo
loaded = cpu()
import autocoder.compile
print(loaded - start, cpu() - loaded)
"""


def best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()  # CPU seconds: waiting for another process's turn is not counted
        fn()
        times.append(time.process_time() - start)
    return min(times)


def import_cpu(repeats: int) -> dict[str, float]:
    """CPU seconds of importing the task list (every doit run) and then the compiler (check)."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", IMPORT_CPU], capture_output=True, text=True, check=True)
        runs.append([float(x) for x in out.stdout.split()])
    return {"task_list_s": round(min(r[0] for r in runs), 4), "compiler_s": round(min(r[1] for r in runs), 4)}


def stages(n: int, repeats: int) -> dict[str, float]:
    arch, deploy = synthetic_bytes(n)
    doc_a, doc_d = parse_yaml(arch, "architecture.yaml"), parse_yaml(deploy, "deployment.yaml")
    model_a, _ = validate_model(doc_a, Architecture)
    model_d, _ = validate_model(doc_d, Deployment)

    def context() -> Context:
        return Context(doc_a, doc_d, model_a, model_d)

    def analysed(upto: int) -> tuple[Context, Any]:
        """A context with the first `upto` passes run (0: schemas only)."""
        ctx = context()
        resolve_schemas(ctx)
        state: Any = None
        if upto >= 1:
            check_components(ctx)
        if upto >= 2:
            state = check_deployment(ctx)
        return ctx, state

    def graph() -> None:
        ctx, merged = analysed(2)
        edges = check_bindings(ctx)
        order = check_graph(ctx, edges)
        rates = {k: float(m["capabilities"]["rate_limit"]["rate"]) for k, m in merged.items()}
        budgets = {k: float(m["budget"]["p95_ms"]) for k, m in merged.items()}
        check_capacity(ctx, edges, order, rates, budgets)

    ctx, merged = analysed(2)
    order = check_graph(ctx, check_bindings(ctx))
    ir, slices = build_ir(ctx, merged, order, [], [])
    slice_bytes = [canonical_json(dump(slices[c.name])) for c in ir.components]
    timed = {
        "parse_yaml": lambda: parse_yaml(arch, "architecture.yaml"),
        "validate_models": lambda: validate_model(doc_a, Architecture),
        "pass_schemas": lambda: resolve_schemas(context()),
        "pass_components": lambda: check_components(analysed(0)[0]),
        "pass_deployment": lambda: check_deployment(analysed(1)[0]),
        "pass_graph": graph,
        "build_ir": lambda: build_ir(ctx, merged, order, [], []),
        "encode_ir_files": lambda: [
            canonical_json(dump(ir)),
            *(canonical_json(dump(s)) for s in slices.values()),
        ],
        # ir.v1.json alone, encoded whole and spliced from the slices' bytes (what write_ir does)
        "encode_ir_v1_whole": lambda: canonical_json(dump(ir)),
        "encode_ir_v1_spliced": lambda: encode_ir(ir, slice_bytes),
        "compile_sources_total": lambda: compile_sources(arch, deploy),
    }
    gc.disable()
    try:
        result = {name: round(best(fn, repeats), 4) for name, fn in timed.items()}
        result.update(write_ir_figures(ir, slices, repeats))
    finally:
        gc.enable()
    # the passes' timings include their set-up (the passes before them): subtract it
    setup_components = best(lambda: analysed(0), repeats)
    setup_deployment = best(lambda: analysed(1), repeats)
    setup_graph = best(lambda: analysed(2), repeats)
    result["pass_components"] = round(max(0.0, result["pass_components"] - setup_components), 4)
    result["pass_deployment"] = round(max(0.0, result["pass_deployment"] - setup_deployment), 4)
    result["pass_graph"] = round(max(0.0, result["pass_graph"] - setup_graph), 4)
    return result


def write_ir_figures(ir: dict, slices: dict, repeats: int) -> dict[str, float]:
    """The `ir` task's write_ir over files already on disk (what an edit of one component
    leaves), without the index of what the last run wrote (every slice encoded again) and with
    it (unchanged slices skipped)."""
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / "generated"
        write_ir(generated, ir, slices)

        def cold() -> None:
            (generated / WRITTEN_INDEX).unlink(missing_ok=True)
            write_ir(generated, ir, slices)

        cold_s = best(cold, repeats)
        write_ir(generated, ir, slices)
        warm_s = best(lambda: write_ir(generated, ir, slices), repeats)
    return {"write_ir_without_index": round(cold_s, 4), "write_ir_with_index": round(warm_s, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--components", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compile_stages.json")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    in_process = stages(args.components, args.repeats)
    imports = import_cpu(args.repeats)
    check_like = imports["compiler_s"] + in_process["compile_sources_total"]
    write_results(
        args.out,
        {
            "machine": machine(),
            "components": args.components,
            "load_average_1m": [round(load_start, 1), round(os.getloadavg()[0], 1)],
            "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
            "stages_s": in_process,
            "import_cpu_s": imports,
            "share_of_check_plus_ir": {
                "import_compiler": round(
                    imports["compiler_s"] / (check_like + in_process["encode_ir_files"]), 3
                ),
                "compile": round(
                    in_process["compile_sources_total"] / (check_like + in_process["encode_ir_files"]), 3
                ),
                "encode_ir_files": round(
                    in_process["encode_ir_files"] / (check_like + in_process["encode_ir_files"]), 3
                ),
            },
        },
    )


if __name__ == "__main__":
    main()
