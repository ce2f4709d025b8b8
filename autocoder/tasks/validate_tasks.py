"""doit tasks of the validation stage (Stage 3), strict by default.

Per component, after gen:<component>: lint:<component> (ruff, bandit, AST policy),
test:<component> (its example and property tests), bench:<component> (per-message p95 against
its budget). Per path from an ingress or source to a store or sink (autocoder.flowpaths):
test:path.<id>, on one server per build. System level: test:integration (the smoke test),
typecheck, policy, report. Each task writes its result
file even when it fails, and fails with the component, the tier and the first findings.
Tools run in this process (bandit, pytest, the benchmarks) or as a native binary (ruff), so a
component costs no Python start-up per tool.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed

import autocoder
from autocoder.codegen.paths import module_path, runtime_paths, test_path, unit_test_deps
from autocoder.layout import GENERATED
from autocoder.runtime_pkg import runtime_fingerprint
from autocoder.tasks.compile_tasks import blueprint_outline, fingerprint_file, project_dir
from autocoder.tasks.dispatch import batch_meta
from autocoder.tasks.gen_tasks import SAMPLES, SRC
from autocoder.tools import tool_versions

if TYPE_CHECKING:
    from autocoder.validate.batch import TierGroup
    from autocoder.validate.path_check import PathCheck
    from autocoder.validate.siblings import Siblings

REPORTS = f"{GENERATED}/reports"
SHOWN = 10  # findings quoted in a failure message


@functools.cache
def validate_fingerprint() -> str:
    digest = hashlib.sha256(autocoder.__version__.encode())
    for path in sorted((Path(autocoder.__file__).parent / "validate").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(runtime_fingerprint().encode())
    digest.update(tool_versions().encode())  # ruff's rules and hypothesis's search change verdicts
    return digest.hexdigest()


@functools.cache
def _rules(name: str) -> str:
    import importlib.resources

    return str(importlib.resources.files("autocoder.rules").joinpath(name))


def _write_json(path: Path, data: Any) -> None:
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import write_if_changed

    write_if_changed(path, canonical_json(data))


def _failure(task: str, what: str, lines: list[str]) -> TaskFailed:
    from autocoder.userpaths import shown

    more = f"\n  ... and {len(lines) - SHOWN} more (see {shown(REPORTS)}/)" if len(lines) > SHOWN else ""
    return TaskFailed(f"{task} failed: {what}\n  " + "\n  ".join(lines[:SHOWN]) + more)


# --------------------------------------------------------------------------- actions


def run_lint(directory: Path, name: str, group: Siblings | None = None) -> TaskFailed | None:
    """`group`: the build's lint tasks, whose ruff and bandit runs this one may batch."""
    from autocoder.ir.models import load_slice
    from autocoder.validate.architecture import import_findings
    from autocoder.validate.findings import active, apply_suppressions
    from autocoder.validate.lint import batched_tool_findings, lint_files
    from autocoder.validate.sarif import sarif_log

    slice_ = load_slice(directory / GENERATED / "ir" / f"{name}.json")
    src = directory / SRC
    system = slice_.system
    tools = None
    if group is not None:

        def files_of(member: str) -> list[str]:
            return [module_path(system, member), test_path(member)]

        tools = batched_tool_findings(directory, src, group, name, files_of)
    findings = lint_files(src, module_path(system, name), test_path(name), slice_.security_policy, tools)
    findings = apply_suppressions(findings, slice_.component.suppressions)
    findings = sorted(findings + import_findings(findings))  # the architecture policy's, per component
    failing = [f for f in active(findings) if f.severity == "error"]
    reports = directory / REPORTS
    _write_json(reports / "sarif" / f"{name}.sarif", sarif_log(findings))
    _write_json(
        reports / "lint" / f"{name}.json",
        {
            "component": name,
            "tier": "lint",
            "ok": not failing,
            "failing": len(failing),
            "suppressed": sum(1 for f in findings if f.suppressed_by),
            "findings": [f.to_json() for f in findings],
        },
    )
    if failing:
        return _failure(f"lint:{name}", f"{len(failing)} finding(s)", [f.format() for f in failing])
    return None


