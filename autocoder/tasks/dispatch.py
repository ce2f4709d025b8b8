"""Which ready task doit runs next, in an order that keeps both processes of `doit -n 2` busy
to the end of a build from scratch; which tasks run, their dependencies, up-to-date checks and
results stay doit's.

doit's dispatcher (doit.control.TaskDispatcher) keeps one first-in first-out queue of the
tasks whose dependencies are done; a task is queued when its last dependency ends (the lint,
test and bench tasks of a component when its generator does, in no useful order). In a build
from scratch with `-n 2` (100 components) that order left a core idle:
- `gen:runtime` (the system package; every test needs it) was queued behind the 100
  `gen:<component>` tasks, and `typecheck` (mypy, ~2-4 s) and `test:integration` (the smoke
  test, ~2 s) behind the ~250 lint, test and bench tasks queued before them: each ran when its
  turn came, often at the end of the build beside nothing but tiny tasks.
- A batch (validate/batch.py, validate/siblings.py) claims up to 7 siblings of its task; doit
  then handed the other process a sibling the running batch had claimed, and that process
  waited for the batch's record doing nothing (0.2-1.2 s each, 2.5 s in one build).
- The recorded tasks (a batch's siblings: a few ms each, where doit's round trip per task is
  most of the time) piled up at the end, ~180 in a row at 1.2-1.5 busy cores; the first path
  test, which starts the path tests' shared server (~0.5 s) while the other path tests wait
  for it, came after all of them, and a long test batch could be the last task left.

So the ready tasks are taken in this order (first come, first taken, within each rank):
0. FIRST: gen:runtime, typecheck, test:integration;
1. the gen:<component> tasks (every other task waits for them);
2. a task whose batch record is written (`batch_meta`): it takes a few ms, and taken at once
   it runs beside the other process's batch instead of in a row of them at the end;
3. the component test tasks (their batches take ~1-1.5 s: the longest first) and every task
   of no other rank (check, ir, policy, report, ...);
4. the path tests: after the component tests, before the short lint and bench batches, so
   that their server starts beside other work; one path batch at a time (the others would
   wait for the server it starts);
5. bench, 6. lint: short batches, the fill at the end;
and a task a running batch has claimed (claim file, no record yet) only when nothing else is
ready: taken, it would wait for that batch. Whether a record or claim exists is read from the
records directories (listed again only when one changed), so the order may lag a file by one
task: it costs time, never a result (a task whose record is not there runs as it always did).

It applies to doit runs of Autocoder projects (`doit` with the project's dodo.py and
`autocoder build`, any `-n`, any reporter): autocoder.tasks.dodo installs it when imported.
AUTOCODER_DISPATCH=fifo keeps doit's own order.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import doit.control
from doit.control import TaskDispatcher

# the task every test waits for, and the two longest single tasks (only `report` waits for them)
FIRST = frozenset({"gen:runtime", "typecheck", "test:integration"})
ENV = "AUTOCODER_DISPATCH"
META = "autocoder_batch"  # a task's meta key: (its tier's records directory, its member name)
RECORDED, OTHER, PATH = 2, 3, 4  # ranks (module docstring)
PREFIXES = (("gen:", 1), ("test:path.", PATH), ("bench:", 5), ("lint:", 6))
# a directory whose mtime is this recent is listed again even when it did not change: file
# systems stamp times at a clock tick, so two changes within one tick can share one mtime
RECENT_NS = 20_000_000


def batch_meta(records: Path, member: str) -> dict[str, Any]:
    """The doit `meta` of a task that a batch may run for it: where its batch's claim and
    record of `member` are written (`<records>/<member>.claim` and `.json`)."""
    return {META: (str(records), member)}


def static_rank(name: str) -> int:
    """The rank of a task by its name alone (module docstring)."""
    if name in FIRST:
        return 0
    for prefix, rank in PREFIXES:
        if name.startswith(prefix):
            return rank
    return OTHER


class Records:
    """The names in one records directory (`<member>.claim`, `<member>.json`), listed again
    only when the directory changed (or changed within RECENT_NS of the last listing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp: int | None = None
        self.listed_at = 0
        self.recorded: frozenset[str] = frozenset()
        self.running: frozenset[str] = frozenset()  # claimed, not recorded: a batch runs it

    def refresh(self) -> None:
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            self.stamp, self.recorded, self.running = None, frozenset(), frozenset()
            return
        if stamp == self.stamp and self.listed_at - stamp > RECENT_NS:
            return
        self.listed_at = time.time_ns()
        try:
            names = os.listdir(self.path)
        except OSError:
            names = []
        recorded = {n[:-5] for n in names if n.endswith(".json")}
        self.running = frozenset(n[:-6] for n in names if n.endswith(".claim") and n[:-6] not in recorded)
        self.recorded, self.stamp = frozenset(recorded), stamp


class ReadyQueue:
    """doit's `ready` queue of ExecNodes (it appends, pops from the left, tests for emptiness),
    taken in rank order (module docstring); first come, first taken within a rank."""

    def __init__(self, nodes: Any = ()) -> None:
        self.ranks: dict[int, deque[Any]] = {}
        self.size = 0
        self.arrived = 0
        self.seq: dict[int, int] = {}  # id(node) -> its arrival
        self.records: dict[str, Records] = {}  # by directory
        self.queued: dict[str, dict[str, Any]] = {}  # directory -> member -> its queued node
        self.batch: dict[int, tuple[Records, str]] = {}  # id(node) -> its records and member
        self.path_started = False  # a path test was handed to the runner
        self.path_done = False  # a path test ended (its server, if it started one, is ready)
        for node in nodes:
            self.append(node)

    def __len__(self) -> int:
        return self.size

    def append(self, node: Any) -> None:
        self.ranks.setdefault(static_rank(node.task.name), deque()).append(node)
        self.size += 1
        self.arrived += 1
        self.seq[id(node)] = self.arrived
        meta = getattr(node.task, "meta", None)
        found = meta.get(META) if isinstance(meta, dict) else None
        if found:
            path, member = found
            records = self.records.get(path)
            if records is None:
                records = self.records[path] = Records(path)
            self.batch[id(node)] = (records, member)
            self.queued.setdefault(path, {})[member] = node

    def popleft(self) -> Any:
        if not self.size:
            raise IndexError("pop from an empty ReadyQueue")
        for path, members in self.queued.items():
            if members:
                self.records[path].refresh()
        node = self._recorded() or self._free() or self._first()
        self.ranks[static_rank(node.task.name)].remove(node)
        self.size -= 1
        del self.seq[id(node)]
        batch = self.batch.pop(id(node), None)
        members = self.queued[batch[0].path] if batch is not None else {}
        if batch is not None and members.get(batch[1]) is node:
            del members[batch[1]]
        return node

    def started(self, node: Any) -> None:
        """doit hands `node`'s task to the runner (which runs it, or finds it up to date)."""
        if node.task.name.startswith("test:path."):
            self.path_started = True

    def ended(self, node: Any) -> None:
        """doit is done with `node` (run, failed, up to date or skipped)."""
        if node.task.name.startswith("test:path."):
            self.path_done = True

    def _recorded(self) -> Any:
        """The first-come node, of rank RECORDED or after, whose batch record exists."""
        found = None
        for path, members in self.queued.items():
            for member in self.records[path].recorded.intersection(members):
                node = members[member]
                if static_rank(node.task.name) >= RECORDED and (
                    found is None or self.seq[id(node)] < self.seq[id(found)]
                ):
                    found = node
        return found

    def _free(self) -> Any:
        """The first node in rank order that no running batch has claimed; a path test only
        once no other path test is starting the server (the first path test has ended)."""
        path_wait = self.path_started and not self.path_done
        for rank in sorted(self.ranks):
            if rank == PATH and path_wait:
                continue
            for node in self.ranks[rank]:
                batch = self.batch.get(id(node))
                if batch is None or batch[1] not in batch[0].running:
                    return node
        return None

    def _first(self) -> Any:
        """Nothing else is ready: the first-come node of the first rank, claimed or not."""
        return self.ranks[min(r for r, nodes in self.ranks.items() if nodes)][0]


class EarlyFirstDispatcher(TaskDispatcher):  # type: ignore[misc]  # doit is untyped
    """doit's dispatcher with ReadyQueue as its ready queue, which it tells when a task is
    handed to the runner and when doit is done with it; nothing else differs. Should a doit
    keep its queue otherwise than in a deque, its own queue and order stay."""

    ready: Any  # doit's, set by its __init__
    generator: Any  # doit's: the nodes it hands to the runner

    def __init__(self, tasks: Any, targets: Any, selected_tasks: Any) -> None:
        super().__init__(tasks, targets, selected_tasks)
        if type(self.ready) is deque:
            self.ready = ReadyQueue(self.ready)
            self.generator = self._watched(self.generator)

    def _watched(self, inner: Any) -> Any:
        """doit's generator of nodes for the runner, passing through what the runner sends."""
        sent = None
        while True:
            try:
                item = inner.send(sent)
            except StopIteration:
                return
            if isinstance(item, doit.control.ExecNode):
                self.ready.started(item)
            sent = yield item

    def _update_waiting(self, processed: Any) -> None:
        if (
            processed is not None
            and processed.run_status not in (None, "run")
            and isinstance(self.ready, ReadyQueue)
        ):
            self.ready.ended(processed)
        super()._update_waiting(processed)


def install() -> None:
    """Have doit's TaskControl create EarlyFirstDispatcher (TaskControl.task_dispatcher builds
    its dispatcher by this module-level name), or doit's own with AUTOCODER_DISPATCH=fifo."""
    fifo = os.environ.get(ENV, "").strip().lower() == "fifo"
    doit.control.TaskDispatcher = TaskDispatcher if fifo else EarlyFirstDispatcher
