"""Why the next build would run a task: `autocoder explain DIR [TASK...]`, `build --explain`.

The state of the last build is doit's own: its dependency DB (.doit.db, read through
doit.dependency) answers whether a task is up to date and which file dependency changed, with
the md5 it recorded. The run-cache adds what doit does not keep: the fingerprint fields a task
ran with (tool versions), and the sha256 of each blueprint file `check` last read with a copy
of its bytes under generated/.cache/blueprint (record_blueprint), so a change reads
`ruff 0.6.9 → 0.7.0` or `architecture.yaml: components[overheat].logic changed`: explain
digests each blueprint key of that copy and of the current file. (Builds recorded before kept
the digest per key itself, as "blueprint": still understood.)
It writes nothing but what loading doit's task list always writes (the stage fingerprint
files); a project without .doit.db is reported as never built.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autocoder.layout import ARCHITECTURE, CACHE, DEPLOYMENT

DB = ".doit.db"
FINGERPRINTS = "generated/.autocoder/"
BLUEPRINTS = (ARCHITECTURE, DEPLOYMENT)
COPIES = f"{CACHE}/blueprint"  # content-addressed copies of the blueprint files `check` read
KEEP_COPIES = 8  # the newest copies kept (besides the current record's): a few checks back
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Explanation:
    blueprint: list[str] = field(default_factory=list)  # blueprint keys changed, with their chains
    tasks: dict[str, list[str]] = field(default_factory=dict)  # task -> reasons, in build order
    maybe: list[str] = field(default_factory=list)  # run only if a task above rewrites their inputs
    checked: int = 0  # tasks looked at

    def render(self) -> str:
        lines = []
        if self.blueprint:
            lines.append("blueprint changes since the last build:")
            lines += [f"  {line}" for line in self.blueprint]
        if not self.tasks and not self.maybe:
            lines.append(
                f"nothing to do: all {self.checked} task(s) are up to date (every file dependency "
                f"matches what {DB} recorded, and every target exists)"
            )
            return "\n".join(lines)
        lines.append(f"the next build would run {len(self.tasks)} of {self.checked} task(s):")
        for name, reasons in self.tasks.items():
            lines.append(f"  {name}: {reasons[0]}")
            lines += [f"    {reason}" for reason in reasons[1:]]
        if self.maybe:
            shown = ", ".join(self.maybe[:12]) + (
                f", ... ({len(self.maybe)} in all)" if len(self.maybe) > 12 else ""
            )
            lines.append(
                f"and {len(self.maybe)} more only if a task above writes new content into their "
                f"inputs (doit compares each input's md5 once its producer has run): {shown}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- blueprint keys


def blueprint_digests(directory: Path) -> dict[str, str]:
    """A short digest per blueprint key (`architecture.yaml: components[x].logic`); {} for a
    file that does not parse (then `check` says why)."""
    digests: dict[str, str] = {}
    for name in BLUEPRINTS:
        try:
            data = (directory / name).read_bytes()
        except OSError:
            continue
        digests.update(file_digests(name, data))
    return digests


def file_digests(name: str, data: bytes) -> dict[str, str]:
    """blueprint_digests' part for one blueprint file's bytes."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        loaded = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    digests: dict[str, str] = {}
    for key, value in loaded.items():
        if key == "components" and isinstance(value, list):
            for component in value:
                if isinstance(component, dict) and isinstance(component.get("name"), str):
                    for part, sub in component.items():
                        digests[f"{name}: components[{component['name']}].{part}"] = _digest(sub)
        else:
            digests[f"{name}: {key}"] = _digest(value)
    return digests


