"""Import, on a background thread, modules that later tasks of this build will need, while this
process only waits (for the warm worker's `check` child: tasks/warm_compile.py).

On two cores, the child compiles on one while the imports run on the other, instead of the
imports running after, in the tasks that need them. `check` stops the imports once its child
has answered; the import under way then finishes in the background, and the first action that
could depend on it waits for it (`settle`): the code generator's models are `gen`'s import, not
`check`'s, so `check` no longer waits for the end of an import it does not use.

Why this is safe:
- A fork while the thread is inside an import would leave the child holding that module's
  import lock for a thread that does not exist there (the child would hang importing it):
  `settle` runs before every `os.fork` of this process (os.register_at_fork). doit forks its
  `-n` workers before any task runs; the tests' children are forked by validate/isolated.py.
- Two threads importing at once is safe in CPython, except a circular import split across the
  threads (one of them may then see a partly initialised module): every task action waits for
  the import under way first (runcache/tasks.py `run_cached`, which every task with targets
  goes through), except OVERLAPPING's, whose actions import nothing new. `ir` writes the plan
  `check`'s child made; when it has none it settles before compiling (warm_compile.ir).
- Interpreter exit waits for the import under way (atexit), rather than freezing a daemon
  thread inside it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

OVERLAPPING = frozenset({"ir"})  # tasks whose action may run while an import finishes
JOIN_S = 30.0  # at most, for the import under way
# While the thread imports, every other thread that comes back from a system call (a read of the
# child's answer, ~1 MB in 64 KB reads; each open, write, fsync and rename of `ir`) waits for the
# GIL until the importing thread is asked to drop it, after the switch interval: Python's 5 ms
# default made 30 small file writes beside a busy thread take ~600 ms, 1 ms ~140 ms, 0.2 ms ~45
# (8 ms alone). The interval only matters while another thread waits for the GIL.
SWITCH_INTERVAL_S = 0.0002


@dataclass
class _Run:
    thread: threading.Thread
    stop: threading.Event
    interval: float  # sys.getswitchinterval() before the run


_RUN: list[_Run] = []  # the run under way, at most one


def start(modules: Sequence[str]) -> None:
    """Import `modules` in order on a daemon thread, until `stop`."""
    settle()
    cancel = threading.Event()
    thread = threading.Thread(
        target=_import_all, args=(modules, cancel), name="autocoder-prefetch", daemon=True
    )
    run = _Run(thread, cancel, sys.getswitchinterval())
    sys.setswitchinterval(min(run.interval, SWITCH_INTERVAL_S))
    _RUN.append(run)
    run.thread.start()


def stop() -> None:
    """No further import after the one under way (which goes on: `settle` waits for it)."""
    for run in _RUN:
        run.stop.set()


def settle() -> None:
    """Wait for the import under way, if any (the imports after it are cancelled)."""
    while _RUN:
        run = _RUN.pop()
        run.stop.set()
        if run.thread.is_alive() and run.thread is not threading.current_thread():
            run.thread.join(JOIN_S)
        sys.setswitchinterval(run.interval)


def _import_all(modules: Sequence[str], stop: threading.Event) -> None:
    for name in modules:
        if stop.is_set():
            return
        with contextlib.suppress(Exception):  # only a cost: the task that needs it imports it
            importlib.import_module(name)


os.register_at_fork(before=settle)
atexit.register(settle)
