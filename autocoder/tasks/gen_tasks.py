"""doit tasks of the code generation stage: `gen:<component>` and `gen:runtime`.

gen:<component> depends only on that component's IR slice, the templates it renders and the
generator fingerprint, so changing one component regenerates one component. gen:runtime
wires every component together: it depends on, and reads, generated/ir.runtime.json, the
projection of the IR holding only what it renders (codegen/runtime_ir.py), so an edit of a
component's logic, examples or budget does not run it; when a run's output bytes do not change,
doit's md5 check stops there.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed

import autocoder
from autocoder.codegen.batching import batching_wanted, forget_batches, gen_siblings
from autocoder.codegen.paths import (
    component_templates,
    module_path,
    runtime_paths,
    runtime_templates,
    test_path,
)
from autocoder.layout import GENERATED, LOCK_FILE
from autocoder.runtime_pkg import runtime_fingerprint
from autocoder.tasks.compile_tasks import (
    RUNTIME_IR_FILE,
    blueprint_outline,
    clean_targets,
    fingerprint_file,
    project_dir,
    project_paths,
    refuse_unsafe_output,
)
from autocoder.templates_dir import templates_root
from autocoder.tools import tool_versions

if TYPE_CHECKING:
    from autocoder.ir.models import IR
    from autocoder.validate.siblings import Siblings

SRC = f"{GENERATED}/src"
SAMPLES = f"{GENERATED}/.cache/samples"  # simplest valid message per schema hash (derived data)
FORMAT_CACHE = f"{GENERATED}/.cache/format-runtime.json"  # gen:runtime's formatted files by source hash


@functools.cache
def codegen_fingerprint(provider: str) -> str:
    """Version and code of the generator (the LLM provider's included) plus the provider's own
    fingerprint (`provider`: its canonical JSON, prompt version included): what changes output."""
    digest = hashlib.sha256(autocoder.__version__.encode())
    package = Path(autocoder.__file__).parent
    for path in sorted([*(package / "codegen").glob("*.py"), *(package / "llm").glob("*.py")]):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(provider.encode())
    digest.update(runtime_fingerprint().encode())
    digest.update(tool_versions().encode())  # ruff formats the output, hypothesis finds samples
    return digest.hexdigest()


def _write_or_fail(directory: Path, files: dict[str, str], task: str) -> TaskFailed | None:
    """Write every file atomically; a failed write (full disk, read-only directory) fails the
    task with the path and the reason, and leaves the previous version of that file intact."""
    from autocoder.fsutil import OutsideProjectError, confined, write_if_changed

    for path, text in sorted(files.items()):
        target = directory / SRC / path
        try:
            write_if_changed(confined(directory, target), text.encode())
        except OutsideProjectError as exc:
            return TaskFailed(f"{task}: {exc}")
        except OSError as exc:
            return TaskFailed(
                f"{task}: cannot write {target}: {exc.strerror or exc}; fix the cause and rebuild"
            )
    return None


def run_gen_component(directory: Path, name: str, group: Siblings | None = None) -> TaskFailed | None:
    """`group`: the build's gen tasks, in a build from scratch; this one may generate pending
    ones in its ruff run too (codegen/batching.py)."""
    from autocoder.codegen.batching import component_files
    from autocoder.codegen.render import GenerationError

    try:
        files = component_files(directory, name, group)
    except GenerationError as exc:
        return TaskFailed(f"gen:{name}: {exc}")
    return _write_or_fail(directory, files, f"gen:{name}")


def run_gen_runtime(directory: Path) -> TaskFailed | None:
    from autocoder import hypothesis_cache
    from autocoder.codegen.render import GenerationError
    from autocoder.codegen.system import generate_runtime
    from autocoder.fsutil import confined
    from autocoder.ir.models import load_ir

    ir = load_ir(directory / RUNTIME_IR_FILE)  # the projection: gen:runtime reads nothing else
    hypothesis_cache.seed(directory)  # what hypothesis derives, once per machine
    try:
        files = generate_runtime(
            ir,
            confined(directory, Path(SAMPLES), directory=True),
            confined(directory, Path(FORMAT_CACHE)),
        )
    except GenerationError as exc:
        return TaskFailed(f"gen:runtime: {exc}")
    except OSError as exc:  # OutsideProjectError: the samples cache is symlinked out
        return TaskFailed(f"gen:runtime: {exc}")
    hypothesis_cache.publish(directory)
    failed = _write_or_fail(directory, files, "gen:runtime")
    if failed is None:
        try:
            _remove_stale(directory, ir)
        except OSError as exc:
            return TaskFailed(f"gen:runtime: {exc}")
    return failed


def _remove_stale(directory: Path, ir: IR) -> None:
    """Delete generated files of components that are no longer in the blueprint; only ever
    inside the project (OutsideProjectError, before any deletion, for a path that is not)."""
    from autocoder.fsutil import confined

    system = ir.system.name
    names = {c.name for c in ir.components}
    from autocoder.codegen.path_tests import system_flow_paths
    from autocoder.flowpaths import path_test_file

    keep = {directory / SRC / module_path(system, n) for n in names} | {
        directory / SRC / test_path(n) for n in names
    }
    keep |= {directory / SRC / path_test_file(p.id) for p in system_flow_paths(ir)}
    folders = [
        (Path(SRC, system, "components"), "*.py"),
        (Path(SRC, "tests"), "test_*.py"),
        (Path(SRC, "tests", "paths"), "test_*.py"),
    ]
    stale = []
    for folder, pattern in folders:
        if not (directory / folder).is_dir():
            continue
        real = confined(directory, folder, "delete in", directory=True)
        for path in sorted(real.glob(pattern)):
            named = directory / folder / path.name
            if path.name not in ("__init__.py", "test_integration.py") and named not in keep:
                stale.append(confined(directory, named, "delete"))
    for path in stale:
        path.unlink()


def task_gen() -> Any:
    """Generate each component's module and tests, and the system package around them."""
    directory = project_dir()
    refuse_unsafe_output(directory)
    outline = blueprint_outline(directory)
    if outline is None:  # `doit gen` must fail then, not succeed doing nothing: check says why
        yield {"name": None, "task_dep": ["check"], "doc": task_gen.__doc__}
        return
    system, components = outline
    from autocoder.flowpaths import path_test_file
    from autocoder.llm.fingerprint import provider_fingerprint_memo

    provider = provider_fingerprint_memo(directory)  # without importing the provider (its models)
    fingerprint = fingerprint_file(directory, "codegen", codegen_fingerprint(provider))
    root = templates_root()
    lock = [LOCK_FILE] if (directory / LOCK_FILE).is_file() else []  # locked completions
    templates = [str(root / t) for t in component_templates()]  # the same for every component
    deps = {name: (f"{GENERATED}/ir/{name}.json", fingerprint, *lock, *templates) for name, _ in components}
    group = None
    if batching_wanted(directory, f"{SRC}/{system}/components"):  # a build from scratch
        group = gen_siblings(uuid.uuid4().hex, tuple(deps.items()))
    else:
        forget_batches(directory)
    for name, kind in components:
        targets = [f"{SRC}/{module_path(system, name)}", f"{SRC}/{test_path(name)}"]
        yield {
            "name": name,
            "doc": f"generate {kind} {name}",
            "actions": [(run_gen_component, [directory, name, group])],
            "file_dep": list(deps[name]),
            "targets": targets,
            "clean": [(clean_targets, [directory, targets])],
        }
    targets = [f"{SRC}/{p}" for p in runtime_paths(system)]
    targets += [f"{SRC}/{path_test_file(p.id)}" for p in project_paths(directory)]
    yield {
        "name": "runtime",
        "doc": "generate the system package: models, wiring, __main__, packaging, smoke and path tests",
        "actions": [(run_gen_runtime, [directory])],
        "file_dep": [RUNTIME_IR_FILE, fingerprint, *(str(root / t) for t in runtime_templates())],
        "targets": targets,
        "clean": [(clean_targets, [directory, targets])],
    }