def run_test(
    directory: Path, name: str, test_file: str, isolated: bool = True, group: TierGroup | None = None
) -> TaskFailed | None:
    """The tests of `test_file`, in a forked child (`isolated`) or in this process; a
    component's (`group`: its build's test tasks) possibly in a batch with others' tests
    (validate/batch.py), with the same result."""
    from autocoder.validate.batch import run_in_group
    from autocoder.validate.inprocess import scratch_directory
    from autocoder.validate.testing import run_pytest, run_tests

    reports = directory / REPORTS
    junit = reports / "junit" / f"{name}.xml"
    with scratch_directory(f"autocoder-test-{name}-") as scratch:
        if group is not None:
            result = run_in_group(directory, directory / SRC, group, name, junit, scratch)
        else:
            result = (run_tests if isolated else run_pytest)(directory / SRC, test_file, junit, scratch)
    _write_json(
        reports / "test" / f"{name}.json",
        {"component": name, "tier": "test", "ok": result.ok, **result.to_json()},
    )
    if not result.ok:
        lines = [f"{_test_id(test_file, f['test'])}: {f['message']}" for f in result.failed]
        if not lines:
            lines = (result.output.strip().splitlines() or ["pytest collected no test"])[-SHOWN:]
        return _failure(
            f"test:{name}",
            f"{result.failures + result.errors} of {result.tests} test(s) failed ({test_file})",
            lines,
        )
    return None


def run_component_test(
    directory: Path, system: str, name: str, build: str, group: TierGroup | None = None
) -> TaskFailed | None:
    """A component's tests (`run_test`). In a one-process build (plain `doit`, as an edit
    runs), first launch the server of the path tests that will follow (shared_server.prestart),
    without waiting: it boots on the second core, which that build leaves idle meanwhile. Under
    `doit -n N` (workers) or `-P thread` every core has tasks of its own: the first path test
    starts it, as before (launched early there, it slowed the smoke test 1.8-2.1x in scratch
    builds at 100 components, benchmarks/results/genpath-100*.json)."""
    import multiprocessing
    import threading

    if multiprocessing.parent_process() is None and threading.current_thread() is threading.main_thread():
        from autocoder.validate.shared_server import prestart

        prestart(directory, system, build, functools.partial(_rerun_components, directory, system))
    return run_test(directory, name, test_path(name), True, group)


def _test_id(test_file: str, junit_name: str) -> str:
    """JUnit's `tests.test_x.Class::name` as pytest's node id from the project root
    (`generated/src/tests/test_x.py::Class::name`), which an editor opens and pytest reruns."""
    from autocoder.userpaths import shown

    classname, _, name = junit_name.rpartition("::")
    module = test_file.removesuffix(".py").replace("/", ".")
    inner = classname.removeprefix(module).lstrip(".")
    return "::".join([shown(f"{SRC}/{test_file}"), *([inner] if inner else []), name])


def run_bench(directory: Path, name: str, group: Siblings | None = None) -> TaskFailed | None:
    """`group`: the build's bench tasks; this one may measure pending ones in its child too.
    A task whose result another task's batch recorded reads no IR and makes no scratch space."""
    from autocoder.codegen.strategies import simplest_message
    from autocoder.ir.models import load_slice
    from autocoder.validate.bench import bench_batch, bench_isolated
    from autocoder.validate.inprocess import scratch_directory
    from autocoder.validate.isolated import ChildFailed
    from autocoder.validate.siblings import run_batched

    simplest = functools.partial(simplest_message, cache=directory / SAMPLES)
    src = directory / SRC

    def alone() -> dict[str, Any]:
        with scratch_directory(f"autocoder-bench-{name}-") as scratch:
            slice_ = load_slice(directory / GENERATED / "ir" / f"{name}.json")
            return bench_isolated(src, slice_, scratch / "alone", simplest)

    def batch(names: list[str]) -> dict[str, Any]:
        with scratch_directory(f"autocoder-bench-{name}-") as scratch:
            slices = [load_slice(directory / GENERATED / "ir" / f"{n}.json") for n in names]
            return bench_batch(src, slices, scratch / "batch", simplest)

    try:
        result = alone() if group is None else run_batched(directory, group, name, batch, alone)
    except ChildFailed as exc:
        return _failure(f"bench:{name}", "its benchmark did not finish", [f"the benchmark run {exc}"])
    _write_json(directory / REPORTS / "bench" / f"{name}.json", {"tier": "bench", **result})
    return bench_verdict(name, result)


