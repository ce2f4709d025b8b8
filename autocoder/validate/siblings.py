"""Batching the lint and bench tiers in a build from scratch (issue 13, full builds).

Why: each `lint:<c>` task starts ruff twice (check, format) and builds a bandit manager, and
each `bench:<c>` task forks a child from the (large) build process, for a few milliseconds of
work on the component itself. One ruff/bandit run over eight components' files, or one child
that measures eight components one after the other, pays those fixed costs once.

What stays as it was: one task per component, with the same file dependencies and targets;
each writes its own result file from its own findings or measurement, and fails alone with the
message a run on its own gives. An edit's one task finds no pending sibling (their result files
exist) and runs alone, exactly as before batching.

How (the same protocol as the test tier's validate/batch.py, with its own records):
1. `<tier>:<c>` takes the claim on `c` (a file created with O_EXCL under
   generated/.cache/<tier>-batch/<build token>; the token is minted when doit loads the tasks,
   so no record of another build is ever read). If another task of this build holds it, the
   task waits for that task's record and uses it only if it was made from the exact inputs
   (sha256 of every file of the task's file_dep) `c` has now; otherwise it runs alone.
2. It claims up to BATCH_MAX - 1 pending siblings, searched from the end of the task order (the
   dispatcher, tasks/dispatch.py, hands the other worker of `doit -n 2` the tasks from the
   front, and none a running batch holds): every input exists and the result file is missing
   (or, for a tier whose result is rewritten on every run, older than an input). The search
   stops after UP_TO_DATE_RUN siblings in a row that are done without a claim of this build (an
   edit's task then costs a few dozen stat calls; a claimed one was done by this build, whose
   dispatcher runs recorded tasks at once); one not generated yet is passed over.
3. The tier's batch function produces a payload per member it completed (lint: the tools'
   findings on its files; bench: its measurement). A member it did not complete, a batch that
   raised, or a sibling whose inputs hash differently after the run (a generator of the other
   worker rewrote them) gets an empty record: its own task then runs it alone.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocoder.layout import GENERATED
from autocoder.validate.batch import claim, input_digest, wait_for_record, write_record

BATCH_MAX = (
    8  # components in one batch: the fixed cost is then an eighth; larger batches idle the other worker
)
UP_TO_DATE_RUN = 2 * BATCH_MAX  # siblings in a row that are not pending: the search ends
POLL_S = 0.02  # how often a task waiting on another's batch looks for its record
CACHE = f"{GENERATED}/.cache"


@dataclass(frozen=True)
class Siblings:
    """The tasks of one tier in one build: made once when doit loads them."""

    tier: str  # "lint" | "bench": names the records directory
    build: str  # a token for this doit run
    members: tuple[tuple[str, tuple[str, ...]], ...]  # (component, its task's file_dep), task order
    results: str  # directory (relative to the project) of the tasks' `<component>.json` results
    # True when a task rewrites its result on every run (bench: it holds the run's times), so a
    # result older than an input means the task will run; False when it is rewritten only when
    # its bytes change (lint): only a missing result says the task will run
    rewritten: bool

    def inputs(self, name: str) -> tuple[str, ...]:
        return self._inputs[name]

    def records_dir(self, directory: Path) -> Path:
        """This build's records directory of the tier (the dispatcher reads it too:
        tasks/dispatch.py)."""
        return directory / CACHE / f"{self.tier}-batch" / self.build

    @functools.cached_property
    def _inputs(self) -> dict[str, tuple[str, ...]]:
        """The members by name: every task of a batch looks its siblings' inputs up (twice)."""
        return dict(self.members)


Batch = Callable[[list[str]], dict[str, Any]]  # components -> payload of each one it completed


def run_batched(directory: Path, group: Siblings, name: str, batch: Batch, alone: Callable[[], Any]) -> Any:
    """The payload of component `name`: from another task's batch, from a batch this task runs
    (with up to BATCH_MAX - 1 pending siblings), or from `alone()`."""
    records = _records(directory, group)
    if not claim(records, name):
        wait_for_record(records, name, POLL_S)
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
    """Up to BATCH_MAX - 1 claimed siblings this build will run, each with its inputs' hash now."""
    chosen: list[tuple[str, str]] = []
    root = str(directory)
    idle = 0
    for member, inputs in reversed(group.members):
        if len(chosen) >= BATCH_MAX - 1 or idle >= UP_TO_DATE_RUN:
            break
        if member == own:
            continue
        state = _state(root, group, member, inputs)
        if state == "done":
            # done in this build already (claimed: the dispatcher runs a recorded task as soon
            # as its record is written), or before it; only the latter says the rest is done too
            if not os.path.exists(records / f"{member}.claim"):
                idle += 1
            continue
        # not generated yet (a build from scratch, the generators still running): neither a
        # candidate nor a sign that the rest is done, so the search goes on past it
        if state == "unready":
            continue
        idle = 0
        if not claim(records, member):
            continue
        before = input_digest(directory, inputs)
        if before is None:  # an input vanished since the check: not runnable now
            write_record(records, member, {})
            continue
        chosen.append((member, before))
    return chosen


def _state(root: str, group: Siblings, member: str, inputs: tuple[str, ...]) -> str:
    """ "pending", "done" or "unready" (an input is missing: its generator has not run yet).
    A guess from file times (doit decides by its own records): a wrong guess costs time,
    never a wrong result, since a record is used only for the exact inputs it was made from."""
    try:
        newest = max(os.stat(os.path.join(root, path)).st_mtime_ns for path in inputs)  # some absolute
    except OSError:
        return "unready"
    try:
        result = os.stat(f"{root}/{group.results}/{member}.json").st_mtime_ns
    except OSError:
        return "pending"
    return "pending" if group.rewritten and result < newest else "done"


def _records(directory: Path, group: Siblings) -> Path:
    """This build's records directory; made by the build's first task of the tier, which also
    deletes the earlier builds' (an edit's lone task too, so that they do not pile up)."""
    path = group.records_dir(directory)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        _forget_other_builds(directory, group)
    return path


def _forget_other_builds(directory: Path, group: Siblings) -> None:
    """Delete earlier builds' records (one build holds a project at a time: tasks/lock.py)."""
    for old in (directory / CACHE / f"{group.tier}-batch").iterdir():
        if old.name != group.build:
            shutil.rmtree(old, ignore_errors=True)


def _recorded(records: Path, name: str, inputs: str | None) -> tuple[Any] | None:
    """(payload,) when recorded for exactly these inputs, else None."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((records / f"{name}.json").read_bytes())
        if inputs is not None and isinstance(record, dict) and record.get("inputs") == inputs:
            if "payload" in record:
                return (record["payload"],)
    return None
