"""Write the IR files: ir.v1.json and one slice per component, each only when it changed."""

from __future__ import annotations

from pathlib import Path

from autocoder.canonical import canonical_json
from autocoder.fsutil import write_if_changed

IR_FILE = "ir.v1.json"
SLICE_DIR = "ir"


def ir_path(generated: Path) -> Path:
    return generated / IR_FILE


def slice_path(generated: Path, component: str) -> Path:
    return generated / SLICE_DIR / f"{component}.json"


def write_ir(generated: Path, ir: dict, slices: dict[str, dict]) -> list[Path]:
    """Write what changed; remove slices of components that no longer exist.

    Slices are written before ir.v1.json so that a build killed in between leaves an
    ir.v1.json that is older than its slices, which the next run rewrites.
    Returns the paths that were written.
    """
    written = []
    for name, data in sorted(slices.items()):
        path = slice_path(generated, name)
        if write_if_changed(path, canonical_json(data)):
            written.append(path)
    slice_dir = generated / SLICE_DIR
    for stale in sorted(slice_dir.glob("*.json")):
        if stale.stem not in slices:
            stale.unlink()
    if write_if_changed(ir_path(generated), canonical_json(ir)):
        written.append(ir_path(generated))
    return written
