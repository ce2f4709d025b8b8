"""Batching the test tier: one pytest session for several components' tests (issue 13, full builds).

Why: every `test:<component>` task forks a child that runs one pytest session on that
component's test file. In a build from scratch a session's fixed costs (plugin registration,
option and fixture parsing, the fork) are a large part of a small file's run: eight files in one
session cost about two thirds of the CPU of eight sessions. An edit runs one test task, where
there is nothing to batch, so an edit does exactly what it did before.

What stays as it was: the DAG keeps one task per component with the same file dependencies and
targets; each component gets its own JUnit file, its own result file and its own verdict, and a
failing component fails its own task only, with the message a run of its file alone gives. How
the child is forked (validate/isolated.py `run_forked`) is untouched: a batch is just another
function run in a child.

How a task batches (`run_in_group`):
1. `test:<c>` first takes the claim on `c`: a file created with O_EXCL in this build's records
   directory (generated/.cache/test-batch/<build token>; the token is minted when doit loads
   the tasks, so no record of another build is ever read; a build that batches deletes the
   earlier builds' directories).
   If another task of this build holds it (it is testing `c` in its batch), the task waits for
   that task's record of `c` (or for the claimer's process to be gone), then uses the record if
   it is for the exact inputs `c` has now, else runs `c` alone.
2. It picks up to BATCH_MAX - 1 siblings, from the end of the task order (the dispatcher,
   tasks/dispatch.py, hands the other worker of `doit -n 2` the tasks in that order from the
   front, and none a running batch holds), that this build is likely to test: their result file
   is missing or older than one of their inputs; every input file exists; and it can claim them.
   The search ends after UP_TO_DATE_RUN members in a row that look up to date and that no task
   of this build claimed, so an edit's one test task costs a few dozen stat calls (in a build
   from scratch the members tested already are claimed ones: the search goes on past them).
   It records the sha256 of each one's exact inputs (its task's file_dep: module, test file,
   the shared modules and conftest, the validation fingerprint) before the run. No siblings
   (an edit, or the last tasks of a build): `c` runs alone, as before batching.
3. One forked pytest session runs all the files (testing.run_pytest_batch), one JUnit file per
   file written by pytest's own JUnit writer. A file is vouched for only when its tests all
   passed and nothing in the session failed outside a single file; a crash, hang or odd exit
   of the child vouches for none.
4. For each sibling a record is written: its JUnit bytes and the input hash, when it was vouched
   for and its inputs hash the same after the run as before (a generator task of the other
   worker may have rewritten them meanwhile); otherwise a "run alone" record. When doit later
   runs the sibling's task, it uses the record only if its inputs still hash the same; any other
   case runs it alone. So a record stands for exactly the files it tested, and only passing
   results are ever reused: a failing component, or one whose batch crashed, is tested by its
   own task alone and gets the same verdict, JUnit file and message as without batching.
   `c` itself uses the batch's result when vouched for, else runs alone too.

What batching assumes: the files of one session do not change each other's verdicts. The
generated tests give every test its own DATA_DIR and database and release them after it
(the generated conftest), and a component module is its own module; the identity of batched and
lone results is tested (tests/test_test_batching.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder.layout import GENERATED

if TYPE_CHECKING:  # imported when a test runs: task loading (every no-op) needs only the dataclasses
    from autocoder.validate.testing import TestResult

BATCH_MAX = 8  # files in one session: past ~8 the saving per file flattens, and the other worker idles
UP_TO_DATE_RUN = 2 * BATCH_MAX  # members in a row that look up to date: the search for siblings ends
POLL_S = 0.05  # how often a task waiting on another's batch looks for its record
RECORDS = f"{GENERATED}/.cache/test-batch"


@dataclass(frozen=True)
class Member:
    """One component's test task: its name, test file (relative to the generated src) and its
    own inputs (relative to the project directory: its module and test file)."""

    name: str
    test_file: str
    own: tuple[str, ...]


@dataclass(frozen=True)
class TierGroup:
    """What the test:<component> tasks of one build share: one object, made when doit loads them."""

    build: str  # a token for this doit run
    members: tuple[Member, ...]  # in task order
    shared: tuple[str, ...]  # every member's other inputs: shared modules, conftest, fingerprint
    # the directory of the tasks' JUnit files, relative to the project: a test run rewrites its
    # JUnit file every time (it holds the run's times), while the result JSON is rewritten only
    # when its bytes change, so its time says nothing about when the task last ran
    results: str

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def inputs(self, member: Member) -> tuple[str, ...]:
        """The member's task's file_dep, which a record is keyed by."""
        return (*member.own, *self.shared)


def run_in_group(
    directory: Path, src: Path, group: TierGroup, name: str, junit: Path, scratch: Path
) -> TestResult:
    """The test result of component `name` (its JUnit file written to `junit`): from another
    task's batch, from a batch this task runs, or from a run of its file alone."""
    from autocoder.validate.testing import run_tests, run_tests_batch

    own = group.member(name)
    records = _records(directory, group.build)
    if not claim(records, name):
        wait_for_record(records, name)
        junit_bytes = _recorded(records, name, input_digest(directory, group.inputs(own)))
        if junit_bytes is not None:
            return _from_junit(junit, junit_bytes)
        return run_tests(src, own.test_file, junit, scratch)
    siblings = _siblings(directory, group, own, records)
    if not siblings:
        return run_tests(src, own.test_file, junit, scratch)
    _forget_other_builds(directory, group.build)
    vouched: dict[str, bytes | None] = {}
    try:
        vouched = run_tests_batch(src, [own.test_file, *(m.test_file for m, _ in siblings)], scratch)
    finally:  # every claimed sibling gets a record, so that no task waits for it in vain
        for member, before in siblings:
            data = vouched.get(member.test_file)
            usable = data is not None and input_digest(directory, group.inputs(member)) == before
            write_record(
                records, member.name, {"inputs": before, "junit": data.decode()} if usable and data else {}
            )
    own_bytes = vouched.get(own.test_file)
    if own_bytes is None:
        return run_tests(src, own.test_file, junit, scratch)
    return _from_junit(junit, own_bytes)


