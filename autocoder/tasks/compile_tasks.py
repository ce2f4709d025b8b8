"""doit tasks of the compile stage: `check` and `ir`.

Each task declares its file dependencies (the two blueprints) and its targets (the report and
the IR files), and depends on a file holding the generator fingerprint, so that upgrading Autocoder
re-runs what it would now produce differently. Task actions never raise for a user mistake:
they print the diagnostics and return a TaskFailed, so doit shows a message, not a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed

import autocoder
from autocoder.codegen.runtime_ir import RUNTIME_IR
from autocoder.deploy.plan_input import PLAN_INPUT
from autocoder.ir.write import ir_path, slice_path
from autocoder.layout import ARCHITECTURE, CHECK_REPORT, DEPLOYMENT, GENERATED, MAX_BLUEPRINT_BYTES

if TYPE_CHECKING:
    from autocoder.analysis.memo import ComponentMemo
    from autocoder.compile import CompileResult
    from autocoder.flowpaths import FlowPath

# Loading the task list must stay cheap (it happens on every `doit`, even a no-op): the
# compiler, pydantic models and report writers are imported only when an action runs.

STRICT_ENV = "AUTOCODER_STRICT"


def project_dir() -> Path:
    """The blueprint directory: doit runs tasks from the dodo file's directory."""
    return _project_path(os.getcwd())


@functools.lru_cache(maxsize=8)
def _project_path(cwd: str) -> Path:
    """One Path per directory: the task creators ask thousands of times per task loading."""
    return Path(cwd)


