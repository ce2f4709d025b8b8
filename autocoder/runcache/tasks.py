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
from autocoder.runcache.explain import record_blueprint
from autocoder.runcache.keys import fingerprint_fields, task_fields, task_key
from autocoder.stackroom import with_room
from autocoder.tasks import prefetch

TOOLS_STAGE = "tools"  # generated/.autocoder/tools.fingerprint: the tool versions
BLUEPRINT_TASK = "check"  # the task whose values record the blueprint it read (explain.py)
BLUEPRINT_RECORD = "blueprint_files"  # that value: blueprint file -> sha256 of its bytes


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

    # doit orders task creators by the line they start on (inspect.getsourcelines), which
    # follows __wrapped__ and tokenizes the original's whole body: ~2 ms a creator on every
    # doit run, a no-op too. The name and docstring (what `doit list` shows) stay.
    del wrapped.__wrapped__
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
    from autocoder.tasks.compile_tasks import project_dir

    directory = project_dir()
    return {
        **task,
        "actions": [(run_cached, [directory, list(actions)])],
        "file_dep": [*task.get("file_dep", []), _tools_file(directory)],
    }


_TOOLS_FILES: dict[Path, tuple[dict[str, str], str]] = {}


def _tools_file(directory: Path) -> str:
    """The tools' fingerprint file, encoded once per task loading (every wrapped task depends
    on it): again only when fingerprint_fields() gives another dict (it is cached per project,
    so that happens when the fields really change, e.g. a test that replaces them)."""
    from autocoder.tasks.compile_tasks import fingerprint_file

    fields = fingerprint_fields()
    known = _TOOLS_FILES.get(directory)
    if known is not None and known[0] is fields:
        return known[1]
    file = fingerprint_file(directory, TOOLS_STAGE, json.dumps(fields, sort_keys=True))
    _TOOLS_FILES[directory] = (fields, file)
    return file


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
    if task.name not in prefetch.OVERLAPPING:
        prefetch.settle()  # an import `check` started in this process ends before this action
    values: dict[str, Any] = {"fields": task_fields(task.name)}
    if task.name == BLUEPRINT_TASK and ARCHITECTURE in task.file_dep:
        # what `autocoder explain` compares the blueprint with: the sha256 of each file, with
        # a copy of its bytes (explain digests the keys then, not each `check` at build time)
        values[BLUEPRINT_RECORD] = record_blueprint(directory)
    cache = runcache.from_environment(directory)
    targets = sorted(task.targets)
    key = None
    if cache is not None:
        try:
            key = task_key(directory, task.name, sorted(task.file_dep), targets)
        except OSError:
            key = None  # a dependency vanished: doit reports it; nothing to look up
    if cache is not None and key is not None:
        entry = cache.lookup(task.name, key, targets, extra_filter(task.name))
        if entry is not None and not consistent(task.name, entry, targets):
            runcache.warn(f"{task.name}: entry {key[:12]} lists other files than its stamp; running the task")
            entry = None
        if entry is not None:
            try:
                previous = _group_files(directory, task.name)
                cache.restore(directory, entry)
                after_restore(directory, task.name, previous)
            except OSError as exc:  # OutsideProjectError: generated/ leads out of the project
                return TaskFailed(f"{task.name}: restoring from the run-cache: {exc}")
            via = {"runcache_pack": True} if key in cache.packed else {}
            return {"runcache": f"restored:{entry.origin}", "runcache_key": key, **via, **values}
    result = with_room(run_original, actions)  # stackroom: no frame-stack chunk thrash below
    if isinstance(result, BaseFail):
        return result
    outcome = "off"
    if cache is not None and key is not None:
        try:
            outputs = [*targets, *extra_outputs(directory, task.name)]
            stored = cache.save(directory, task.name, key, outputs, values["fields"])
            outcome = "stored" if stored else "not stored"
            if stored:
                values["runcache_key"] = key  # the build's pack holds it (RunCacheReport)
        except OSError as exc:  # a full or read-only local cache costs reuse, not the build
            runcache.warn(f"{task.name}: not stored in {cache.local.url}: {exc.strerror or exc}")
            outcome = "not stored"
    return {**result, "runcache": outcome, **values}


