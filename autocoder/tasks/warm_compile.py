"""`check` and `ir` in a child of the project's warm worker (validate/warm_worker.py).

An edit build is one fresh `doit` process: importing the compiler (pydantic building the
blueprint and IR models) costs it ~0.4 s before `check` can start, more than compiling 500
components. The warm worker has imported it already (`warm_up`, before it serves), so `check`
asks it for a forked child, which runs exactly the in-process action (its output captured and
replayed here, its files written by the child, atomically, as in process) and also plans what
`ir` will write for these blueprints (ir/write.py `plan_ir`: the encoded files, checked against
the files as they are). `ir`, in this same process and for the same blueprint bytes and
strictness, writes that plan without importing the compiler; otherwise it asks the worker for
a child of its own, or runs in process. doit's view is unchanged: two tasks, the same
dependencies and targets, each re-run only when its own inputs change. With `doit -n`, `ir`
runs in another worker than `check`: `check` hands the plan over as a file of this build (made
from its own compile when no warm worker answered: a build from scratch), tasks/plan_handover.py.

When the worker is absent, not ready, of another key (other Autocoder files, Python or
environment: the worker's key, so it never serves stale code) or fails in any way (a broken
stream, a child that crashed or raised), the action runs in this process, as it did without
a worker, and a rebuild starts a worker for the next build: the results are the same bytes
either way (tests/test_warm_compile.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed

from autocoder.canonical import compact_json
from autocoder.layout import CHECK_REPORT, GENERATED
from autocoder.tasks import compile_tasks, plan_handover, prefetch
from autocoder.tasks.plan_handover import Planned

if TYPE_CHECKING:
    from collections.abc import Callable

    from autocoder.ir.write import IrPlan
    from autocoder.validate.warm_worker import Worker

LIMIT_S = 600.0  # a child's compile, at most (the blueprint's size is bounded: MAX_BLUEPRINT_BYTES)

# What the tasks after `check` import in this process in an edit build, ~0.9 s in all at 100
# components (`python -X importtime -m doit`): gen the IR models (0.41 s), Jinja and the LLM
# settings; lint bandit; the path tests httpx and the runtime's test helpers; typecheck the
# mypy daemon's client; deploy:wheels flit_core. Imported, in the order the tasks need them,
# while this process only waits for `check`'s child (tasks/prefetch.py); what is not imported
# by the time the child answers is left to the tasks that need it.
# the files besides the IR's that a plan may write or leave as they are (plan_handover)
PROJECTIONS = frozenset((compile_tasks.RUNTIME_IR_FILE, compile_tasks.PLAN_INPUT_FILE))

PREFETCH = (
    "autocoder.ir.models",
    "autocoder.codegen.render",
    "autocoder.llm.provider",
    "autocoder.validate.architecture",
    "autocoder.validate.lint",
    "bandit.core.config",
    "bandit.core.manager",
    "httpx",
    "autocoder_runtime.testing",
    "mypy.dmypy_util",
    "mypy.ipc",
    "autocoder.deploy.wheels",
)


@dataclass
class Outcome:
    """What an action did, as data: its failure message (None: it passed) and its output."""

    failure: str | None
    out: str
    err: str


_PLANNED: dict[tuple[str, bool], Planned] = {}


def check(directory: Path, strict: bool) -> TaskFailed | None:
    """The `check` action (compile_tasks.run_check)."""
    _PLANNED.clear()
    worker = _worker(directory)
    if worker is not None and worker.ready.is_file():
        prefetch.start(PREFETCH)
    answer = _ask(worker, check_child, (directory, strict))
    prefetch.stop()  # the import under way goes on; the next action that may need it settles
    if answer is None:
        prefetch.settle()  # the compiler is imported here next
        failed = compile_tasks.check_in_process(directory, strict)
        if failed is None and plan_handover.in_doit_worker():
            _hand_over(directory, plan(directory, strict))  # from this process's compile
        if worker is not None:
            worker.start_on_rebuild()
        return failed
    outcome, planned = answer
    if planned is not None and plan_handover.in_doit_worker():
        _hand_over(directory, planned)  # one way to `ir` with `-n`, whichever worker runs it
    elif planned is not None:
        _PLANNED[planned.key] = planned
    return replay(outcome)


def _hand_over(directory: Path, planned: Planned | None) -> None:
    """With `doit -n`, `ir` runs in the other worker: the plan goes to it as a file of this build
    (tasks/plan_handover.py)."""
    if planned is not None:
        plan_handover.write(directory, compile_tasks.build_token(), planned)


def ir(directory: Path, strict: bool) -> TaskFailed | None:
    """The `ir` action (compile_tasks.run_ir). With `check`'s plan it imports nothing, so it may
    run while the prefetch's last import finishes (prefetch.OVERLAPPING); without, it waits."""
    _, digest = compile_tasks.read_sources(directory)
    planned = _PLANNED.pop((digest, strict), None)
    _PLANNED.clear()  # a plan serves one `ir` at most, and only for its own bytes
    if planned is None and plan_handover.in_doit_worker():
        planned = plan_handover.take(directory, compile_tasks.build_token(), (digest, strict), PROJECTIONS)
    if planned is not None and _kept(planned):
        return _commit(planned)
    prefetch.settle()
    worker = _worker(directory)
    answer = _ask(worker, ir_child, (directory, strict))
    if answer is None:
        failed = compile_tasks.ir_in_process(directory, strict)
        if worker is not None:
            worker.start_on_rebuild()
        return failed
    return replay(answer)


