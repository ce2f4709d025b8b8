"""Where a path test's time goes in a one-component edit: the shared path-test server's start
(validate/shared_server.py), phase by phase, and the path test against it.

In an already built synthetic project (autocoder/synthetic.py; `doit -n 2` it first), for each
Python given (`--python`, default this one: an interpreter of a venv with Autocoder and the
runtime installed from the tree to measure, so two venvs compare two trees), alternating
--repeats rounds, each measure in a fresh process:

- `interpreter_s`: `python -c pass` with the server's environment (site, the editable finders);
- `child_phases_s`: the server's start done step by step in one process, as `python -m
  <system> serve` does it: importing the runtime's CLI, the system's `app` (its SPEC), building
  the System (SERVE_ONLY: the path's components; `all`: the whole system, as test:integration
  starts it), opening the database, importing uvicorn, the app, uvicorn's config (h11) and the
  lifespan plus bind, then the stop; with how many component modules were imported;
- `edit_actions_s`: the test actions of a one-component edit, in one process and its main
  thread as plain `doit` runs them: every path marked passed (its inputs record) except those
  through the edited component (--component, default trans_0), then that component's test task
  action (this tree's `run_component_test`, which may launch the path server early; an older
  tree's `run_test`), each of its paths' `run_path_test` (the first starts, or waits for, the
  shared server), and the teardown's stop. The doit process has the runtime's test helpers
  imported by then (validate/testing.py `preload`), so the driver imports them first. Each
  Python needs its own copy of the project (--project per Python): the records are rewritten;
- `importtime_top`: `python -X importtime` of what `serve` imports, the biggest top-level ones.

Medians per Python; the load average is recorded (the machine is shared: compare ratios).

Usage: python benchmarks/path_server_profile.py --project DIR [DIR ...] --python PY [PY ...]
       [--repeats 3] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, write_results

FIRST = "ingress__sink_0"  # a path of trans_0: its components are what the child serves

CHILD = r"""
import asyncio, importlib, json, sys, time
marks, t0 = {}, time.perf_counter()
def mark(name):
    global t0
    now = time.perf_counter(); marks[name] = round(now - t0, 4); t0 = now
import autocoder_runtime.cli as cli; mark("import_runtime_cli")
app = importlib.import_module(sys.argv[1] + ".app"); mark("import_system_app")
system = app.build_system(); mark("build_system")
modules = sum(1 for m in sys.modules if m.startswith(sys.argv[1] + ".components."))
asyncio.run(cli._with_database(system, lambda s: None)); mark("open_database")
import uvicorn; mark("import_uvicorn")
from autocoder_runtime.app import create_app
asgi = create_app(system); mark("create_app")
async def serve():
    config = uvicorn.Config(asgi, host="127.0.0.1", port=0, log_config=None, access_log=False)
    config.load(); mark("uvicorn_config_load")
    server = uvicorn.Server(config); server.lifespan = config.lifespan_class(config)
    await server.startup(); mark("lifespan_and_bind")
    server.should_exit = True; await server.shutdown(); mark("stop")
asyncio.run(serve())
print(json.dumps({"marks": marks, "component_modules": modules}))
"""

ACTION = r"""
import json, sys, time, uuid
from pathlib import Path
import autocoder_runtime.testing  # noqa: F401 - the doit process has it (validate/testing.py preload)
from autocoder.tasks import validate_tasks as v
from autocoder.tasks.compile_tasks import project_paths
directory, system, component, prestart = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
paths = {p.id: list(p.components) for p in project_paths(directory)}
for path_id, components in paths.items():  # every path passed with this tree's fingerprint...
    record = v._inputs_record(directory, f"path.{path_id}")
    record.write_text(json.dumps(v._path_inputs(directory, system, path_id, components)))
edited = sorted(p for p, components in paths.items() if component in components)
for path_id in edited:  # ...but the edited component's: as after an edit of it
    v._inputs_record(directory, f"path.{path_id}").unlink()
build, marks = uuid.uuid4().hex, {}
start = time.perf_counter()
if prestart and hasattr(v, "run_component_test"):  # this tree: may launch the path server first
    failed = v.run_component_test(directory, system, component, build)
else:
    failed = v.run_test(directory, component, v.test_path(component))
marks["component_test"] = round(time.perf_counter() - start, 4)
assert failed is None, failed
for path_id in edited:
    start = time.perf_counter()
    failed = v.run_path_test(directory, system, path_id, build, paths[path_id])
    marks[f"path.{path_id}"] = round(time.perf_counter() - start, 4)
    assert failed is None, failed
