"""Which ready task doit runs next, in an order that keeps both processes of `doit -n 2` busy
to the end of a build from scratch. Only the order changes: which tasks run, their
dependencies, up-to-date checks and results stay doit's.

doit's dispatcher (doit.control.TaskDispatcher) keeps one first-in first-out queue of the
tasks whose dependencies are done; a task is queued when its last dependency ends (the lint,
test and bench tasks of a component when its generator does, in no useful order). In a build
from scratch with `-n 2` (100 components) that order left a core idle:
- `gen:runtime` (the system package; every test needs it) was queued behind the 100
  `gen:<component>` tasks, and `typecheck` (mypy, ~2-4 s) and `test:integration` (the smoke
  test, ~2 s) behind the ~250 lint, test and bench tasks queued before them: each ran when its
  turn came, often at the end of the build beside nothing but tiny tasks.
- A batch (validate/siblings.py, every tier's) claims up to 7 pending siblings of its task,
  searched from the end of the tier's task order, on the assumption that the other process
  reaches those last. doit's queue is in no such order: it handed the other process a sibling
  the running batch held, and that process waited for the batch doing nothing (0.2-1.2 s
  each; 2.5 s in one build).
- The batches' recorded tasks (a few ms each, doit's round trip per task most of it) piled up
  at the end, ~180 in a row at 1.2-1.5 busy cores; the path tests came after them, the first
  starting the path tests' shared server (~0.5 s) while the next one waited for it.

So the ready tasks are taken by rank:
0. FIRST: gen:runtime, typecheck, test:integration;
1. the gen:<component> tasks (every other task waits for them);
2. a task whose batch record is written (`batch_meta`): a few ms, taken at once it runs beside
   the other process's batch instead of in a row of them at the end;
3. the component test tasks (a batch of them takes ~1-1.5 s: the longest work first) and any
   task of no other rank (check, ir, policy, report, deploy, ...);
4. the path tests: after the component tests, so that the first one starts the server beside
   other work, and before the short bench and lint batches, which fill the end; until the
   first one handed out has ended (its server is up) no other one is handed out;
5. bench, 6. lint;
and a task that a running batch holds (its claim file, no record yet) only when nothing else
is ready (taken, it waits for that batch). Within a rank, tasks go in the order they were
defined (a tier's component order: a batch takes its siblings from the end, the other process
works from the front), then first come. Records and claims are read from the records
directories (listed again when one changed, at most every 5 ms; the task chosen is checked for
a claim on the spot), so the order may be a file behind: that costs time, never a result (a
task finds its record, or runs as it always did).

It applies to doit runs of Autocoder projects (`doit` with the project's dodo.py and
`autocoder build`, any `-n`, any reporter): autocoder.tasks.dodo installs it when imported.
AUTOCODER_DISPATCH=fifo keeps doit's own order.
"""

from __future__ import annotations

