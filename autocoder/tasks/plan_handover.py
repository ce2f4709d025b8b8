"""`ir`'s plan, handed from `check`'s worker to the other worker of the same `doit -n` build.

With `doit -n N`, doit gives each ready task to whichever worker asks first. When `check`
ends, the other worker has been waiting for a task since `check` began, so it gets `ir`: every
time in the builds measured. That `ir` then compiled the blueprints again, on the build's
serial path (nothing else can run before `ir`): ~0.3 s at 100 components from scratch. So
`check`, in a worker, also writes the plan it made (warm_compile.Planned) to a file of this
build, which `ir` uses under the rules it uses the plan of its own process by: for the very
blueprint bytes and strictness it reads, and only while the files the plan leaves hold the bytes
the plan found there (warm_compile._kept).

The file is data (JSON, bytes in base64): every path is rebuilt from the project directory
and confined to it when used, the only files besides the IR's are the two projections, and a
plan serves one `ir` at most, of the build that wrote it (a token minted when doit loads the
tasks, which its workers inherit): a later build never reads an earlier build's file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder.layout import GENERATED

if TYPE_CHECKING:
    from autocoder.ir.write import IrPlan

FOLDER = f"{GENERATED}/.cache/ir-plan"


@dataclass
class Planned:
    """`ir`'s work for one blueprint content, done by `check` (in the warm worker's child, or
    in this process when another one will run `ir`) but not written."""

    key: tuple[str, bool]  # the blueprints' hash and strict
    err: str  # what `ir` prints on stderr (the warnings)
    components: int
    plan: IrPlan
    # the files `plan` leaves as they are, as the child found them holding its bytes: (path,
    # sha256 of those bytes); `ir` checks them before it writes (`_kept`)
    kept: list[tuple[Path, str]] = field(default_factory=list)


def in_doit_worker() -> bool:
    """Whether this process is one of `doit -n N`'s workers (then another may run `ir`)."""
    return multiprocessing.parent_process() is not None


def write(directory: Path, token: str, planned: Planned) -> None:
    """`planned` as this build's hand-over file (earlier builds' are removed). Failing to write
    it costs only time: `ir` then does its own work."""
    from autocoder.fsutil import atomic_write, confined

    plan = planned.plan
    with contextlib.suppress(OSError, ValueError):  # ValueError: a kept file outside `directory`
        data = {
            "key": [planned.key[0], planned.key[1]],
            "err": planned.err,
            "components": planned.components,
            "slices": [[name, _text(raw)] for name, raw in plan.slices],
            "names": sorted(plan.names),
            "ir": _text(plan.ir_bytes),
            "index": _text(plan.index_bytes),
            "after": [[str(shown), _text(raw)] for shown, _, raw in plan.after],
            "kept": [[str(path.relative_to(directory)), digest] for path, digest in planned.kept],
        }
        folder = confined(directory, Path(FOLDER), directory=True)
        if folder.is_dir():
            for old in folder.iterdir():
                if old.name != f"{token}.json":
                    old.unlink()
        atomic_write(folder / f"{token}.json", json.dumps(data).encode(), durable=False)  # this build's


def take(directory: Path, token: str, key: tuple[str, bool], allowed: frozenset[str]) -> Planned | None:
    """This build's hand-over plan when it is for `key` (else None), removed as it is read.
    `allowed`: the paths, relative to the project, of the only files besides the IR's that a
    plan may write or leave (the projections)."""
    from autocoder.fsutil import OutsideProjectError, confined

    try:
        path = confined(directory, Path(FOLDER, f"{token}.json"))
        data = json.loads(path.read_bytes())
        path.unlink()
        if data["key"] != [key[0], key[1]]:
            return None
        return _planned(directory, data, key, allowed)
    except (OSError, OutsideProjectError, ValueError, KeyError, TypeError):
        return None


def _planned(
    directory: Path, data: dict[str, Any], key: tuple[str, bool], allowed: frozenset[str]
) -> Planned:
    """The Planned `data` describes, every path confined to `directory`; ValueError when a path
    is not one a plan may hold."""
    from autocoder.fsutil import confined
    from autocoder.ir.write import SLICE_DIR, WRITTEN_INDEX, IrPlan, ir_path

    generated = directory / GENERATED
    after = []
    for shown, raw in data["after"]:
        if shown not in allowed:
            raise ValueError(f"not a projection: {shown}")
        after.append((Path(shown), confined(directory, Path(shown)), _bytes(raw)))
    kept = []
    for shown, digest in data["kept"]:
        if shown not in allowed or not isinstance(digest, str):
            raise ValueError(f"not a projection: {shown}")
        kept.append((confined(directory, Path(shown)), digest))
    plan = IrPlan(
        directory,
        generated,
        confined(directory, generated / SLICE_DIR, directory=True),
        [(str(name), _bytes(raw)) for name, raw in data["slices"]],
        frozenset(str(name) for name in data["names"]),
        confined(directory, ir_path(generated)),
        _bytes(data["ir"]),
        confined(directory, generated / WRITTEN_INDEX),
        _bytes(data["index"]),
        after,
    )
    return Planned(key, str(data["err"]), int(data["components"]), plan, kept)


def _text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _bytes(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)
