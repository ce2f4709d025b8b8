"""Batching a tier's tasks in a build from scratch: one run for several pending components
(issue 13, full builds). One implementation serves every batching tier: test (validate/batch.py),
lint, bench, the path tests (tasks/validate_tasks.py) and gen (codegen/batching.py).

Why: each task of these tiers pays a fixed cost that is large beside its own work on a small
component: a `test:<c>` task forks a child that runs one pytest session (plugin registration,
option and fixture parsing, the fork: eight files in one session cost about two thirds of the
CPU of eight sessions); each `lint:<c>` task starts ruff twice (check, format) and builds a
bandit manager; each `bench:<c>` task forks a child from the (large) build process for a few
milliseconds of work. One pytest session over eight components' test files, one ruff/bandit
run over their files, or one child that measures them one after the other pays it once. An
edit runs one task per tier, where there is nothing to batch: its task finds no pending
sibling and does exactly what it did before batching.

What stays as it was: the DAG keeps one task per component with the same file dependencies and
targets; each writes its own result file from its own result, and a failing component fails
its own task only, with the message a run on its own gives. How a child is forked
(validate/isolated.py `run_forked`) is untouched: a batch is just another function run.

How a task batches (`run_batched`):
1. `<tier>:<c>` first takes the claim on `c`: a file created with O_EXCL in this build's records
   directory (generated/.cache/<tier>-batch/<build token>; the token is minted when doit loads
   the tasks, so no record of another build is ever read; the build's first task of the tier
   deletes the earlier builds' directories, an edit's lone task too, so that none piles up).
   If another task of this build holds it (it runs `c` in its batch), the task waits for that
   task's record of `c` (or for the claimer's process to be gone), then uses the record if it
   was made from the exact inputs `c` has now (sha256 of every file of its task's file_dep),
   else runs `c` alone.
2. It claims up to BATCH_MAX - 1 pending siblings, searched from the end of the task order (the
   dispatcher, tasks/dispatch.py, hands the other worker of `doit -n 2` the tasks in that order
   from the front, and none a running batch holds) that this build is likely to run: every
   input exists, and the result file is missing or, for a tier whose result is rewritten on
   every run (a test's JUnit file, a bench measurement: they hold the run's times), older than
   one of its inputs. The search ends after UP_TO_DATE_RUN members in a row that look up to
   date and that no task of this build claimed, so an edit's task costs a few dozen stat calls
   (in a build from scratch the members done already are claimed ones, whose records the
   dispatcher has run at once: the search goes on past them); a member not generated yet (the
   generators of a build from scratch still running) is passed over, neither a candidate nor a
   sign that the rest is up to date. It records the sha256 of each one's inputs before the run.
   No siblings (an edit, or the last tasks of a build): `c` runs alone, as before batching.
3. The tier's batch function gives a payload per member it completed and vouches for (test:
   the JUnit file pytest's own writer wrote for it, only when its tests all passed and nothing
   in the session failed outside a single file; lint: the tools' findings on its files; bench:
   its measurement; path: its passing round; gen: its formatted files).
4. For each sibling a record is written: its payload and the input hash, when it was completed
   and its inputs hash the same after the run as before (a generator task of the other worker
   may have rewritten them meanwhile); otherwise (not completed, or a batch that raised: a
   crash vouches for none) an empty record, "run alone". When doit later runs the sibling's
   task, it uses the record only if its inputs still hash the same; any other case runs it
   alone. So a record stands for exactly the files it was made from, and a failing component,
   or one whose batch crashed, is run by its own task alone and gets the same verdict, result
   and message as without batching. `c` itself uses the batch's payload when completed, else
   runs alone too.

What differs between tiers is data on `Siblings`: the tier's name (its records directory), the
result files that say whether a member is pending (directory, suffix, rewritten on every run or
only when their bytes change), the inputs every member shares (stat-ed once per search, not
once per member), and how often a task waiting for another's batch looks for its record.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocoder.layout import GENERATED

BATCH_MAX = 8  # members in one batch: past ~8 the saving per member flattens, and the other worker idles
UP_TO_DATE_RUN = 2 * BATCH_MAX  # members in a row that look up to date: the search for siblings ends
POLL_S = 0.02  # how often a task waiting on another's batch looks for its record (a tier's default)
CACHE = f"{GENERATED}/.cache"


@dataclass(frozen=True)
class Siblings:
    """The tasks of one tier in one build: made once when doit loads them."""

    tier: str  # names the records directory: generated/.cache/<tier>-batch
    build: str  # a token for this doit run
    # (component, its own inputs), in task order; a member's task's file_dep is its own inputs,
    # then `shared`: what a record is keyed by
    members: tuple[tuple[str, tuple[str, ...]], ...]
    results: str  # directory (relative to the project) of the tasks' `<component><suffix>` results
    # True when a task rewrites its result on every run (it holds the run's times), so a result
    # older than an input means the task will run; False when it is rewritten only when its
    # bytes change: only a missing result says the task will run
    rewritten: bool
    shared: tuple[str, ...] = ()  # every member's other inputs
    suffix: str = ".json"
    poll_s: float = POLL_S

    def inputs(self, name: str) -> tuple[str, ...]:
        """The member's task's file_dep, which a record is keyed by."""
        return self._inputs[name]

    def records_dir(self, directory: Path) -> Path:
        """This build's records directory of the tier (the dispatcher reads it too:
        tasks/dispatch.py)."""
        return records_dir(directory, self.tier, self.build)

    @functools.cached_property
    def _inputs(self) -> dict[str, tuple[str, ...]]:
        """The members by name: every task of a batch looks its siblings' inputs up (twice)."""
        return {name: (*own, *self.shared) for name, own in self.members}


