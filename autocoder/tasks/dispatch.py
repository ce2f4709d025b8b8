"""Which ready task doit runs next: the tasks on a build's critical path (FIRST) go before the
tasks already waiting for a process; every other task keeps doit's first-come order.

Why: doit's dispatcher (doit.control.TaskDispatcher) keeps one first-in first-out queue of the
tasks whose dependencies are done. In a build from scratch with `-n 2` (100 components):
- `gen:runtime` (the system package, ~1.2 s; every test needs it) becomes ready with the 100
  `gen:<component>` tasks when `ir` ends, and was queued behind them: the tests could start
  only once it was done, and it ran alone at the end of the generation;
- `typecheck` (mypy over the whole generated system, ~4 s) becomes ready when the last `gen`
  task ends, and `test:integration` (the smoke test, ~2 s) when gen:runtime does, each behind
  the ~250 lint, test and bench tasks that became ready before it. Each ran whenever its turn
  came, often at the end of the build beside nothing but tiny tasks, one core idle
  (typecheck at 25.5-29.5 s of a 31 s build, the smoke test in the last 2 s of others).
Put in front, each starts as soon as a process is free, beside the many short tasks.

Only the order changes: which tasks run, what they depend on, their up-to-date checks and
their results are doit's. It applies to doit runs of Autocoder projects (`doit` with the
project's dodo.py and `autocoder build`, any `-n`, any reporter): autocoder.tasks.dodo installs
it when imported. AUTOCODER_DISPATCH=fifo keeps doit's own order.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import doit.control
from doit.control import TaskDispatcher

# the task every test waits for, and the two longest single tasks (only `report` waits for them)
FIRST = frozenset({"gen:runtime", "typecheck", "test:integration"})
ENV = "AUTOCODER_DISPATCH"


class ReadyQueue(deque[Any]):
    """doit's `ready` queue of ExecNodes (it appends, pops from the left, tests for emptiness),
    with the nodes of FIRST tasks put in front."""

    def append(self, node: Any) -> None:
        if node.task.name in FIRST:
            self.appendleft(node)
        else:
            super().append(node)


class EarlyFirstDispatcher(TaskDispatcher):  # type: ignore[misc]  # doit is untyped
    """doit's dispatcher with ReadyQueue as its ready queue; nothing else differs. Should a
    doit keep its queue otherwise than in a deque, its own queue and order stay."""

    ready: Any  # doit's, set by its __init__

    def __init__(self, tasks: Any, targets: Any, selected_tasks: Any) -> None:
        super().__init__(tasks, targets, selected_tasks)
        if type(self.ready) is deque:
            self.ready = ReadyQueue(self.ready)


def install() -> None:
    """Have doit's TaskControl create EarlyFirstDispatcher (TaskControl.task_dispatcher builds
    its dispatcher by this module-level name), or doit's own with AUTOCODER_DISPATCH=fifo."""
    fifo = os.environ.get(ENV, "").strip().lower() == "fifo"
    doit.control.TaskDispatcher = TaskDispatcher if fifo else EarlyFirstDispatcher