def bench_verdict(name: str, result: dict[str, Any]) -> TaskFailed | None:
    """The failure of bench:<name> for its measurement `result` (bench.bench_component), or None."""
    if result["dead_letters"]:
        return _failure(
            f"bench:{name}",
            "its measured path failed",
            [
                f"{result['dead_letters']} of {result['iterations']} messages were dead-lettered; "
                f"see the component's tests for why its sample input is refused"
            ],
        )
    if not result["ok"]:
        return _failure(
            f"bench:{name}",
            "over its performance budget",
            [
                f"p95 {result['p95_ms']} ms > budget {result['budget_p95_ms']} ms "
                f"+ {result['tolerance']:.0%} tolerance ({result['limit_ms']} ms); "
                f"p50 {result['p50_ms']} ms over {result['iterations']} messages "
                f"({result['decision']}; p95 confidence bounds {result['p95_lower_bound_ms']} to "
                f"{result['p95_upper_bound_ms']} ms, {result['rule']['bound_confidence']:.1%} each)"
            ],
        )
    return None


def run_typecheck(directory: Path, system: str) -> TaskFailed | None:
    from autocoder.validate.types import typecheck

    findings = typecheck(directory / SRC, system, directory / GENERATED / ".cache" / "mypy")
    _write_json(
        directory / REPORTS / "typecheck.json",
        {"tier": "typecheck", "ok": not findings, "findings": [f.to_json() for f in findings]},
    )
    if findings:
        return _failure("typecheck", f"mypy found {len(findings)} error(s)", [f.format() for f in findings])
    return None


def run_policy(directory: Path, runtime_files: list[str]) -> TaskFailed | None:
    from autocoder.ir.models import load_ir
    from autocoder.validate.architecture import verify
    from autocoder.validate.merge import FileCache
    from autocoder.validate.sarif import sarif_log

    ir = load_ir(directory / GENERATED / "ir.v1.json")
    cache = FileCache(directory / GENERATED / ".cache" / "policy.json")
    findings = verify(ir, directory / SRC, runtime_files, cache)
    _write_json(directory / REPORTS / "sarif" / "policy.sarif", sarif_log(findings))
    _write_json(
        directory / REPORTS / "policy.json",
        {"tier": "policy", "ok": not findings, "findings": [f.to_json() for f in findings]},
    )
    if findings:
        return _failure(
            "policy", f"{len(findings)} architecture policy violation(s)", [f.format() for f in findings]
        )
    return None