def _from_junit(junit: Path, data: bytes) -> TestResult:
    """The result a run that wrote `data` as its JUnit file gives (run_tests parses its own)."""
    from autocoder.fsutil import atomic_write
    from autocoder.validate.testing import parse_junit

    junit.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(junit, data, durable=False)  # as pytest writes it: doit checks it by md5
    return parse_junit(junit)


def _siblings(directory: Path, group: TierGroup, own: Member, records: Path) -> list[tuple[Member, str]]:
    """Up to BATCH_MAX - 1 other members this build will likely test and whose inputs all
    exist, claimed, each with the hash of its inputs now; searched from the end of the task
    order, and given up after UP_TO_DATE_RUN members in a row that look up to date without a
    claim of this build: an edit's one test task then costs a few dozen stat calls, not one per
    component. A build from scratch hands out its test tasks from the front of the order
    (tasks/dispatch.py) and runs a batch's recorded members at once, so the members tested
    already, at the end, are claimed ones, which do not end the search."""
    chosen: list[tuple[Member, str]] = []
    root = str(directory)
    shared = _newest(root, group.shared)
    if shared is None:
        return chosen
    up_to_date = 0
    for member in reversed(group.members):
        if len(chosen) >= BATCH_MAX - 1 or up_to_date >= UP_TO_DATE_RUN:
            break
        if member is own:
            continue
        state = _state(root, group, member, shared)
        if state == "done":
            # tested in this build already (claimed: its result is a batch's or its own task's),
            # which the dispatcher has such a task run as soon as its record is written, or up
            # to date from an earlier build; only the latter says the rest is up to date too
            if not os.path.exists(records / f"{member.name}.claim"):
                up_to_date += 1
            continue
        # not generated yet (a build from scratch, its generators still running): neither a
        # candidate nor a sign that the rest is up to date, so the search goes on past it (as
        # siblings._pending does); counted as up to date, a test task that started while the
        # last components were being generated found no sibling and ran its file alone
        if state == "unready":
            continue
        up_to_date = 0
        if not claim(records, member.name):
            continue
        before = input_digest(directory, group.inputs(member))
        if before is None:  # an input vanished since the check: not testable now
            write_record(records, member.name, {})
            continue
        chosen.append((member, before))
    return chosen


def _state(root: str, group: TierGroup, member: Member, shared: int) -> str:
    """ "pending", "done" or "unready" (one of its own inputs is missing: its generator has not
    run yet): whether this build will run the member's task, guessed from file times (doit
    decides by its own records; a wrong guess costs time, never a wrong result): pending when
    its result file is missing or older than one of its inputs (`shared`: the newest shared
    input's time)."""
    own = _newest(root, member.own)
    if own is None:
        return "unready"
    try:
        done = os.stat(f"{root}/{group.results}/{member.name}.xml").st_mtime_ns >= max(own, shared)
    except OSError:
        return "pending"
    return "done" if done else "pending"


def _newest(root: str, paths: tuple[str, ...]) -> int | None:
    """The latest modification time of `paths` (ns, relative to `root`), None when one is missing."""
    try:
        return max(os.stat(f"{root}/{path}").st_mtime_ns for path in paths)
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


def records_dir(directory: Path, build: str) -> Path:
    """The records directory of build `build` (the dispatcher reads it too: tasks/dispatch.py)."""
    return directory / RECORDS / build


def _records(directory: Path, build: str) -> Path:
    """This build's records directory (made if missing)."""
    path = records_dir(directory, build)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _forget_other_builds(directory: Path, build: str) -> None:
    """Delete the records of earlier builds (one build at a time holds a project: tasks/lock.py;
    none is ever read, their token differs): when a build batches, not on an edit's one task."""
    for old in (directory / RECORDS).iterdir():
        if old.name != build:
            shutil.rmtree(old, ignore_errors=True)


def claim(records: Path, name: str) -> bool:
    """Take the claim on testing `name` in this build (False: another task holds it); the
    claim file holds the claimer's process id."""
    try:
        descriptor = os.open(records / f"{name}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as claim:
        claim.write(str(os.getpid()))
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
    """A sibling's result for its own task: {"inputs": hash, "junit": text}, or {} (run alone).
    When it cannot be written (a full disk), the claim is dropped instead: the sibling's task,
    waiting for the record or not yet started, then tests it itself rather than wait forever."""
    from autocoder.fsutil import atomic_write

    try:
        atomic_write(
            records / f"{name}.json", json.dumps(record).encode(), durable=False
        )  # this build's only
    except OSError:
        with contextlib.suppress(OSError):
            (records / f"{name}.claim").unlink()


def _recorded(records: Path, name: str, inputs: str | None) -> bytes | None:
    """The JUnit bytes recorded for `name` when recorded for exactly these inputs, else None."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((records / f"{name}.json").read_bytes())
        if inputs is not None and isinstance(record, dict) and record.get("inputs") == inputs:
            junit = record.get("junit")
            if isinstance(junit, str):
                return junit.encode()
    return None