def _worker(directory: Path) -> Worker | None:
    """The project's warm worker for this process's key; None when it is off or the output tree
    is unsafe (then the action runs in process, which says why, and nothing is started). The
    tree was walked as this process loaded the tasks, just before (refuse_unsafe_output: a
    no-op pays that walk too), and is not walked again (7,000 entries at 500 components, ~30 ms):
    no task runs before `check`, and every write is confined to the project as it happens."""
    from autocoder.validate import warm_worker

    if compile_tasks.output_problem_at_load(directory) is not None:
        return None
    rebuild = (directory / GENERATED / CHECK_REPORT).exists()
    return warm_worker.worker_for(directory / GENERATED / "src", rebuild)


def _ask(worker: Worker | None, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """`function(*args)`'s return value from a child of `worker`; None when there is no ready
    worker or the child did not return (it crashed or raised: the action then runs in
    process, where the same failure is doit's to report)."""
    if worker is None:
        return None
    frame = worker.run(function, args, LIMIT_S)
    if frame is None or frame[0] != b"R":
        return None
    return pickle.loads(frame[1])  # noqa: S301 - our own user's child (warm_worker: SO_PEERCRED, 0700)


def captured(function: Callable[..., TaskFailed | None], *args: Any) -> Outcome:
    """Run an action here with its output captured (in a worker's child, whose own output
    goes nowhere)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        failed = function(*args)
    return Outcome(None if failed is None else failed.message, out.getvalue(), err.getvalue())


def replay(outcome: Outcome) -> TaskFailed | None:
    """The action's output and result here, as if it had run in this process."""
    sys.stdout.write(outcome.out)
    sys.stderr.write(outcome.err)
    return None if outcome.failure is None else TaskFailed(outcome.failure)


def check_child(directory: Path, strict: bool) -> tuple[Outcome, Planned | None]:
    """In the worker's child: `check` as in process (the build process found the output tree
    safe just before it asked: `_worker`), then `ir`'s plan when it would write."""
    outcome = captured(
        functools.partial(compile_tasks.check_in_process, output_checked=True), directory, strict
    )
    return outcome, (plan(directory, strict) if outcome.failure is None else None)


def ir_child(directory: Path, strict: bool) -> Outcome:
    """In the worker's child: `ir` as in process."""
    return captured(compile_tasks.ir_in_process, directory, strict)


def plan(directory: Path, strict: bool) -> Planned | None:
    """What compile_tasks.ir_in_process would write and print for the blueprints as they are;
    None when it would fail or cannot be planned (then `ir` does its own work and says why)."""
    from autocoder.codegen.runtime_ir import RUNTIME_IR
    from autocoder.deploy.plan_input import PLAN_INPUT
    from autocoder.fsutil import confined
    from autocoder.ir.write import plan_ir

    key, result = compile_tasks.compile_keyed(directory, strict)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        failed = compile_tasks._fail_or_none(result, strict)
    if failed is not None or result.ir is None:
        return None
    generated = directory / GENERATED
    kept = []
    try:
        planned = plan_ir(generated, result.ir, result.slices, root=directory)
        for name, data in zip((RUNTIME_IR, PLAN_INPUT), projections(planned), strict=True):
            target = confined(directory, generated / name)
            digest = _holds(target, data)
            if digest is not None:
                kept.append((target, digest))
            else:
                planned.after.append((Path(GENERATED, name), target, data))
    except OSError:
        return None
    # read by `projections` only: not sent to the build (its components' texts, 0.9 MB at 500
    # components, repeat ir.v1.json's)
    planned.layout = None
    return Planned(key, err.getvalue(), len(result.slices), planned, kept)


def _holds(path: Path, data: bytes) -> str | None:
    """The sha256 of `path`'s bytes when they are exactly `data`, else None (then the plan
    leaves it out: a logic edit changes neither projection, 0.5 MB at 500 components the answer
    would otherwise carry). Read through ir.write.read_known: a warm worker's child inherits
    the bytes its warm-up read and only stats the file."""
    from autocoder.ir.write import read_known

    found = read_known(str(path))
    return found[1] if found is not None and found[0] == data else None


def _kept(planned: Planned) -> bool:
    """Whether each file the plan leaves as it is still holds the bytes the child found there
    (else `ir` does its own work, as without a plan: a plan never leaves a file wrong)."""
    for path, digest in planned.kept:
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                return False
        except OSError:
            return False
    return True


# A component's text in ir.v1.json -> its runtime projection's and its plan input's JSON: the
# entries the last plan used (a warm worker fills it as it warms up; its children inherit it).
_COMPONENTS: dict[str, tuple[str, str]] = {}


def projections(planned: IrPlan) -> tuple[bytes, bytes]:
    """The bytes of ir.runtime.json and ir.deploy.json for the IR `planned` encodes:
    encode_projection and encode_plan_input of json.loads(planned.ir_bytes), with the JSON of
    each component whose text is unchanged taken from _COMPONENTS (reading and encoding 500
    components' JSON was most of the plan). Each file is written key by key as json.dumps
    writes a dict with sorted keys and these separators, its components list item by item;
    tests/test_warm_compile.py compares the bytes with the plain encoders'."""
    from autocoder.codegen.runtime_ir import encode_projection, runtime_projection
    from autocoder.deploy.plan_input import encode_plan_input, plan_input

    layout = planned.layout
    if layout is None:
        whole = json.loads(planned.ir_bytes)
        return encode_projection(whole), encode_plan_input(whole)
    used: dict[str, tuple[str, str]] = {}
    for piece in layout.components:
        found = used.get(piece) or _COMPONENTS.get(piece)
        if found is None:
            one = {**layout.rest, "components": [json.loads(piece)]}
            found = (
                compact_json(runtime_projection(one)["components"][0]),
                compact_json(plan_input(one)["components"][0]),
            )
        used[piece] = found
    _COMPONENTS.clear()
    _COMPONENTS.update(used)
    empty = {**layout.rest, "components": []}
    runtime = "[" + ",".join(used[piece][0] for piece in layout.components) + "]"
    deploy = "[" + ",".join(used[piece][1] for piece in layout.components) + "]"
    return _spliced(runtime_projection(empty), runtime), _spliced(plan_input(empty), deploy)


def _spliced(data: dict[str, Any], components: str) -> bytes:
    """compact_json(data) + a newline, with `components` as the text of its components list."""
    items = (
        compact_json(key) + ":" + (components if key == "components" else compact_json(value))
        for key, value in sorted(data.items())
    )
    return ("{" + ",".join(items) + "}\n").encode()


def _commit(planned: Planned) -> TaskFailed | None:
    """`ir` from `check`'s plan: what ir_in_process writes and prints."""
    from autocoder.ir.write import commit_ir

    sys.stderr.write(planned.err)
    try:
        written = commit_ir(planned.plan)
    except OSError as exc:
        return TaskFailed(f"ir: {exc.strerror or exc}")
    print(compile_tasks.ir_summary(planned.components, len(written)))
    return None


def warm_up(project: Path) -> None:
    """In the warm worker, before it serves: import the compiler and compile `project`'s
    blueprints once (pydantic's validators, the YAML loader and the compiler's caches are then
    ready in every child). Only a cost: a failure here leaves the children more to do."""
    with contextlib.suppress(Exception):
        from autocoder.analysis.memo import PROCESS_MEMO
        from autocoder.compile import compile_sources

        raws, _ = compile_tasks.read_sources(project)
        # the memo is filled whatever AUTOCODER_COMPILE_MEMO says here: each request carries
        # its own environment, and a child whose build turned it off does not read it
        result = compile_sources(*raws, memo=PROCESS_MEMO)
        if result.ir is not None:
            from autocoder.ir.models import dump

            dump(result.ir)
            plan(project, False)  # fills _COMPONENTS (and reads, never writes, the files)
            # its result is not kept: a child freeing it (copy-on-write) would pay ~40 ms
            compile_tasks._COMPILED.clear()
