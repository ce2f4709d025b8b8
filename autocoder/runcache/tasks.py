"""The one wrapper that puts every Autocoder task behind the run-cache (applied in dodo.py).

A wrapped task keeps its file dependencies, targets and clean actions; its actions become one
python-action, `run_cached`, which computes the task's key when the task runs (its inputs
exist only then: earlier tasks produce them), restores the targets on a hit and otherwise runs
the original actions and stores the targets when they succeed. doit keeps deciding *whether*
a task runs (its own dependency DB); the run-cache decides only *how* it is satisfied.

The task's returned values (saved by doit in .doit.db) record the outcome and the
fingerprint fields, which `autocoder explain` compares with the current ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from doit.exceptions import BaseFail, TaskFailed

from autocoder.layout import ARCHITECTURE
from autocoder.runcache import cache as runcache
from autocoder.runcache.explain import blueprint_digests
from autocoder.runcache.keys import fingerprint_fields, task_fields, task_key

TOOLS_STAGE = "tools"  # generated/.autocoder/tools.fingerprint: the tool versions


def cached(creator: Callable[[], Any]) -> Callable[[], Any]:
    """A doit task creator whose task dicts go through the run-cache."""
    basename = creator.__name__.removeprefix("task_")

    @functools.wraps(creator)
    def wrapped() -> Any:
        made = creator()
        if isinstance(made, dict):
            return wrap_task(made, basename)
        if made is None:
            return None
        return _wrap_all(made, basename)

    return wrapped


def _wrap_all(tasks: Iterator[dict[str, Any]], basename: str) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield wrap_task(task, basename)


def wrap_task(task: dict[str, Any], basename: str) -> dict[str, Any]:
    """The task with its python-actions run through the cache; tasks without targets (groups,
    `check`-only stand-ins) or with shell actions are left as they are."""
    actions = task.get("actions")
    if not actions or not task.get("targets") or not all(isinstance(a, tuple) for a in actions):
        return task
    from autocoder.tasks.compile_tasks import fingerprint_file, project_dir

    directory = project_dir()
    tools = fingerprint_file(directory, TOOLS_STAGE, json.dumps(fingerprint_fields(), sort_keys=True))
    return {
        **task,
        "actions": [(run_cached, [directory, list(actions)])],
        "file_dep": [*task.get("file_dep", []), tools],
    }


def run_original(actions: list[tuple[Any, ...]]) -> BaseFail | dict[str, Any]:
    """The task's own actions, with doit's meaning of their results (False or a failure
    object fails the task; a dict is saved as values)."""
    values: dict[str, Any] = {}
    for action in actions:
        function, args, kwargs = action[0], [], {}
        if len(action) > 1:
            args = action[1]
        if len(action) > 2:
            kwargs = action[2]
        result = function(*args, **kwargs)
        if isinstance(result, BaseFail):
            return result
        if result is False:
            return TaskFailed(f"{getattr(function, '__name__', function)} returned False")
        if isinstance(result, dict):
            values.update(result)
    return values


def run_cached(directory: Path, actions: list[tuple[Any, ...]], task: Any) -> BaseFail | dict[str, Any]:
    """doit's action for a wrapped task (`task` is injected by doit)."""
    values: dict[str, Any] = {"fields": task_fields(task.name)}
    if ARCHITECTURE in task.file_dep:  # what `autocoder explain` compares the blueprint with
        values["blueprint"] = blueprint_digests(directory)
    cache = runcache.from_environment(directory)
    targets = sorted(task.targets)
    key = None
    if cache is not None:
        try:
            key = task_key(directory, task.name, sorted(task.file_dep), targets)
        except OSError:
            key = None  # a dependency vanished: doit reports it; nothing to look up
    if cache is not None and key is not None:
        entry = cache.lookup(task.name, key, targets)
        if entry is not None:
            try:
                cache.restore(directory, entry)
                after_restore(directory, task.name)
            except OSError as exc:  # OutsideProjectError: generated/ leads out of the project
                return TaskFailed(f"{task.name}: restoring from the run-cache: {exc}")
            return {"runcache": f"restored:{entry.origin}", **values}
    result = run_original(actions)
    if isinstance(result, BaseFail):
        return result
    outcome = "off"
    if cache is not None and key is not None:
        try:
            stored = cache.save(directory, task.name, key, targets, values["fields"])
            outcome = "stored" if stored else "not stored"
        except OSError as exc:  # a full or read-only local cache costs reuse, not the build
            runcache.warn(f"{task.name}: not stored in {cache.local.url}: {exc.strerror or exc}")
            outcome = "not stored"
    return {**result, "runcache": outcome, **values}


def after_restore(directory: Path, name: str) -> None:
    """What a task's action does besides writing its targets, done after a restore too:
    gen:runtime deletes the generated files of components no longer in the blueprint."""
    if name == "gen:runtime":
        from autocoder.ir.models import load_ir
        from autocoder.layout import GENERATED
        from autocoder.tasks.gen_tasks import _remove_stale

        _remove_stale(directory, load_ir(directory / GENERATED / "ir.v1.json"))