def records_dir(directory: Path, tier: str, build: str) -> Path:
    """The records directory of `tier` in build `build`."""
    return directory / CACHE / f"{tier}-batch" / build


Batch = Callable[[list[str]], dict[str, Any]]  # components -> payload of each one it completed


def run_batched(directory: Path, group: Siblings, name: str, batch: Batch, alone: Callable[[], Any]) -> Any:
    """The payload of component `name`: from another task's batch, from a batch this task runs
    (with up to BATCH_MAX - 1 pending siblings), or else what `alone()` gives."""
    records = _records(directory, group)
    if not claim(records, name):
        wait_for_record(records, name, group.poll_s)
        found = _recorded(records, name, input_digest(directory, group.inputs(name)))
        return found[0] if found else alone()
    siblings = _pending(directory, group, name, records)
    if not siblings:
        return alone()
    produced: dict[str, Any] = {}
    try:
        produced = batch([name, *(member for member, _ in siblings)])
    except Exception:  # noqa: BLE001 - a batch that fails is a fallback to lone runs, never a verdict
        produced = {}
    finally:  # every claimed sibling gets a record, so that no task waits for it in vain
        for member, before in siblings:
            usable = member in produced and input_digest(directory, group.inputs(member)) == before
            write_record(records, member, {"inputs": before, "payload": produced[member]} if usable else {})
    return produced[name] if name in produced else alone()


def _pending(directory: Path, group: Siblings, own: str, records: Path) -> list[tuple[str, str]]:
    """Up to BATCH_MAX - 1 claimed siblings this build will likely run, each with the hash of
    its inputs now (module docstring, step 2)."""
    chosen: list[tuple[str, str]] = []
    root = str(directory)
    shared = _newest(root, group.shared)
    if shared is None:  # a shared input is missing: no member can run now
        return chosen
    up_to_date = 0
    for member, inputs in reversed(group.members):
        if len(chosen) >= BATCH_MAX - 1 or up_to_date >= UP_TO_DATE_RUN:
            break
        if member == own:
            continue
        state = _state(root, group, member, inputs, shared)
        if state == "done":
            # done in this build already (claimed: the dispatcher runs a recorded task as soon
            # as its record is written), or before it; only the latter says the rest is done too
            if not os.path.exists(records / f"{member}.claim"):
                up_to_date += 1
            continue
        # not generated yet (a build from scratch, the generators still running): neither a
        # candidate nor a sign that the rest is done, so the search goes on past it; counted as
        # up to date, a task that started while the last components were being generated
        # found no sibling and ran alone
        if state == "unready":
            continue
        up_to_date = 0
        if not claim(records, member):
            continue
        before = input_digest(directory, group.inputs(member))
        if before is None:  # an input vanished since the check: not runnable now
            write_record(records, member, {})
            continue
        chosen.append((member, before))
    return chosen