def run_report(directory: Path, names: list[str], paths: list[str] | None = None) -> None:
    """Merges the per-component results on disk (validate/merge.py: an unchanged file is neither
    re-read nor re-encoded) with the system tiers' into summary.json, the merged SARIF and the
    alert thresholds."""
    from autocoder.validate.budgets import budget_rules
    from autocoder.validate.merge import Encoded, FileCache, encode_bytes, sarif_log, sarif_runs, tier_result
    from autocoder.validate.report import TIERS, alert_thresholds, summary
    from autocoder.validate.sarif import merge

    reports, slices = f"{directory}/{REPORTS}", f"{directory}/{GENERATED}/ir"
    cache = FileCache(directory / GENERATED / ".cache" / "report.json")
    results: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, dict[str, bool]] = {}
    for name in names:
        for tier in TIERS:
            found = cache.get(f"{reports}/{tier}/{name}.json", tier_result)
            if found is not None:
                verdicts.setdefault(name, {})[tier] = found[0]
                results.setdefault(name, {})[tier] = Encoded(found[1])
    path_results: dict[str, Any] = {}
    path_verdicts: dict[str, bool] = {}
    for name in paths or []:
        found = cache.get(f"{reports}/test/{name}.json", tier_result)
        if found is not None:
            path_verdicts[name] = found[0]
            path_results[name] = Encoded(found[1])
    system = {}
    for key, relative in (
        ("policy", "policy.json"),
        ("integration", "test/integration.json"),
        ("types", "typecheck.json"),
    ):
        path = Path(reports, relative)
        system[key] = json.loads(path.read_text()) if path.exists() else None
    document = summary(
        results,
        system["policy"],
        system["integration"],
        system["types"],
        verdicts=verdicts,
        paths=path_results,
        path_verdicts=path_verdicts,
    )
    _write_bytes(Path(reports, "summary.json"), encode_bytes(document))
    logs = []
    for stem in sorted({*names, "policy"}, key=lambda stem: f"{stem}.sarif"):
        runs = cache.get(f"{reports}/sarif/{stem}.sarif", sarif_runs)
        if runs is not None:
            logs.append(sarif_log(runs))
    _write_bytes(Path(reports, "autocoder.sarif"), encode_bytes(merge(logs)))
    budgets = []
    for name in names:
        p95 = cache.get(f"{slices}/{name}.json", _budget_p95)
        if p95 is None:
            raise TaskFailed(
                f"report failed: {GENERATED}/ir/{name}.json is missing or unreadable; run the ir task"
            )
        budgets.append({"name": name, "budget": {"p95_ms": p95}})
    tolerance = cache.get(_rules("budgets.yaml"), _tolerance)
    if tolerance is None:  # not a plain file, or unreadable: budget_rules says why
        tolerance = float(budget_rules()["tolerance"])
    _write_bytes(
        Path(reports, "alert-thresholds.json"),
        encode_bytes(alert_thresholds({"components": budgets}, tolerance)),
    )
    cache.save()


def _tolerance(raw: bytes) -> float:
    """budget_rules()["tolerance"] from rules/budgets.yaml's bytes, cached by the report's
    FileCache: parsing the YAML (and importing yaml, ~50 ms) on every edit cost more than the
    one number. ValueError (the cache's "unreadable") when the file has no such number."""
    import yaml

    try:
        return float(yaml.safe_load(raw)["tolerance"])
    except (KeyError, TypeError, yaml.YAMLError) as exc:
        raise ValueError(f"no tolerance: {exc}") from None


def _budget_p95(raw: bytes) -> float:
    """A component's p95 budget from its IR slice (the same as in ir.v1.json). Read as JSON,
    not through the Slice model: `ir` wrote the slice from that model, and importing the IR's
    pydantic models (0.3-0.5 s, more than all the rest of `report` at 500 components) for the
    one number of the one slice an edit changed would dominate the task. ValueError (the
    result cache's "unreadable") when the slice has no such number."""
    try:
        p95 = json.loads(raw)["component"]["budget"]["p95_ms"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"no component.budget.p95_ms: {exc}") from None
    if isinstance(p95, bool) or not isinstance(p95, int | float):
        raise ValueError(f"component.budget.p95_ms is not a number: {p95!r}")
    return float(p95)


def _write_bytes(path: Path, data: bytes) -> None:
    from autocoder.fsutil import write_if_changed

    write_if_changed(path, data)


# --------------------------------------------------------------------------- tasks


def _task(task: dict[str, Any]) -> dict[str, Any]:
    """Every validation task re-runs when the validation code changes and is cleaned by `doit clean`."""
    fingerprint = fingerprint_file(project_dir(), "validate", validate_fingerprint())
    return {**task, "file_dep": [*task["file_dep"], fingerprint], "clean": True}


def _component_tasks() -> tuple[Path, str, list[tuple[str, str]]] | None:
    directory = project_dir()
    outline = blueprint_outline(directory)
    if outline is None:
        return None
    return directory, outline[0], outline[1]