def record_blueprint(directory: Path) -> dict[str, str]:
    """The sha256 of each blueprint file's bytes (what `check` saves for explain), with a copy
    of those bytes kept under generated/.cache/blueprint/<sha256>.

    Digesting every key at each `check` cost ~0.15 s of a one-component edit at 500
    components; hashing the bytes costs ~nothing, and explain digests the keys of the copy
    only when someone asks. A copy is written (atomically) only when not there yet, else
    touched; a write prunes all but the KEEP_COPIES newest. A failed write costs explain's key
    detail, never the build."""
    from autocoder.fsutil import atomic_write, confined
    from autocoder.runcache.cache import warn

    record: dict[str, str] = {}
    missing: dict[str, bytes] = {}
    for name in BLUEPRINTS:
        try:
            data = (directory / name).read_bytes()
        except OSError:
            continue  # a missing file: `check` says so
        record[name] = hashlib.sha256(data).hexdigest()
        missing[record[name]] = data
    try:
        store = confined(directory, Path(COPIES), directory=True)
        for digest in list(missing):
            with contextlib.suppress(FileNotFoundError):
                os.utime(store / digest)
                del missing[digest]
        for digest, data in missing.items():
            atomic_write(store / digest, data, durable=False)  # explain checks its sha256
        if missing:
            _prune(store, set(record.values()))
    except OSError as exc:
        warn(f"no copy of the blueprint for `autocoder explain` in {COPIES}: {exc}")
    return record


def _prune(store: Path, keep: set[str]) -> None:
    """Delete all copies but `keep` and the KEEP_COPIES most recently written or touched."""
    copies = []
    for entry in os.scandir(store):
        if _SHA256.fullmatch(entry.name) and entry.name not in keep:
            with contextlib.suppress(FileNotFoundError):
                copies.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
    for _, name in sorted(copies, reverse=True)[max(0, KEEP_COPIES - len(keep)) :]:
        with contextlib.suppress(FileNotFoundError):
            (store / name).unlink()


def _copy(directory: Path, digest: str) -> bytes | None:
    """The recorded copy with this sha256 (None: gone, or not holding those bytes)."""
    try:
        data = (directory / COPIES / digest).read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == digest else None


def recorded_changes(directory: Path, record: dict[str, Any]) -> list[tuple[str, str]]:
    """The blueprint keys changed since `check` recorded `record` (record_blueprint's); a file
    whose copy is gone is named as changed, without key detail."""
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    lost: list[tuple[str, str]] = []
    for name in BLUEPRINTS:
        digest = record.get(name)
        if digest is not None and not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            lost.append((name, "changed (its record in .doit.db is unreadable: no key detail)"))
            continue
        try:
            current: bytes | None = (directory / name).read_bytes()
        except OSError:
            current = None
        if current is not None and digest == hashlib.sha256(current).hexdigest():
            continue  # unchanged: no key of it changed
        before = _copy(directory, digest) if digest else b""
        if before is None:
            lost.append(
                (
                    name,
                    f"changed (no copy of the version `check` last read is left in {COPIES}: no key detail)",
                )
            )
            continue
        if digest:
            old.update(file_digests(name, before))
        if current is not None:
            new.update(file_digests(name, current))
    return lost + _blueprint_changes(old, new)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _blueprint_changes(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str]]:
    changes = [(k, "changed") for k in sorted(new) if k in old and old[k] != new[k]]
    changes += [(k, "added") for k in sorted(set(new) - set(old))]
    changes += [(k, "removed") for k in sorted(set(old) - set(new))]
    return changes


# --------------------------------------------------------------------------- doit state


@contextlib.contextmanager
def _in_directory(directory: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)


def _load_tasks() -> dict[str, Any]:
    from doit.loader import load_tasks

    from autocoder.tasks import dodo

    return {task.name: task for task in load_tasks(vars(dodo))}


def _md5(path: str) -> str | None:
    try:
        return hashlib.md5(Path(path).read_bytes(), usedforsecurity=False).hexdigest()
    except OSError:
        return None


def _strictness_changed(stage: str, state: object) -> str | None:
    """The reason when only the strict setting changed since the task last ran: the compile
    stage's fingerprint is the generator's code and that setting, and doit recorded the md5
    of the fingerprint's bytes, which is the same code with the other setting."""
    if stage != "compile" or not (isinstance(state, list | tuple) and len(state) > 2):
        return None
    from autocoder.tasks.compile_tasks import STRICT_ENV, compile_fingerprint_text

    for before in (True, False):
        text = (compile_fingerprint_text(before) + "\n").encode()
        if hashlib.md5(text, usedforsecurity=False).hexdigest() == state[2]:
            now = "strict" if not before else "not strict"
            then = "strict" if before else "not strict"
            return (
                f"the strict setting changed: the last run was {then}, this one is {now} "
                f"(`--strict` or {STRICT_ENV}=1 makes blueprint warnings fail the build)"
            )
    return None


