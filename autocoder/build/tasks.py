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
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from doit.exceptions import TaskFailed

import autocoder
from autocoder.ir.write import ir_path, slice_path
from autocoder.layout import ARCHITECTURE, CHECK_REPORT, DEPLOYMENT, GENERATED

if TYPE_CHECKING:
    from autocoder.compile import CompileResult

# Loading the task list must stay cheap (it happens on every `doit`, even a no-op): the
# compiler, pydantic models and report writers are imported only when an action runs.

STRICT_ENV = "AUTOCODER_STRICT"


def project_dir() -> Path:
    """The blueprint directory: doit runs tasks from the dodo file's directory."""
    return Path(os.getcwd())


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
    from autocoder.fsutil import write_if_changed

    relative = f"{FINGERPRINTS}/{stage}.fingerprint"
    write_if_changed(directory / relative, (fingerprint + "\n").encode())
    return relative


OUTLINE_CACHE = f"{GENERATED}/.outline.json"


def blueprint_outline(directory: Path) -> tuple[str, list[tuple[str, str]]] | None:
    """(system name, [(component, kind)]) for declaring targets; None when the blueprint cannot
    be read yet (the `check` task then reports exactly what is wrong).

    Runs on every doit invocation, so it is cached by the blueprint's hash: a no-op build hashes
    the file instead of parsing it.
    """
    try:
        raw = (directory / ARCHITECTURE).read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(raw).hexdigest()
    return _outline(directory, digest, raw)


@functools.lru_cache(maxsize=4)
def _outline(directory: Path, digest: str, raw: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    cache = directory / OUTLINE_CACHE
    try:
        cached = json.loads(cache.read_text())
        if cached["sha256"] == digest:
            return cached["system"], [tuple(c) for c in cached["components"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    outline = _parse_outline(raw)
    if outline is not None:
        from autocoder.canonical import canonical_json
        from autocoder.fsutil import write_if_changed

        data = {"sha256": digest, "system": outline[0], "components": outline[1]}
        with contextlib.suppress(OSError):  # a cache: failing to write it costs only time
            write_if_changed(cache, canonical_json(data))
    return outline


def _parse_outline(raw: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(raw, Loader=loader)  # noqa: S506 - a safe loader
        system = data["system"]["name"]
        components = [(c["name"], c["kind"]) for c in data["components"]]
    except Exception:  # noqa: BLE001 - any problem here is reported by `check` with a position
        return None
    valid = [(n, k) for n, k in components if _is_name(n) and isinstance(k, str) and _is_name(k)]
    if not _is_name(system) or len(valid) != len(components) or len({n for n, _ in valid}) != len(valid):
        return None
    return system, sorted(valid)


def _is_name(value: object) -> bool:
    return isinstance(value, str) and value.isidentifier() and value.islower() and value.isascii()


_COMPILED: dict[tuple[str, bool], CompileResult] = {}


def compile_cached(directory: Path, strict: bool) -> CompileResult:
    """Compile once per doit run and blueprint content (check and ir share the work)."""
    from autocoder.compile import compile_sources, read_blueprints

    raws = read_blueprints(directory)
    key = (hashlib.sha256(repr(raws).encode()).hexdigest(), strict)
    if key not in _COMPILED:
        _COMPILED.clear()
        _COMPILED[key] = compile_sources(*raws, strict=strict)
    return _COMPILED[key]


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
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import write_if_changed

    result = compile_cached(directory, strict)
    report = {
        "ok": result.ok(strict),
        "strict": strict,
        "diagnostics": [d.to_json() for d in result.diagnostics],
    }
    write_if_changed(directory / GENERATED / CHECK_REPORT, canonical_json(report))
    return _fail_or_none(result, strict)


def run_ir(directory: Path, strict: bool) -> TaskFailed | None:
    from autocoder.ir.write import write_ir

    result = compile_cached(directory, strict)
    failed = _fail_or_none(result, strict)
    if failed is not None or result.ir is None:
        return failed or TaskFailed("no IR was produced")
    written = write_ir(directory / GENERATED, result.ir, result.slices)
    print(f"ir: {len(result.slices)} component(s), {len(written)} file(s) rewritten")
    return None


# Dependencies and targets are paths relative to the project directory, so that doit's state
# stays valid when the checkout moves (a CI cache restored into another path).


def task_check() -> dict[str, Any]:
    """Parse and analyse architecture.yaml and deployment.yaml (schema and semantic checks)."""
    directory = project_dir()
    strict = strict_mode()
    return {
        "actions": [(run_check, [directory, strict])],
        "file_dep": [
            *_existing(directory, [ARCHITECTURE, DEPLOYMENT]),
            _compile_fingerprint(directory, strict),
        ],
        "targets": [f"{GENERATED}/{CHECK_REPORT}"],
        "clean": True,
        "verbosity": 1,
    }


def task_ir() -> dict[str, Any]:
    """Compile the blueprints into generated/ir.v1.json and one slice per component."""
    directory = project_dir()
    strict = strict_mode()
    generated = Path(GENERATED)
    outline = blueprint_outline(directory)
    names = [name for name, _ in outline[1]] if outline else []
    targets = [ir_path(generated)] + [slice_path(generated, name) for name in names]
    return {
        "actions": [(run_ir, [directory, strict])],
        "file_dep": [*_existing(directory, [ARCHITECTURE, DEPLOYMENT]), f"{GENERATED}/{CHECK_REPORT}"],
        "targets": [str(t) for t in targets],
        "clean": True,
        "verbosity": 1,
    }


def _compile_fingerprint(directory: Path, strict: bool) -> str:
    return fingerprint_file(directory, "compile", f"{generator_fingerprint()} strict={strict}")


def _existing(directory: Path, names: list[str]) -> list[str]:
    """file_dep of the blueprints that exist: a missing one is reported by `check` itself
    (doit would otherwise stop with its own, less helpful message)."""
    return [name for name in names if (directory / name).exists()]