def _state(root: str, group: Siblings, member: str, own: tuple[str, ...], shared: int) -> str:
    """ "pending", "done" or "unready" (one of its own inputs is missing: its generator has not
    run yet): whether this build will run the member's task, guessed from file times (doit
    decides by its own records; a wrong guess costs time, never a wrong result, since a record
    is used only for the exact inputs it was made from). `shared`: the newest shared input's time."""
    newest = _newest(root, own)
    if newest is None:
        return "unready"
    try:
        result = os.stat(f"{root}/{group.results}/{member}{group.suffix}").st_mtime_ns
    except OSError:
        return "pending"
    return "pending" if group.rewritten and result < max(newest, shared) else "done"


def _newest(root: str, paths: tuple[str, ...]) -> int | None:
    """The latest modification time of `paths` (ns; relative to `root`, or absolute), 0 for no
    path, None when one is missing."""
    try:
        return max((os.stat(os.path.join(root, path)).st_mtime_ns for path in paths), default=0)
    except OSError:
        return None


def input_digest(directory: Path, inputs: tuple[str, ...]) -> str | None:
    """sha256 over the inputs' names and contents; None when one is missing."""
    digest = hashlib.sha256()
    for path in inputs:
        try:
            content = (directory / path).read_bytes()
        except OSError:
            return None
        digest.update(f"{path}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()


def _records(directory: Path, group: Siblings) -> Path:
    """This build's records directory; made by the build's first task of the tier, which also
    deletes the earlier builds' (an edit's lone task too, so that they do not pile up)."""
    path = group.records_dir(directory)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        _forget_other_builds(path)
    return path


def _forget_other_builds(records: Path) -> None:
    """Delete the records of earlier builds beside this build's `records` (one build at a time
    holds a project: tasks/lock.py; none is ever read, their token differs)."""
    for old in records.parent.iterdir():
        if old.name != records.name:
            shutil.rmtree(old, ignore_errors=True)


def claim(records: Path, name: str) -> bool:
    """Take the claim on running `name` in this build (False: another task holds it); the
    claim file holds the claimer's process id."""
    try:
        descriptor = os.open(records / f"{name}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as claimed:
        claimed.write(str(os.getpid()))
    return True


def wait_for_record(records: Path, name: str, poll_s: float = POLL_S) -> None:
    """Until the holder of `name`'s claim has written its record, or its process is gone."""
    record = records / f"{name}.json"
    while not record.exists():
        try:
            pid = int((records / f"{name}.claim").read_text() or "0")
        except (OSError, ValueError):
            return
        if pid in (0, os.getpid()) or not _alive(pid):
            return
        time.sleep(poll_s)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_record(records: Path, name: str, record: dict[str, Any]) -> None:
    """A sibling's result for its own task: {"inputs": hash, "payload": its payload}, or {}
    (run alone). When it cannot be written (a full disk), the claim is dropped instead: the
    sibling's task, waiting for the record or not yet started, then runs it itself rather than
    wait forever."""
    from autocoder.fsutil import atomic_write

    try:
        atomic_write(
            records / f"{name}.json", json.dumps(record).encode(), durable=False
        )  # this build's only
    except OSError:
        with contextlib.suppress(OSError):
            (records / f"{name}.claim").unlink()


def _recorded(records: Path, name: str, inputs: str | None) -> tuple[Any] | None:
    """(payload,) when recorded for exactly these inputs, else None."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((records / f"{name}.json").read_bytes())
        if inputs is not None and isinstance(record, dict) and record.get("inputs") == inputs:
            if "payload" in record:
                return (record["payload"],)
    return None