start = time.perf_counter()
v.stop_shared_server(directory, build)
marks["stop"] = round(time.perf_counter() - start, 4)
marks["paths_total"] = round(sum(s for n, s in marks.items() if n.startswith("path.")), 4)
marks["edit_tests_total"] = round(sum(marks.values()) - marks["paths_total"], 4)
served = (directory / "generated/.cache/paths/starts.log").read_text().splitlines()[-1].split()[2]
print(json.dumps({"marks": marks, "served_components": served}))
"""


def run_json(python: str, code: str, args: list[str], env: dict[str, str], cwd: Path) -> dict:
    done = subprocess.run(
        [python, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def seconds(python: str, code: str, env: dict[str, str]) -> float:
    import time

    start = time.perf_counter()
    subprocess.run([python, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def importtime(python: str, imports: str, env: dict[str, str]) -> dict[str, float]:
    """Cumulative seconds of the top-level modules `imports` loaded, biggest first."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", imports], env=env, capture_output=True, text=True, check=True
    )
    top: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if not name.startswith("  "):  # top-level: imported by the statement itself
            top[name.strip()] = round(int(cumulative) / 1e6, 4)
    return dict(sorted(top.items(), key=lambda kv: -kv[1])[:12])


def components_of(project: Path, path_id: str) -> list[str]:
    text = (project / "generated/src/tests/paths" / f"test_{path_id}.py").read_text()
    line = next(line for line in text.splitlines() if line.startswith("COMPONENTS = "))
    return json.loads(line.removeprefix("COMPONENTS = ").replace("'", '"'))


def measure(
    project: Path,
    python: str,
    system: str,
    component: str,
    work: Path,
    round_: int,
    compare_prestart: bool = False,
    edit_only: bool = False,
) -> dict:
    src = project / "generated/src"
    base = {**os.environ, "PYTHONPATH": str(src), "API_KEY": "integration-test-key", "LOG_LEVEL": "INFO"}
    base.pop("SERVE_ONLY", None)
    args = [str(project), system, component]
    result: dict = {"edit_actions_s": run_json(python, ACTION, [*args, "1"], dict(os.environ), project)}
    if compare_prestart:  # the same tree's actions without the early launch
        result["edit_actions_no_prestart_s"] = run_json(
            python, ACTION, [*args, "0"], dict(os.environ), project
        )
    if edit_only:
        return result
    result["interpreter_s"] = round(seconds(python, "pass", base), 4)
    result["child_phases_s"] = {}
    for label, only in (("path", ",".join(components_of(project, FIRST))), ("all", None)):
        env = {**base, "DATA_DIR": str(work / f"data-{label}-{round_}")}
        if only is not None:
            env["SERVE_ONLY"] = only
        result["child_phases_s"][label] = run_json(python, CHILD, [system], env, src)
    result["importtime_top"] = importtime(
        python, f"import autocoder_runtime.cli, autocoder_runtime.app, uvicorn, {system}.app", base
    )
    result["parent_httpx_import"] = importtime(python, "import httpx", base)
    return result


def summary(runs: list[dict]) -> dict:
    """Medians of every number in `runs` (same shape), by key."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: summary([r[k] for r in runs if k in r]) for k in first}
    if isinstance(first, int | float):
        return round(statistics.median(runs), 4)
    return first


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, nargs="+", required=True, help="one built copy per Python")
    parser.add_argument("--python", nargs="+", default=[sys.executable])
    parser.add_argument("--system", default="synthetic")
    parser.add_argument("--component", default="trans_0")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compare-prestart",
        action="store_true",
        help="also the last Python's edit actions without the early launch",
    )
    parser.add_argument("--edit-only", action="store_true", help="only the edit actions")
    default = Path(__file__).parent / "results" / "path_server_profile.json"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()
    if len(args.project) != len(args.python):
        raise SystemExit("give one --project copy per --python")
    load = [round(os.getloadavg()[0], 1)]
    runs: dict[str, list[dict]] = {python: [] for python in args.python}
    with tempfile.TemporaryDirectory() as work:
        for round_ in range(args.repeats):
            for python, project in zip(args.python, args.project, strict=True):  # alternating
                found = measure(
                    project.resolve(),
                    python,
                    args.system,
                    args.component,
                    Path(work),
                    round_,
                    args.compare_prestart and python == args.python[-1],
                    args.edit_only,
                )
                runs[python].append(found)
    load.append(round(os.getloadavg()[0], 1))
    write_results(
        args.out,
        {
            "machine": machine(),
            "projects": {python: str(p) for python, p in zip(args.python, args.project, strict=True)},
            "component": args.component,
            "repeats": args.repeats,
            "load_average_1m": load,
            "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
            "medians": {python: summary(found) for python, found in runs.items()},
            "note": "seconds depend on the machine's load; compare the Pythons within one run",
        },
    )


if __name__ == "__main__":
    cli()