def task_lint() -> Any:
    """ruff check and format, bandit and the AST policy on each component's generated files,
    with the architecture policy's forbidden imports (AP104) of its module."""
    found = _component_tasks()
    if found is None:
        return
    directory, system, components = found
    from autocoder.validate.siblings import Siblings

    fingerprint = fingerprint_file(directory, "validate", validate_fingerprint())
    deps = {
        name: [
            f"{SRC}/{module_path(system, name)}",
            f"{SRC}/{test_path(name)}",
            f"{SRC}/pyproject.toml",
            f"{GENERATED}/ir/{name}.json",
            _rules("policy.yaml"),
        ]
        for name, _ in components
    }
    # a batch record is keyed by what ruff and bandit read: the two files, the ruff config and
    # the validation fingerprint (the tools' versions)
    members = tuple((name, (*dep[:3], fingerprint)) for name, dep in deps.items())
    group = Siblings("lint", uuid.uuid4().hex, members, f"{REPORTS}/lint", rewritten=False)
    records = group.records_dir(directory)
    for name, dep in deps.items():
        yield _task(
            {
                "name": name,
                "actions": [(run_lint, [directory, name, group])],
                "file_dep": dep,
                "targets": [f"{REPORTS}/lint/{name}.json", f"{REPORTS}/sarif/{name}.sarif"],
                "meta": batch_meta(records, name),  # the dispatch order: tasks/dispatch.py
            }
        )


def task_test() -> Any:
    """Each component's example and property tests; each path's integration test; the
    system's smoke test."""
    found = _component_tasks()
    if found is None:
        return
    directory, system, components = found
    from autocoder.validate.batch import Member, TierGroup

    unit = [f"{SRC}/{p}" for p in unit_test_deps(system)]
    fingerprint = fingerprint_file(directory, "validate", validate_fingerprint())
    members = tuple(
        Member(name, test_path(name), (f"{SRC}/{module_path(system, name)}", f"{SRC}/{test_path(name)}"))
        for name, _ in components
    )
    build = uuid.uuid4().hex  # this doit run: its test batches' records, its path tasks' server
    # a member's inputs (what a batch's record of its run is keyed by) are its task's file_dep:
    # its own, the shared ones, then the fingerprint, which _task adds last
    group = TierGroup(build, members, (*unit, fingerprint), f"{REPORTS}/junit")
    records = group.records_dir(directory)
    for member in members:
        yield _task(
            {
                "name": member.name,
                "actions": [(run_component_test, [directory, system, member.name, build, group])],
                # it may have launched the path tests' server early (run_component_test)
                "teardown": [(stop_shared_server, [directory, build])],
                "file_dep": [*member.own, *unit],
                "targets": [f"{REPORTS}/test/{member.name}.json", f"{REPORTS}/junit/{member.name}.xml"],
                "meta": batch_meta(records, member.name),
            }
        )
    yield _smoke_task(directory, system, [name for name, _ in components])
    yield from _path_tasks(directory, system, build)


def _smoke_task(directory: Path, system: str, components: list[str]) -> dict[str, Any]:
    """The whole system once: start, health, one message per ingress, clean stop. It depends on
    the wiring, the models and the runtime (autocoder_runtime is in the validate fingerprint),
    not on any component's logic: that is the path tests'. Starting the system imports every
    component's module, so it runs after every `gen:<component>` (task_dep: an order, not an
    input; a logic edit does not re-run it). Without that order it ran before some modules
    existed once tasks/dispatch.py put it first among the ready tasks of a build from scratch."""
    runtime = [p for p in runtime_paths(system) if p.endswith(".py") and not p.startswith("tests/paths/")]
    return _task(
        {
            "name": "integration",
            # in this process: the test starts the system as a subprocess of its own
            "doc": "smoke test: start the generated system on 127.0.0.1, call it over HTTP, stop it",
            "actions": [(run_test, [directory, "integration", "tests/test_integration.py", False])],
            "file_dep": [f"{SRC}/{p}" for p in runtime],
            "task_dep": [f"gen:{name}" for name in components],
            "targets": [f"{REPORTS}/test/integration.json", f"{REPORTS}/junit/integration.xml"],
        }
    )


