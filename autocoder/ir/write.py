"""Write the IR files: ir.v1.json and one slice per component, each only when it changed."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from autocoder import __version__
from autocoder.canonical import canonical_json
from autocoder.fsutil import confined, write_if_changed

if TYPE_CHECKING:  # the doit tasks import the paths below at load: no pydantic models then
    from autocoder.ir.models import IR, Slice

IR_FILE = "ir.v1.json"
SLICE_DIR = "ir"
# What write_ir wrote last: per slice, its fingerprint and the sha256 of the file's bytes.
WRITTEN_INDEX = ".cache/ir-written.json"


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
    A slice whose fingerprint and file are as the last run left them (WRITTEN_INDEX) is not
    encoded again. Returns the paths that were written.
    """
    from autocoder.ir.models import dump

    root = generated.parent if root is None else root
    slice_dir = confined(root, generated / SLICE_DIR, directory=True)
    targets = {name: confined(root, slice_path(generated, name)) for name in sorted(slices)}
    ir_file = confined(root, ir_path(generated))
    index_path = confined(root, generated / WRITTEN_INDEX)
    previous = _read_index(index_path)
    index: dict[str, list[str]] = {}
    written = []
    for name, path in targets.items():
        fingerprint = slices[name].component.fingerprint
        if _unchanged(path, previous.get(name), fingerprint):
            index[name] = previous[name]
            continue
        data = canonical_json(dump(slices[name]))
        if write_if_changed(path, data):
            written.append(slice_path(generated, name))
        index[name] = [fingerprint, hashlib.sha256(data).hexdigest()]
    for stale in sorted(slice_dir.glob("*.json")):
        if stale.stem not in slices:
            confined(root, stale, "delete").unlink()
    if write_if_changed(ir_file, canonical_json(dump(ir))):
        written.append(ir_path(generated))
    with contextlib.suppress(OSError):  # an index: failing to write it costs only time next run
        write_if_changed(index_path, json.dumps({"version": _index_version(), "slices": index}).encode())
    return written


@functools.cache
def _index_version() -> str:
    """Autocoder's version and its canonical encoder's code: an index is trusted only by the
    encoder that wrote it."""
    import autocoder.canonical

    code = Path(autocoder.canonical.__file__).read_bytes()
    return f"{__version__}+{hashlib.sha256(code).hexdigest()[:16]}"


def _read_index(path: Path) -> dict[str, list[str]]:
    """The last run's index; empty when missing, unreadable or from another Autocoder version
    (whose canonical bytes for the same fingerprint might differ)."""
    try:
        data = json.loads(path.read_bytes())
        slices = data["slices"] if data["version"] == _index_version() else {}
        return {
            str(name): entry
            for name, entry in slices.items()
            if isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _unchanged(path: Path, entry: list[str] | None, fingerprint: str) -> bool:
    """Whether `path` still holds the bytes write_ir wrote for this slice fingerprint: then
    encoding the slice again (the costly part of the `ir` task: indented JSON is encoded in
    pure Python) would give the same bytes. The fingerprint is the hash of the slice's
    content; the file's sha256 proves nobody changed or removed it since."""
    if entry is None or entry[0] != fingerprint:
        return False
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == entry[1]
    except OSError:
        return False
