"""Write the IR files: ir.v1.json and one slice per component, each only when it changed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from autocoder.canonical import canonical_json
from autocoder.fsutil import confined, write_if_changed

if TYPE_CHECKING:  # the doit tasks import the paths below at load: no pydantic models then
    from autocoder.ir.models import IR, Slice

IR_FILE = "ir.v1.json"
SLICE_DIR = "ir"


def ir_path(generated: Path) -> Path:
    return generated / IR_FILE


def slice_path(generated: Path, component: str) -> Path:
    return generated / SLICE_DIR / f"{component}.json"


def write_ir(generated: Path, ir: IR, slices: dict[str, Slice], *, root: Path | None = None) -> list[Path]:
    """Write what changed; remove slices of components that no longer exist.

    Slices are written before ir.v1.json so that a build killed in between leaves an
    ir.v1.json that is older than its slices, which the next run rewrites.
    Every path is confined to `root` (the project directory, by default the parent of
    `generated`): OutsideProjectError, before anything is written, when one is not.
    Returns the paths that were written.
    """
    from autocoder.ir.models import dump

    root = generated.parent if root is None else root
    slice_dir = confined(root, generated / SLICE_DIR, directory=True)
    targets = {name: confined(root, slice_path(generated, name)) for name in sorted(slices)}
    ir_file = confined(root, ir_path(generated))
    written = []
    for name, path in targets.items():
        if write_if_changed(path, canonical_json(dump(slices[name]))):
            written.append(slice_path(generated, name))
    for stale in sorted(slice_dir.glob("*.json")):
        if stale.stem not in slices:
            confined(root, stale, "delete").unlink()
    if write_if_changed(ir_file, canonical_json(dump(ir))):
        written.append(ir_path(generated))
    return written