def _path_tasks(directory: Path, system: str, build: str) -> Any:
    """test:path.<id>: one per path from a start to an end (autocoder.flowpaths), depending on
    the modules of the components on it and its own test file only. They share one server per
    build (validate/shared_server.py), started by the first of them that runs."""
    from autocoder.flowpaths import path_test_file
    from autocoder.tasks.compile_tasks import project_paths
    from autocoder.validate.siblings import Siblings

    paths = project_paths(directory)
    fingerprint = fingerprint_file(directory, "validate", validate_fingerprint())
    deps = {
        f"path.{path.id}": [
            *(f"{SRC}/{module_path(system, c)}" for c in path.components),
            f"{SRC}/{path_test_file(path.id)}",
            f"{SRC}/tests/paths/conftest.py",
        ]
        for path in paths
    }
    # several pending path tests checked in one round (validate/siblings.py, path_check's
    # run_path_batch); a batch record is keyed by the task's file_dep, the fingerprint too.
    # A result is rewritten only when its bytes change: only a missing one says "pending", so
    # an edit's path task finds no sibling and runs alone, as before batching
    members = tuple((name, (*dep, fingerprint)) for name, dep in deps.items())
    group = Siblings("path", build, members, f"{REPORTS}/test", rewritten=False)
    batch = PathGroup(group, tuple((f"path.{p.id}", tuple(p.components)) for p in paths))
    records = group.records_dir(directory)
    for path in paths:
        name = f"path.{path.id}"
        yield _task(
            {
                "name": name,
                "doc": f"integration test of the path {path.start} -> {path.end}",
                "actions": [
                    (run_path_test, [directory, system, path.id, build, list(path.components), batch])
                ],
                "teardown": [(stop_shared_server, [directory, build])],
                "file_dep": deps[name],
                "targets": [f"{REPORTS}/test/{name}.json", f"{REPORTS}/junit/{name}.xml"],
                "meta": batch_meta(records, name),
            }
        )


@dataclasses.dataclass(frozen=True)
class PathGroup:
    """The path tasks of one build: their batching group and each one's components."""

    siblings: Siblings
    components: tuple[tuple[str, tuple[str, ...]], ...]  # (task name, the path's components)


def run_path_test(
    directory: Path,
    system: str,
    path_id: str,
    build: str,
    components: list[str],
    group: PathGroup | None = None,
) -> TaskFailed | None:
    """The path's generated test, called in this worker (validate/path_check.py) against the
    build's shared server, which runs the components of the path tests this build re-runs;
    with `group`, possibly in one round with other pending path tests of the build (a batch
    vouches only for tests that passed: a failing one is run alone, here, as without it)."""
    from autocoder.canonical import canonical_json
    from autocoder.flowpaths import path_test_file
    from autocoder.fsutil import write_if_changed
    from autocoder.validate.path_check import PathCheck
    from autocoder.validate.shared_server import ServerFailed, shared_server
    from autocoder.validate.siblings import run_batched
    from autocoder.validate.testing import TestResult

    name = f"path.{path_id}"
    test_file = path_test_file(path_id)
    reports = directory / REPORTS
    junit = reports / "junit" / f"{name}.xml"
    wanted = functools.partial(_rerun_components, directory, system)
    inputs = _path_inputs(directory, system, path_id, components)  # as this run sees them
    check = PathCheck(directory / SRC, test_file)  # loaded while a server it starts boots

    def alone() -> TestResult:
        with shared_server(directory, system, build, components, wanted, check.load) as url:
            return check.run(url, junit)

    def batch(names: list[str]) -> dict[str, Any]:
        assert group is not None
        return _path_batch(directory, system, build, group, names, check, wanted)

    try:
        found = alone() if group is None else run_batched(directory, group.siblings, name, batch, alone)
    except ServerFailed as exc:
        return TaskFailed(f"test:{name} failed: {exc}")
    result = found if isinstance(found, TestResult) else check.passed(junit, float(found["seconds"]))
    _write_json(
        reports / "test" / f"{name}.json",
        {"component": name, "tier": "test", "ok": result.ok, **result.to_json()},
    )
    # a guess's input (_rerun_components): lost in a power cut, it only makes a server bigger
    write_if_changed(
        _inputs_record(directory, name), canonical_json(inputs if result.ok else {}), durable=False
    )
    if not result.ok:
        lines = [f"{_test_id(test_file, f['test'])}: {f['message']}" for f in result.failed]
        return _failure(f"test:{name}", f"the path test failed ({test_file})", lines)
    return None