import bisect
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
RELIST_NS = 5_000_000  # a records directory is listed at most this often


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
    when the directory changed (or changed within RECENT_NS of the last listing), at most
    every RELIST_NS: a listing costs ~0.1 ms, and a batch's claims and records change the
    directory at nearly every task of a busy build. A listing may so be RELIST_NS old; the
    task the dispatcher chooses is checked for a claim on the spot (`running_now`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp: int | None = None
        self.checked_at = 0  # when the directory's mtime was last looked at
        self.listed_at = 0
        self.recorded: frozenset[str] = frozenset()
        self.running: frozenset[str] = frozenset()  # claimed, not recorded: a batch runs it

    def refresh(self) -> None:
        now = time.time_ns()
        if now - self.checked_at < RELIST_NS:
            return
        self.checked_at = now
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            self.stamp, self.recorded, self.running = None, frozenset(), frozenset()
            return
        if stamp == self.stamp and self.listed_at - stamp > RECENT_NS:
            return
        self.listed_at = now
        try:
            names = os.listdir(self.path)
        except OSError:
            names = []
        recorded = {n[:-5] for n in names if n.endswith(".json")}
        self.running = frozenset(n[:-6] for n in names if n.endswith(".claim") and n[:-6] not in recorded)
        self.recorded, self.stamp = frozenset(recorded), stamp

    def running_now(self, member: str) -> bool:
        """Whether a batch holds `member` now (its claim, no record), from the files themselves;
        when it does, the listing's `running` learns it. Not looked for while the directory did
        not exist at the last listing (a no-op build: no batch of this build ran), which costs
        a task handed out in the first RELIST_NS of a batch a wait, never a result."""
        if self.stamp is None:
            return False
        claimed = os.path.exists(f"{self.path}/{member}.claim")
        if claimed and not os.path.exists(f"{self.path}/{member}.json"):
            self.running = self.running | {member}
            return True
        return False


class ReadyQueue:
    """doit's `ready` queue of ExecNodes (it appends, pops from the left, tests for emptiness),
    taken in rank order (module docstring); within a rank, in the order the tasks were defined
    (`order`: task names; a name it lacks comes after them), then first come."""

    def __init__(self, nodes: Any = (), order: Any = ()) -> None:
        self.position = {name: i for i, name in enumerate(order)}
        self.ranks: dict[int, list[tuple[tuple[int, int], int]]] = {}  # rank -> sorted (key, id)
        self.nodes: dict[int, Any] = {}  # id(node) -> node
        self.key: dict[int, tuple[int, int]] = {}  # id(node) -> (definition, arrival)
        self.arrived = 0
        self.records: dict[str, Records] = {}  # by directory
        self.queued: dict[str, dict[str, Any]] = {}  # directory -> member -> its queued node
        self.batch: dict[int, tuple[Records, str]] = {}  # id(node) -> its records and member
        self.path_started = False  # a path test was handed to the runner
        self.path_done = False  # a path test ended (its server, if it started one, is ready)
        for node in nodes:
            self.append(node)

    def __len__(self) -> int:
        return len(self.nodes)

    def append(self, node: Any) -> None:
        name = node.task.name
        self.arrived += 1
        key = self.key[id(node)] = (self.position.get(name, len(self.position)), self.arrived)
        self.nodes[id(node)] = node
        bisect.insort(self.ranks.setdefault(static_rank(name), []), (key, id(node)))
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
        if not self.nodes:
            raise IndexError("pop from an empty ReadyQueue")
        for path, members in self.queued.items():
            if members:
                self.records[path].refresh()
        node = self._recorded() or self._free() or self._first()
        entry = (self.key.pop(id(node)), id(node))
        nodes = self.ranks[static_rank(node.task.name)]
        del nodes[bisect.bisect_left(nodes, entry)]
        del self.nodes[id(node)]
        batch = self.batch.pop(id(node), None)
        if batch is not None and self.queued[batch[0].path].get(batch[1]) is node:
            del self.queued[batch[0].path][batch[1]]
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
        """The first node, of rank RECORDED or after, whose batch record exists."""
        found = [
            members[member]
            for path, members in self.queued.items()
            for member in self.records[path].recorded.intersection(members)
        ]
        found = [node for node in found if static_rank(node.task.name) >= RECORDED]
        return min(found, key=lambda node: self.key[id(node)]) if found else None

    def _free(self) -> Any:
        """The first node in rank order that no running batch holds (by the listing, then by
        its files); a path test only once no other path test is starting the server (the first
        path test has ended)."""
        path_wait = self.path_started and not self.path_done
        for rank in sorted(self.ranks):
            if rank == PATH and path_wait:
                continue
            for _, key in self.ranks[rank]:
                batch = self.batch.get(key)
                if batch is None:
                    return self.nodes[key]
                records, member = batch
                if member not in records.running and not records.running_now(member):
                    return self.nodes[key]
        return None

    def _first(self) -> Any:
        """Nothing else is ready: the first node of the first rank, claimed or not."""
        return self.nodes[self.ranks[min(r for r, nodes in self.ranks.items() if nodes)][0][1]]


class EarlyFirstDispatcher(TaskDispatcher):  # type: ignore[misc]  # doit is untyped
    """doit's dispatcher with ReadyQueue as its ready queue, which it tells when a task is
    handed to the runner and when doit is done with it; nothing else differs. Should a doit
    keep its queue otherwise than in a deque, its own queue and order stay."""

    ready: Any  # doit's, set by its __init__
    generator: Any  # doit's: the nodes it hands to the runner

    def __init__(self, tasks: Any, targets: Any, selected_tasks: Any) -> None:
        super().__init__(tasks, targets, selected_tasks)
        if type(self.ready) is deque:
            self.ready = ReadyQueue(self.ready, tasks)
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
