"""Batching the test tier: one pytest session for several components' tests (issue 13, full builds).

The protocol (claims, the search for pending siblings, records keyed by the inputs' sha256,
lone runs as the fallback) is the one every batching tier shares: validate/siblings.py
`run_batched`, whose docstring says why and how. This module is what the test tier adds:

- Its members: a component's test file (relative to the generated src) beside its own inputs
  (its module and test file), and the inputs every member shares (the shared modules, the
  conftest, the validation fingerprint), stat-ed once per search.
- Which members are pending: their JUnit file is missing or older than an input. A test run
  rewrites its JUnit file every time (it holds the run's times), while the result JSON is
  rewritten only when its bytes change, so the JSON's time says nothing about when the task
  last ran.
- The batch: one forked pytest session runs all the files (testing.run_tests_batch), one JUnit
  file per file written by pytest's own JUnit writer. A file is vouched for only when its tests
  all passed and nothing in the session failed outside a single file; a crash, hang or odd exit
  of the child vouches for none. A record's payload is the vouched file's JUnit text; the task
  that uses it writes it as its JUnit file and parses it as a run of its file alone would.
- A task waiting for another's batch looks for its record every POLL_S: a test batch takes
  ~1-1.5 s, longer than the other tiers'.

What batching assumes: the files of one session do not change each other's verdicts. The
generated tests give every test its own DATA_DIR and database and release them after it
(the generated conftest), and a component module is its own module; the identity of batched and
lone results is tested (tests/test_test_batching.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autocoder.validate.siblings import UP_TO_DATE_RUN, Siblings, records_dir, run_batched

if TYPE_CHECKING:  # imported when a test runs: task loading (every no-op) needs only the dataclasses
    from autocoder.validate.testing import TestResult

__all__ = ["UP_TO_DATE_RUN", "Member", "TierGroup", "run_in_group"]

TIER = "test"
POLL_S = 0.05  # how often a task waiting on another's batch looks for its record


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
    results: str  # the directory of the tasks' JUnit files, relative to the project (module docstring)

    def member(self, name: str) -> Member:
        return self._by_name[name]

    def records_dir(self, directory: Path) -> Path:
        """This build's records directory of the test tier (the dispatcher reads it too)."""
        return records_dir(directory, TIER, self.build)

    @functools.cached_property
    def siblings(self) -> Siblings:
        """The group as the batching protocol sees it (made when a task first runs, not when
        doit loads the tasks)."""
        members = tuple((m.name, m.own) for m in self.members)
        return Siblings(
            TIER,
            self.build,
            members,
            self.results,
            rewritten=True,
            shared=self.shared,
            suffix=".xml",
            poll_s=POLL_S,
        )

    @functools.cached_property
    def _by_name(self) -> dict[str, Member]:
        return {m.name: m for m in self.members}


def run_in_group(
    directory: Path, src: Path, group: TierGroup, name: str, junit: Path, scratch: Path
) -> TestResult:
    """The test result of component `name` (its JUnit file written to `junit`): from another
    task's batch, from a batch this task runs, or from a run of its file alone."""
    from autocoder.validate.testing import TestResult, run_tests, run_tests_batch

    def alone() -> TestResult:
        return run_tests(src, group.member(name).test_file, junit, scratch)

    def batch(names: list[str]) -> dict[str, str]:
        files = {group.member(n).test_file: n for n in names}
        vouched = run_tests_batch(src, list(files), scratch)
        return {files[file]: data.decode() for file, data in vouched.items() if data}

    found = run_batched(directory, group.siblings, name, batch, alone)
    return found if isinstance(found, TestResult) else _from_junit(junit, found.encode())


def _from_junit(junit: Path, data: bytes) -> TestResult:
    """The result a run that wrote `data` as its JUnit file gives (run_tests parses its own)."""
    from autocoder.fsutil import atomic_write
    from autocoder.validate.testing import parse_junit

    junit.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(junit, data, durable=False)  # as pytest writes it: doit checks it by md5
    return parse_junit(junit)