# ------------------------------------------------------------------ outputs besides targets
# A deploy group's doit target is its stamp (generated/deploy/<group>.files.json: each file it
# wrote under deployments/ and its sha256); deploy:validate's is its JSON report, beside which it
# writes SARIF. Those files are stored and restored with the target.
VALIDATE_EXTRAS = (
    "generated/reports/deploy-validation.sarif",
    "generated/reports/hadolint.sarif",
    "generated/reports/checkov.sarif",
)


def _deploy_group(name: str) -> str | None:
    from autocoder.tasks.deploy_tasks import RENDER_GROUPS, WHEEL_GROUPS

    group = name.removeprefix("deploy:")
    return group if name.startswith("deploy:") and group in (*RENDER_GROUPS, *WHEEL_GROUPS) else None


def _group_files(directory: Path, name: str) -> dict[str, str]:
    """A deploy group's files under deployments/ and their sha256, from its stamp ({} when
    the task is no deploy group, or has no readable stamp)."""
    from autocoder.tasks.deploy_tasks import _stamp

    group = _deploy_group(name)
    try:
        listed = json.loads((directory / _stamp(group)).read_text()) if group else {}
    except (OSError, ValueError):
        return {}
    return listed if isinstance(listed, dict) else {}


def extra_outputs(directory: Path, name: str) -> list[str]:
    """The files a task wrote besides its targets, stored with them."""
    from autocoder.tasks.deploy_tasks import DEPLOYMENTS

    if name == "deploy:validate":
        return [path for path in VALIDATE_EXTRAS if (directory / path).is_file()]
    return [f"{DEPLOYMENTS}/{rel}" for rel in sorted(_group_files(directory, name))]


def extra_filter(name: str) -> Callable[[str], bool] | None:
    """Which paths an entry of this task may hold besides its targets (None: none)."""
    from autocoder.tasks.deploy_tasks import DEPLOYMENTS

    if name == "deploy:validate":
        return VALIDATE_EXTRAS.__contains__
    if _deploy_group(name):
        return lambda path: path.startswith(f"{DEPLOYMENTS}/")
    return None


def consistent(name: str, entry: runcache.Entry, targets: list[str]) -> bool:
    """A deploy group's entry holds exactly the files its (verified) stamp lists, with the
    stamp's digests: the stamp is what the next run deletes stale files by."""
    from autocoder.tasks.deploy_tasks import DEPLOYMENTS

    if _deploy_group(name) is None:
        return True
    paths = {t["path"]: t["sha256"] for t in entry.manifest["targets"]}
    try:
        listed = json.loads(entry.blobs[paths[targets[0]]])
        wanted = {f"{DEPLOYMENTS}/{rel}": digest for rel, digest in listed.items()}
    except (ValueError, KeyError, IndexError, AttributeError):
        return False
    return wanted == {path: digest for path, digest in paths.items() if path not in targets}


def after_restore(directory: Path, name: str, previous: dict[str, str] | None = None) -> None:
    """What a task's action does besides writing its targets, done after a restore too:
    gen:runtime deletes the generated files of components no longer in the blueprint, and a
    deploy group the files it rendered before (`previous`, its old stamp) and no longer does."""
    if previous:
        from autocoder.fsutil import confined
        from autocoder.tasks.deploy_tasks import DEPLOYMENTS

        for rel in sorted(set(previous) - set(_group_files(directory, name))):
            path = confined(directory, Path(DEPLOYMENTS, rel), "delete")
            if path.is_file():
                path.unlink()
    if name == "gen:runtime":
        from autocoder.ir.models import load_ir
        from autocoder.layout import GENERATED
        from autocoder.tasks.gen_tasks import _remove_stale

        _remove_stale(directory, load_ir(directory / GENERATED / "ir.v1.json"))