def _path_batch(
    directory: Path,
    system: str,
    build: str,
    group: PathGroup,
    names: list[str],
    own: PathCheck,
    wanted: Callable[[], set[str]],
) -> dict[str, Any]:
    """Payload ({"seconds": s}) of each path test of `names` (this task's first: `own`) that
    passed in one round against the shared server; those whose components the server lacks
    are left out (their own tasks run them alone, on a server with them)."""
    from autocoder.flowpaths import path_test_file
    from autocoder.validate.path_check import PathCheck, run_path_batch
    from autocoder.validate.shared_server import served_components, shared_server

    parts = dict(group.components)
    src = directory / SRC
    checks = {
        names[0]: own,
        **{n: PathCheck(src, path_test_file(n.removeprefix("path."))) for n in names[1:]},
    }
    with shared_server(directory, system, build, parts[names[0]], wanted, own.load) as url:
        served = served_components(directory)
        # a test whose components the server lacks could pass there without its message
        # ever reaching its end (an empty inbox counts as done): only its own task runs it
        runnable = {
            n: c for n, c in checks.items() if n == names[0] or served is None or set(parts[n]) <= served
        }
        # a component that keeps state across messages handles one by what came before it: a
        # round posts one message per path, all fanning out alike, so it could open a circuit
        # breaker or empty a rate limit's bucket where the lone test's one passes (its own
        # task runs such a path alone)
        stateful = _stateful(directory, {c for n in runnable for c in parts[n]})
        runnable = {n: c for n, c in runnable.items() if not stateful & set(parts[n])}
        return {name: {"seconds": seconds} for name, seconds in run_path_batch(runnable, url).items()}


def _stateful(directory: Path, components: set[str]) -> set[str]:
    """Those of `components` whose handling of a message depends on the messages before it: a
    circuit breaker, or a rate limit whose burst is below the kernel's default (the one every
    component without a declared limit gets: rules/budgets.yaml). Read from their IR slices;
    an unreadable slice counts as stateful: its path is then run alone, as without batching."""
    from autocoder.analysis.deployment import budget_defaults
    from autocoder.ir.models import load_slice

    default_burst = budget_defaults()["default_rate_limit"]["burst"]
    found = set()
    for name in components:
        try:
            capabilities = load_slice(directory / GENERATED / "ir" / f"{name}.json").component.capabilities
        except (OSError, ValueError):
            found.add(name)
            continue
        if capabilities.circuit_breaker is not None or capabilities.rate_limit.burst < default_burst:
            found.add(name)
    return found


def _rerun_components(directory: Path, system: str) -> set[str]:
    """The components of the path tests this build is likely to run: those that have not passed
    on the current content of the files they depend on (each passing run records their
    sha256). A guess (doit decides, by its own records), so it errs towards more: a path test
    it misses gets the whole system (validate/shared_server.py)."""
    from autocoder.tasks.compile_tasks import project_paths

    found: set[str] = set()
    digests: dict[str, str] = {}  # the paths share files (the start's module, the conftest)
    for path in project_paths(directory):
        try:
            passed = json.loads(_inputs_record(directory, f"path.{path.id}").read_bytes())
        except (OSError, ValueError):
            passed = None
        if passed != _path_inputs(directory, system, path.id, list(path.components), digests):
            found.update(path.components)
    return found


def _inputs_record(directory: Path, name: str) -> Path:
    return directory / GENERATED / ".cache" / "paths" / f"{name}.inputs.json"


