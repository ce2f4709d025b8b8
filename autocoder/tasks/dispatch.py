"""Which ready task doit runs next: a task marked `meta={"dispatch": "early"}` goes before the
tasks already waiting for a process; every other task keeps doit's first-come order.

Why: doit's dispatcher (doit.control.TaskDispatcher) keeps one first-in first-out queue of the
tasks whose dependencies are done. In a build from scratch `typecheck` (mypy over the whole
generated system, ~4 s at 100 components) becomes ready when the last `gen` task ends, ~2.5 s
in, behind the ~250 lint, test and bench tasks that became ready before it; with `-n 2` it was
dispatched after all of them and ran alone at the end, one core idle (25.5-29.5 s of a 31 s
build). Marked early, it starts as soon as a process is free and runs beside the tests.

Only the order changes: which tasks run, what they depend on, their up-to-date checks and
results are doit's. It applies to doit runs of Autocoder projects (`doit` with the project's
dodo.py and `autocoder build`, any `-n` and any reporter), installed when autocoder.tasks.dodo
is imported. AUTOCODER_DISPATCH=fifo keeps doit's own order.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import doit.control
from doit.control import TaskDispatcher

EARLY = {"dispatch": "early"}  # a task dict's "meta" that asks to run before the queue
ENV = "AUTOCODER_DISPATCH"


def early(node: Any) -> bool:
    """Whether this ExecNode's task asked to go first (its meta has dispatch: early)."""
    meta = getattr(node.task, "meta", None)
    return isinstance(meta, dict) and meta.get("dispatch") == EARLY["dispatch"]


class ReadyQueue(deque[Any]):
    """doit's `ready` queue (append, popleft, truth value) with early tasks put in front."""

    def append(self, node: Any) -> None:
        if early(node):
            self.appendleft(node)
        else:
            super().append(node)


class EarlyFirstDispatcher(TaskDispatcher):  # type: ignore[misc]  # doit is untyped
    """doit's dispatcher with ReadyQueue as its ready queue; nothing else differs."""

    def __init__(self, tasks: Any, targets: Any, selected_tasks: Any) -> None:
        super().__init__(tasks, targets, selected_tasks)
        self.ready: ReadyQueue = ReadyQueue(self.ready)


def install() -> None:
    """Make doit's TaskControl create EarlyFirstDispatcher (TaskControl.task_dispatcher builds
    the dispatcher by its module-level name), unless AUTOCODER_DISPATCH=fifo."""
    if os.environ.get(ENV, "").strip().lower() == "fifo":
        doit.control.TaskDispatcher = TaskDispatcher
    else:
        doit.control.TaskDispatcher = EarlyFirstDispatcher