def strict_mode() -> bool:
    """Warnings fail the build when AUTOCODER_STRICT=1 (`autocoder build --strict` sets it)."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0", "false", "no")


@functools.cache
def generator_fingerprint() -> str:
    """Hash of everything in Autocoder that changes stage-1 output: its code and its rules."""
    digest = hashlib.sha256(autocoder.__version__.encode())
    package = Path(autocoder.__file__).parent
    for sub in ("", "analysis", "blueprint", "expr", "ir"):
        for path in sorted((package / sub).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    for projection in ("codegen/runtime_ir.py", "deploy/plan_input.py"):  # what `ir` also writes
        digest.update(projection.encode())
        digest.update((package / projection).read_bytes())
    rules = importlib.resources.files("autocoder.rules")
    for name in ("budgets.yaml", "diagnostics.yaml"):
        digest.update(rules.joinpath(name).read_bytes())
    return digest.hexdigest()


FINGERPRINTS = f"{GENERATED}/.autocoder"


@functools.cache
def fingerprint_file(directory: Path, stage: str, fingerprint: str) -> str:
    """A file holding a stage's generator fingerprint, for the stage's tasks' file_dep.

    Equivalent to doit's `uptodate=[config_changed(...)]` (a new Autocoder, templates or
    settings re-run the stage) but cheaper on a no-op build of thousands of tasks: doit stats a
    file instead of calling and inspecting a checker per task. Rewritten only when it changes.
    """
    from autocoder.fsutil import OutsideProjectError, confined, write_if_changed

    relative = f"{FINGERPRINTS}/{stage}.fingerprint"
    with contextlib.suppress(OutsideProjectError):  # then the tasks refuse to run (output_problem)
        write_if_changed(confined(directory, Path(relative)), (fingerprint + "\n").encode())
    return relative


def output_problem(directory: Path) -> str | None:
    """Why the build must not write into `directory`'s output tree, or None when it may:
    a symlink under generated/ (or generated/ itself) that points outside the project."""
    from autocoder.fsutil import escaping_link

    link = escaping_link(directory, directory / GENERATED)
    if link is None:
        return None
    shown = link.relative_to(directory)
    return (
        f"refusing to run: {shown} is a symlink to {os.path.realpath(link)}, outside the project "
        f"{directory.resolve()} (the build writes and deletes under {GENERATED}/); nothing was "
        f"written or deleted; fix: replace {shown} with a real directory (or remove it), then rerun"
    )


@functools.cache
def output_problem_at_load(directory: Path) -> str | None:
    """output_problem, once per task loading (every task creator asks)."""
    return output_problem(directory)


def refuse_unsafe_output(directory: Path) -> None:
    """Stop loading the tasks (doit prints `ERROR: <why>`, no traceback, exit code 3) when the
    output tree leads out of the project: no task may run, and `doit clean` may delete
    nothing, until it is fixed."""
    problem = output_problem_at_load(directory)
    if problem is not None:
        from doit.exceptions import InvalidTask

        raise InvalidTask(problem)


def clean_targets(directory: Path, targets: list[str], dryrun: bool = False) -> TaskFailed | None:
    """`doit clean` for a task's targets, deleting only files inside the project (doit's own
    clean follows symlinked directories wherever they point)."""
    from autocoder.fsutil import OutsideProjectError, confined

    refused = []
    for target in sorted(targets, reverse=True):
        try:
            path = confined(directory, Path(target), "delete")
        except OutsideProjectError as exc:
            refused.append(str(exc))
            continue
        if path.is_file() or path.is_symlink():
            print(f"removing file '{target}'")
            if not dryrun:
                path.unlink()
    return TaskFailed("\n".join(refused) + "\n") if refused else None


def clean_build_output(directory: Path, dryrun: bool = False) -> TaskFailed | None:
    """`doit clean` of `check`, which every other task depends on: besides the task targets,
    everything else the build made under generated/ (fingerprints, the outline cache, tool
    caches, report folders). What stays: .doit.db (doit's own) and the build lock, which a
    build may hold; the clean waits for a running build first."""
    import shutil

    from autocoder.fsutil import OutsideProjectError, confined
    from autocoder.tasks.lock import LOCK, acquire

    try:
        root = confined(directory, Path(GENERATED), "delete in", directory=True)
    except OutsideProjectError as exc:
        return TaskFailed(f"{exc}\n")
    if not root.is_dir():
        return None
    if not dryrun:
        acquire(directory)
    for path in sorted(root.iterdir()):
        if path.name == Path(LOCK).name:
            continue
        print(f"removing '{GENERATED}/{path.name}'")
        if dryrun:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # does not follow symlinks: nothing outside the project goes
        else:
            path.unlink()
    return None


OUTLINE_CACHE = f"{GENERATED}/.outline.json"

Outline = tuple[str, list[tuple[str, str]]]
# the outline plus the wiring, (upstream, downstream) per bound port pair: the integration
# test paths (autocoder.flowpaths) are task names, so they too are known before `ir` runs
Graph = tuple[str, list[tuple[str, str]], list[tuple[str, str]]]

# What a name in the outline may be: it becomes part of target paths (generated/ir/<name>.json,
# <system>/components/<name>.py), so a cached or parsed name that is anything else is refused.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_KINDS = frozenset(
    ("source", "api_endpoint", "transformer", "filter", "router", "aggregator", "store", "sink", "custom")
)  # blueprint.models.COMPONENT_KINDS (not imported: loading tasks must stay cheap)


def blueprint_outline(directory: Path) -> Outline | None:
    graph = blueprint_graph(directory)
    return None if graph is None else (graph[0], graph[1])


def project_paths(directory: Path) -> list[FlowPath]:
    """The integration test paths of the blueprint (autocoder.flowpaths); none while it cannot
    be read."""
    graph = blueprint_graph(directory)
    return [] if graph is None else _flow_paths(tuple(graph[1]), tuple(graph[2]))


@functools.lru_cache(maxsize=4)
def _flow_paths(
    components: tuple[tuple[str, str], ...], edges: tuple[tuple[str, str], ...]
) -> list[FlowPath]:
    """Once per task loading (gen, test and report ask)."""
    from autocoder.flowpaths import flow_paths

    return flow_paths(dict(components), list(edges))


def blueprint_graph(directory: Path) -> Graph | None:
    """(system name, [(component, kind)], [(upstream, downstream)]) for declaring targets;
    None when the blueprint cannot be read yet, or when the output directory is unsafe (see
    output_problem): the `check` task then reports exactly what is wrong.

    Runs on every doit invocation, so it is cached by the blueprint's hash: a no-op build hashes
    the file instead of parsing it. It applies `check`'s limits (size, nesting, node count) with
    `check`'s own reader, so a hostile file costs the task list no more than `check` spends
    refusing it: a file above the size limit is not even read whole.
    """
    try:
        with (directory / ARCHITECTURE).open("rb") as handle:
            raw = handle.read(MAX_BLUEPRINT_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_BLUEPRINT_BYTES:
        return None  # `check` reports AC005 with the size and the limit
    if output_problem_at_load(directory) is not None:
        return None  # no per-component task, nothing to clean; `check` says why
    digest = hashlib.sha256(raw).hexdigest()
    return _outline(directory, digest, raw)


@functools.lru_cache(maxsize=4)
def _outline(directory: Path, digest: str, raw: bytes) -> Graph | None:
    cache = directory / OUTLINE_CACHE
    try:
        cached = json.loads(cache.read_text())
        if cached["sha256"] == digest:
            if cached["system"] is None:
                return None  # this content does not parse: known, not parsed again
            # a cache is data on disk: trusted only when it holds what a parse could produce
            outline = _valid_outline(
                cached["system"],
                [tuple(c) for c in cached["components"]],
                [tuple(e) for e in cached["edges"]],
            )
            if outline is not None:
                return outline
    except (OSError, ValueError, KeyError, TypeError):
        pass
    outline = _parse_outline(raw)
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed

    system, components, edges = outline if outline is not None else (None, [], [])
    data = {"sha256": digest, "system": system, "components": components, "edges": edges}
    with contextlib.suppress(OSError):  # a cache: failing to write it costs only time
        write_if_changed(confined(directory, Path(OUTLINE_CACHE)), canonical_json(data))
    return outline


def _parse_outline(raw: bytes) -> Graph | None:
    from autocoder.blueprint.source import parse_yaml
    from autocoder.diagnostics import BlueprintError

    try:
        data = parse_yaml(raw, ARCHITECTURE).data
        system = data["system"]["name"]
        components = [(c["name"], c["kind"]) for c in data["components"]]
    except BlueprintError:
        return None
    except Exception:  # noqa: BLE001 - any problem here is reported by `check` with a position
        return None
    return _valid_outline(system, components, _parse_edges(data))


def _parse_edges(data: Any) -> list[tuple[Any, ...]]:
    """(upstream, downstream) of every binding; none when the bindings are malformed (`check`
    says how), which costs the build its path tests, not its component tasks."""
    try:
        return [
            (binding["from"].split(".")[0], target.split(".")[0])
            for binding in data.get("bindings") or []
            for target in (binding["to"] if isinstance(binding["to"], list) else [binding["to"]])
        ]
    except Exception:  # noqa: BLE001 - any problem here is reported by `check` with a position
        return []


def _valid_outline(
    system: object, components: list[tuple[Any, ...]], edges: list[tuple[Any, ...]]
) -> Graph | None:
    """The outline when every name is a plain lower_snake name and every kind is known; the
    edges between known components (others are the compiler's to report)."""
    valid: list[tuple[str, str]] = []
    for component in components:
        name, kind = component if len(component) == 2 else (None, None)
        if _is_name(name) and _is_name(kind) and kind in _KINDS:
            valid.append((str(name), str(kind)))
    if not isinstance(system, str) or not _is_name(system):
        return None
    if len(valid) != len(components) or len({n for n, _ in valid}) != len(valid):
        return None
    names = {n for n, _ in valid}
    wired = {(str(e[0]), str(e[1])) for e in edges if len(e) == 2 and e[0] in names and e[1] in names}
    return system, sorted(valid), sorted(wired)


def _is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


_COMPILED: dict[tuple[str, bool], CompileResult] = {}


def read_sources(directory: Path) -> tuple[tuple[bytes | OSError, bytes | OSError], str]:
    """Both blueprints' bytes (an OSError for one that cannot be read, as compile.read_blueprints,
    without importing the compiler) and their key: the hash of the bytes themselves (repr() of a
    50 MB file would cost 200 MB)."""
    raws: list[bytes | OSError] = []
    digest = hashlib.sha256()
    for name in (ARCHITECTURE, DEPLOYMENT):
        try:
            raw: bytes | OSError = (directory / name).read_bytes()
        except OSError as exc:
            raw = exc
        raws.append(raw)
        digest.update(hashlib.sha256(raw if isinstance(raw, bytes) else repr(raw).encode()).digest())
    return (raws[0], raws[1]), digest.hexdigest()


def compile_cached(directory: Path, strict: bool) -> CompileResult:
    """Compile once per doit run and blueprint content (check and ir share the work)."""
    return compile_keyed(directory, strict)[1]


MEMO_ENV = "AUTOCODER_COMPILE_MEMO"  # `off`: analyse and build every component afresh


def compile_keyed(directory: Path, strict: bool) -> tuple[tuple[str, bool], CompileResult]:
    """compile_cached's result and its key (the blueprints' hash, strict). Each compile uses
    and renews this process's per-component memo (analysis.memo; in a warm worker's child,
    the worker's, filled as it warmed up): after an edit, the components whose text did not
    change are not analysed or built again."""
    from autocoder.compile import compile_sources

    raws, digest = read_sources(directory)
    key = (digest, strict)
    if key not in _COMPILED:
        _COMPILED.clear()
        _COMPILED[key] = compile_sources(*raws, strict=strict, memo=process_memo())
    return key, _COMPILED[key]


def process_memo() -> ComponentMemo | None:
    """This process's compile memo, or None when AUTOCODER_COMPILE_MEMO turns it off."""
    from autocoder.analysis.memo import PROCESS_MEMO

    if os.environ.get(MEMO_ENV, "").lower() in ("off", "0", "false", "no"):
        return None
    return PROCESS_MEMO


def _fail_or_none(result: CompileResult, strict: bool) -> TaskFailed | None:
    """Warnings go to stderr; errors (and warnings under --strict) fail the task with the list."""
    from autocoder.diagnostics import format_report

    if result.ok(strict):
        if result.diagnostics:
            print(format_report(result.diagnostics), file=sys.stderr)
        return None
    note = " (strict: warnings count as errors)" if strict else ""
    return TaskFailed(f"the blueprints do not compile{note}:\n{format_report(result.diagnostics)}")


def run_check(directory: Path, strict: bool) -> TaskFailed | None:
    """The `check` action: in a child of the project's warm worker (validate/warm_worker.py),
    which has imported the compiler already (~0.4 s an edit build otherwise pays first), when
    it has a ready one; else in this process, as the child would (tasks/warm_compile.py)."""
    from autocoder.tasks import warm_compile

    return warm_compile.check(directory, strict)


def check_in_process(directory: Path, strict: bool, *, output_checked: bool = False) -> TaskFailed | None:
    """output_checked: the caller found the output tree safe just now (warm_compile.check
    does before it asks the worker's child): the walk of generated/ is not done twice."""
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed

    problem = None if output_checked else output_problem(directory)
    if problem is not None:
        return TaskFailed(problem)
    result = compile_cached(directory, strict)
    report = {
        "ok": result.ok(strict),
        "strict": strict,
        "diagnostics": [d.to_json() for d in result.diagnostics],
    }
    try:
        write_if_changed(confined(directory, Path(GENERATED, CHECK_REPORT)), canonical_json(report))
    except OSError as exc:
        return TaskFailed(f"check: cannot write {GENERATED}/{CHECK_REPORT}: {exc.strerror or exc}")
    return _fail_or_none(result, strict)


def run_ir(directory: Path, strict: bool) -> TaskFailed | None:
    """The `ir` action: writes what `check`'s warm child planned for these very blueprints when
    it did (tasks/warm_compile.py), else compiles (in a warm child, or in this process)."""
    from autocoder.tasks import warm_compile

    return warm_compile.ir(directory, strict)


def ir_in_process(directory: Path, strict: bool) -> TaskFailed | None:
    from autocoder.ir.write import write_ir

    result = compile_cached(directory, strict)
    failed = _fail_or_none(result, strict)
    if failed is not None or result.ir is None:
        return failed or TaskFailed("no IR was produced")
    try:
        written = write_ir(directory / GENERATED, result.ir, result.slices, root=directory)
        written += write_projections(directory)
    except OSError as exc:
        return TaskFailed(f"ir: {exc.strerror or exc}")
    print(ir_summary(len(result.slices), len(written)))
    return None


def ir_summary(components: int, written: int) -> str:
    return f"ir: {components} component(s), {written} file(s) rewritten"


def write_projections(directory: Path) -> list[Path]:
    """The cuts of generated/ir.v1.json that gen:runtime and deploy:plan read instead of it
    (codegen/runtime_ir.py, deploy/plan_input.py), from one parse of it, each written only when
    its bytes change (so a logic edit runs neither reader); the paths written."""
    from autocoder.codegen.runtime_ir import write_projection
    from autocoder.deploy.plan_input import write_plan_input
    from autocoder.fsutil import confined

    generated = directory / GENERATED
    ir = json.loads(confined(directory, ir_path(generated)).read_bytes())
    written = []
    if write_projection(generated, directory, ir):
        written.append(Path(GENERATED, RUNTIME_IR))
    if write_plan_input(generated, directory, ir):
        written.append(Path(GENERATED, PLAN_INPUT))
    return written


# Dependencies and targets are paths relative to the project directory, so that doit's state
# stays valid when the checkout moves (a CI cache restored into another path).


def task_check() -> dict[str, Any]:
    """Parse and analyse architecture.yaml and deployment.yaml (schema and semantic checks)."""
    directory = project_dir()
    strict = strict_mode()
    refuse_unsafe_output(directory)
    targets = [f"{GENERATED}/{CHECK_REPORT}"]
    return {
        "actions": [(run_check, [directory, strict])],
        "file_dep": [
            *_existing(directory, [ARCHITECTURE, DEPLOYMENT]),
            _compile_fingerprint(directory, strict),
        ],
        "targets": targets,
        "clean": [(clean_targets, [directory, targets]), (clean_build_output, [directory])],
        "verbosity": 1,
    }


RUNTIME_IR_FILE = f"{GENERATED}/{RUNTIME_IR}"
PLAN_INPUT_FILE = f"{GENERATED}/{PLAN_INPUT}"


@functools.cache
def build_token() -> str:
    """This doit run's identity (tasks/plan_handover.py): minted as the tasks load (task_ir),
    before doit forks its `-n` workers, which inherit it."""
    import uuid

    return uuid.uuid4().hex


def task_ir() -> dict[str, Any]:
    """Compile the blueprints into generated/ir.v1.json, one slice per component and the
    projections gen:runtime and deploy:plan read (generated/ir.runtime.json, ir.deploy.json)."""
    directory = project_dir()
    strict = strict_mode()
    refuse_unsafe_output(directory)
    build_token()  # minted here, in the process that forks the workers
    generated = Path(GENERATED)
    outline = blueprint_outline(directory)
    names = [name for name, _ in outline[1]] if outline else []
    targets = [str(t) for t in [ir_path(generated)] + [slice_path(generated, name) for name in names]]
    targets.append(RUNTIME_IR_FILE)  # what gen:runtime reads (codegen/runtime_ir.py)
    targets.append(PLAN_INPUT_FILE)  # what deploy:plan reads (deploy/plan_input.py)
    return {
        "actions": [(run_ir, [directory, strict])],
        # the fingerprint too: a new Autocoder that changes only what `ir` writes (not check's
        # report, which is rewritten only when its bytes change) must still re-run it
        "file_dep": [
            *_existing(directory, [ARCHITECTURE, DEPLOYMENT]),
            f"{GENERATED}/{CHECK_REPORT}",
            _compile_fingerprint(directory, strict),
        ],
        "targets": targets,
        "clean": [(clean_targets, [directory, targets])],
        "verbosity": 1,
    }


def _compile_fingerprint(directory: Path, strict: bool) -> str:
    return fingerprint_file(directory, "compile", compile_fingerprint_text(strict))


def compile_fingerprint_text(strict: bool) -> str:
    """The compile stage's fingerprint: the generator's code, and the strict setting (warnings
    fail `check` or not), which `autocoder explain` tells apart from a code change."""
    return f"{generator_fingerprint()} strict={strict}"


def _existing(directory: Path, names: list[str]) -> list[str]:
    """file_dep of the blueprints that exist: a missing one is reported by `check` itself
    (doit would otherwise stop with its own, less helpful message)."""
    return [name for name in names if (directory / name).exists()]