def _path_inputs(
    directory: Path, system: str, path_id: str, components: list[str], digests: dict[str, str] | None = None
) -> dict[str, str]:
    """sha256 of what a path test depends on (its task's file_dep, plus the validate
    fingerprint); a missing file hashes as "" so it never matches a passing run. `digests`:
    the files already hashed in this pass over the paths (by name), each read once (under ""
    the fingerprint file's name)."""
    from autocoder.flowpaths import path_test_file

    known = {} if digests is None else digests
    if "" not in known:  # the fingerprint's file, written (if changed) once per pass
        known[""] = fingerprint_file(directory, "validate", validate_fingerprint())
    files = [
        *(f"{SRC}/{module_path(system, c)}" for c in components),
        f"{SRC}/{path_test_file(path_id)}",
        f"{SRC}/tests/paths/conftest.py",
        known[""],
    ]
    for name in files:
        if name not in known:
            try:
                known[name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
            except OSError:
                known[name] = ""
    return {name: known[name] for name in files}


def stop_shared_server(directory: Path, build: str) -> None:
    from autocoder.validate.shared_server import stop_shared_server as stop

    stop(directory, build)


def task_bench() -> Any:
    """Per-message p50/p95 of each component's kernel path against its budget."""
    found = _component_tasks()
    if found is None:
        return
    directory, system, components = found
    from autocoder.validate.siblings import Siblings

    fingerprint = fingerprint_file(directory, "validate", validate_fingerprint())
    runtime = [f"{SRC}/{system}/models.py"]
    deps = {
        name: [
            f"{SRC}/{module_path(system, name)}",
            f"{GENERATED}/ir/{name}.json",
            *runtime,
            _rules("budgets.yaml"),
        ]
        for name, _ in components
    }
    # a batch record is keyed by the task's file_dep (the fingerprint too, which _task adds);
    # a result holds its run's times, so it is rewritten on every run
    members = tuple((name, (*dep, fingerprint)) for name, dep in deps.items())
    group = Siblings("bench", uuid.uuid4().hex, members, f"{REPORTS}/bench", rewritten=True)
    records = group.records_dir(directory)
    for name, dep in deps.items():
        yield _task(
            {
                "name": name,
                "actions": [(run_bench, [directory, name, group])],
                "file_dep": dep,
                "targets": [f"{REPORTS}/bench/{name}.json"],
                "meta": batch_meta(records, name),
            }
        )


def task_typecheck() -> Any:
    """mypy over the whole generated package and its tests (incremental)."""
    found = _component_tasks()
    if found is None:  # no usable blueprint: running this task runs `check`, which says why
        return {"actions": None, "task_dep": ["check"]}
    directory, system, components = found
    code = [p for p in runtime_paths(system) if p.endswith((".py", ".toml"))]
    code += [p for n, _ in components for p in (module_path(system, n), test_path(n))]
    return _task(
        {
            "actions": [(run_typecheck, [directory, system])],
            "file_dep": [f"{SRC}/{p}" for p in code],
            "targets": [f"{REPORTS}/typecheck.json"],
        }
    )


def task_policy() -> Any:
    """Architecture policy, system-wide: resources, kernel capabilities, auth on ingress, forbidden
    imports in the runtime's files. A component's own module is checked by its lint task (AP104),
    so this task neither depends on nor re-scans any component's code."""
    found = _component_tasks()
    if found is None:  # no usable blueprint: running this task runs `check`, which says why
        return {"actions": None, "task_dep": ["check"]}
    directory, system, _ = found
    code = [p for p in runtime_paths(system) if p.startswith(f"{system}/") and p.endswith(".py")]
    return _task(
        {
            "actions": [(run_policy, [directory, code])],
            "file_dep": [f"{GENERATED}/ir.v1.json", _rules("policy.yaml"), *(f"{SRC}/{p}" for p in code)],
            "targets": [f"{REPORTS}/policy.json", f"{REPORTS}/sarif/policy.sarif"],
        }
    )


def task_report() -> Any:
    """summary.json, the merged SARIF and the alert thresholds, from every tier's results."""
    found = _component_tasks()
    if found is None:  # no usable blueprint: running this task runs `check`, which says why
        return {"actions": None, "task_dep": ["check"]}
    directory, _, components = found
    from autocoder.tasks.compile_tasks import project_paths

    results = [f"{REPORTS}/{tier}/{n}.json" for n, _ in components for tier in ("lint", "test", "bench")]
    paths = [f"path.{p.id}" for p in project_paths(directory)]
    return _task(
        {
            "actions": [(run_report, [directory, [n for n, _ in components], paths])],
            "file_dep": [
                *results,
                *(f"{REPORTS}/test/{p}.json" for p in paths),
                f"{REPORTS}/policy.json",
                f"{REPORTS}/typecheck.json",
                f"{REPORTS}/test/integration.json",
                f"{GENERATED}/ir.v1.json",
            ],
            "targets": [
                f"{REPORTS}/summary.json",
                f"{REPORTS}/autocoder.sarif",
                f"{REPORTS}/alert-thresholds.json",
            ],
        }
    )