def explain(directory: Path, selected: list[str] | None = None) -> Explanation:
    """What the next `autocoder build DIR [TASK...]` would run, and why."""
    directory = directory.absolute()  # it is read from inside itself: a relative DIR would not be found
    with _in_directory(directory):
        tasks = _load_tasks()
        return _Explainer(tasks, directory).run(selected or [])


class _Explainer:
    def __init__(self, tasks: dict[str, Any], directory: Path) -> None:
        from doit.dependency import Dependency, SqliteDB

        self.tasks = tasks
        self.directory = directory
        self.producer = {target: name for name, task in tasks.items() for target in task.targets}
        self.users: dict[str, list[str]] = {}
        for name, task in tasks.items():
            for dep in task.file_dep:
                self.users.setdefault(dep, []).append(name)
        self.deps = Dependency(SqliteDB, DB) if Path(DB).exists() else None
        self.verdict: dict[str, list[str] | None] = {}  # task -> reasons (None: up to date)
        self.conditional: set[str] = set()  # tasks that run only if their inputs get new content
        self.order: list[str] = []
        # what `ir` will rewrite, when the blueprint diff says (None: any of its targets)
        self.changes = self._blueprint_diff()
        self.predicted: dict[str, set[str]] = {}
        components = {
            k.split("components[", 1)[1].split("]", 1)[0] for k, _ in self.changes if "components[" in k
        }
        if self.changes and all("components[" in k for k, _ in self.changes):
            self.predicted["ir"] = {"generated/ir.v1.json"} | {f"generated/ir/{c}.json" for c in components}
        # what `ir` may or may not rewrite for such a diff: gen:runtime's and deploy:plan's
        # projections change only if the edit touches what they render (codegen/runtime_ir.py,
        # deploy/plan_input.py), which no diff says
        self.unpredicted = {"generated/ir.runtime.json", "generated/ir.deploy.json"}

    def run(self, selected: list[str]) -> Explanation:
        from autocoder.tasks.dodo import DOIT_CONFIG

        try:
            roots = [r for r in selected if any(n == r or n.startswith(f"{r}:") for n in self.tasks)]
            roots = roots or list(DOIT_CONFIG["default_tasks"])  # type: ignore[call-overload]
            names = [n for n in self.tasks if any(n == r or n.startswith(f"{r}:") for r in roots)]
            for name in names:
                self._visit(name)
        finally:
            if self.deps is not None:
                self.deps.close()
        result = Explanation(checked=len(self.verdict))
        for name in self.order:
            reasons = self.verdict[name]
            if reasons and self.tasks[name].actions:
                if name in self.conditional:
                    result.maybe.append(name)
                else:
                    result.tasks[name] = reasons
        result.blueprint = self._blueprint_chains()
        return result

    def _values(self, name: str) -> dict[str, Any]:
        if self.deps is None:
            return {}
        return self.deps.get_values(name) or {}

    def _visit(self, name: str) -> list[str] | None:
        if name in self.verdict:
            return self.verdict[name]
        self.verdict[name] = None  # a cycle (doit refuses them) ends here
        task = self.tasks[name]
        upstream: list[str] = []
        for dep in task.task_dep:
            if dep in self.tasks and self._visit(dep):
                upstream.append(f"task dependency {dep} will run")
        rewritten: dict[str, list[str]] = {}
        certain: list[str] = []
        for dep in sorted(task.file_dep):
            producer = self.producer.get(dep)
            if producer is None or producer == name or not self._visit(producer):
                continue
            predicted = self.predicted.get(producer)
            if predicted is not None and dep not in predicted and dep not in self.unpredicted:
                continue  # the blueprint diff says this file keeps its content
            rewritten.setdefault(producer, []).append(dep)
            if predicted is not None and dep in predicted:
                certain.append(f"{dep} will change ({producer} rewrites it)")
        if len(rewritten) > 3:
            names = ", ".join(list(rewritten)[:3])
            upstream.append(
                f"after {len(rewritten)} tasks that will run ({names}, ...), if they rewrite its inputs"
            )
        else:
            for producer, files in rewritten.items():
                shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
                upstream.append(f"after {producer} (which will run), if it rewrites {shown}")
        own = self._own_reasons(task, set(self.producer) & set(task.file_dep))
        own += certain
        if certain:
            upstream = [u for u in upstream if not any(p in u for p in self.predicted)]
        reasons = own + upstream
        self.verdict[name] = reasons or None
        if reasons and not own and all(not u.startswith("task dependency") for u in upstream):
            self.conditional.add(name)
        self.order.append(name)
        return self.verdict[name]

    def _own_reasons(self, task: Any, produced_by_running: set[str]) -> list[str]:
        if not task.actions:
            return []
        if self.deps is None:
            return [f"no record of a previous run (no {DB}: a first build)"]
        if self.deps._get(task.name, "deps:") is None and not self._values(task.name):
            return ["no record of a previous run (a new task, or one that never succeeded)"]
        status = self.deps.get_status(task, self.tasks, get_log=True)
        reasons = []
        for target in status.reasons.get("missing_target", []):
            reasons.append(f"target missing: {target}")
        for dep in status.reasons.get("added_file_dep", []) or []:
            reasons.append(f"new file dependency: {dep}")
        for dep in status.reasons.get("removed_file_dep", []) or []:
            reasons.append(f"file dependency removed: {dep}")
        for dep in status.reasons.get("missing_file_dep", []):
            if dep not in produced_by_running:
                reasons.append(f"file dependency missing: {dep}")
        if status.reasons.get("has_no_dependencies"):
            reasons.append("it has no file dependency (it always runs)")
        for dep in status.reasons.get("changed_file_dep", []) or []:
            if dep not in produced_by_running:
                reasons += self._changed(task.name, dep)
        return reasons

    def _changed(self, name: str, dep: str) -> list[str]:
        """The reason lines for one changed file dependency."""
        assert self.deps is not None
        state = self.deps._get(name, dep)
        if dep.endswith("tools.fingerprint") and dep.startswith(FINGERPRINTS):
            fields = self._field_changes(name)
            if fields:
                return fields
        if dep.startswith(FINGERPRINTS) and dep.endswith(".fingerprint"):
            stage = Path(dep).stem
            strictness = _strictness_changed(stage, state)
            if strictness:
                return [strictness]
            return [f"Autocoder's {stage} stage changed ({dep} holds its code's fingerprint)"]
        if state is None:
            return [f"no record of file dependency {dep}"]
        old = state[2] if isinstance(state, list | tuple) and len(state) > 2 else None
        new = _md5(dep)
        if old and new:
            return [f"{dep} changed (md5 {old[:8]} → {new[:8]})"]
        return [f"{dep} changed"]

    def _field_changes(self, name: str) -> list[str]:
        from autocoder.runcache.keys import task_fields

        old = self._values(name).get("fields")
        if not isinstance(old, dict):
            return []
        new = task_fields(name)
        return [
            f"{key} {old.get(key, 'absent')} → {new.get(key, 'absent')}"
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]

    def _blueprint_diff(self) -> list[tuple[str, str]]:
        from autocoder.runcache.tasks import BLUEPRINT_RECORD, BLUEPRINT_TASK

        if BLUEPRINT_TASK not in self.tasks:
            return []
        values = self._values(BLUEPRINT_TASK)
        record = values.get(BLUEPRINT_RECORD)
        if isinstance(record, dict):
            return recorded_changes(self.directory, record)
        old = values.get("blueprint")  # recorded before: a digest per key
        if isinstance(old, dict):
            return _blueprint_changes(old, blueprint_digests(self.directory))
        return []

    def _blueprint_chains(self) -> list[str]:
        """`architecture.yaml: components[x].logic changed → generated/ir/x.json → gen:x, ...`"""
        lines = []
        for key, how in self.changes:
            line = f"{key} {how}"
            component = key.split("components[", 1)[1].split("]", 1)[0] if "components[" in key else None
            slice_ = f"generated/ir/{component}.json" if component else None
            if slice_ and slice_ in self.producer:
                line += f" → {slice_} → " + ", ".join(self._downstream(slice_))
            lines.append(line)
        return lines

    def _downstream(self, path: str) -> list[str]:
        """Tasks that use `path`, then those that use their targets, in build order."""
        reached: set[str] = set()
        files = [path]
        while files:
            for name in self.users.get(files.pop(), []):
                if name not in reached:
                    reached.add(name)
                    files.extend(self.tasks[name].targets)
        order = {name: i for i, name in enumerate(self.order)}
        return sorted(reached, key=lambda n: (order.get(n, len(order)), n))
