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
    encoded again, and ir.v1.json takes each component's text from its slice's bytes
    (splice_components): a one-component edit encodes one component. Returns the paths that
    were written.
    """
    from autocoder.ir.models import dump

    root = generated.parent if root is None else root
    slice_dir = confined(root, generated / SLICE_DIR, directory=True)
    targets = {name: _slice_target(root, generated, slice_dir, name) for name in sorted(slices)}
    ir_file = confined(root, ir_path(generated))
    index_path = confined(root, generated / WRITTEN_INDEX)
    previous = _read_index(index_path)
    index: dict[str, list[str]] = {}
    encoded: dict[str, bytes] = {}
    written = []
    for name, path in targets.items():
        fingerprint = slices[name].component.fingerprint
        data = _unchanged(path, previous.get(name), fingerprint)
        if data is not None:
            index[name] = previous[name]
            encoded[name] = data
            continue
        data = canonical_json(dump(slices[name]))
        if write_if_changed(path, data):
            written.append(slice_path(generated, name))
        index[name] = [fingerprint, hashlib.sha256(data).hexdigest()]
        encoded[name] = data
    for stale in sorted(slice_dir.glob("*.json")):
        if stale.stem not in slices:
            confined(root, stale, "delete").unlink()
    if write_if_changed(ir_file, encode_ir(ir, [encoded[c.name] for c in ir.components])):
        written.append(ir_path(generated))
    with contextlib.suppress(OSError):  # an index: failing to write it costs only time next run
        write_if_changed(index_path, json.dumps({"version": _index_version(), "slices": index}).encode())
    return written


def _slice_target(root: Path, generated: Path, slice_dir: Path, name: str) -> Path:
    """confined(root, slice_path(generated, name)) without resolving the folder once per slice:
    a plain file name in the already confined folder is what confined would return."""
    if name and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name:
        return slice_dir / f"{name}.json"
    return confined(root, slice_path(generated, name))


# ir.v1.json is indented JSON with sorted keys, whose top-level keys sit on lines indented by
# two spaces; "components" is one of them, and no string can hold a raw newline.
_COMPONENTS_AT = '\n  "components": []'
_SLICE_HEAD = '{\n  "component": {'  # a slice's first key ("component" sorts first)
_LEVEL1_END = "\n  }"


def encode_ir(ir: IR, slice_bytes: list[bytes]) -> bytes:
    """canonical_json(dump(ir)), with each component's text taken from its slice's bytes
    (`slice_bytes`, in ir.components' order) instead of encoded again.

    The IR's components are the slices' components (build_ir shares the models), and the
    encoder's output for a value nested deeper differs only by more spaces after every newline
    (no string holds a raw newline). A slice whose bytes do not hold its component (a file the
    index vouches for but someone rewrote) has its component encoded afresh.
    tests/test_ir.py proves the bytes equal the plain encoding."""
    from autocoder.ir.models import dump

    if not ir.components:
        return canonical_json(dump(ir))
    rest = ir.model_dump(mode="json", by_alias=True, exclude={"components"})
    rest["components"] = []
    text = canonical_json(rest).decode()
    at = text.index(_COMPONENTS_AT) + len(_COMPONENTS_AT) - 2
    parts = []
    for component, raw in zip(ir.components, slice_bytes, strict=True):
        level1 = _component_text(raw, component.fingerprint)
        if level1 is not None:
            parts.append(level1.replace("\n", "\n  "))
        else:
            parts.append(canonical_json(dump(component)).decode().rstrip("\n").replace("\n", "\n    "))
    listed = "[\n    " + ",\n    ".join(parts) + "\n  ]"
    return (text[:at] + listed + text[at + 2 :]).encode()


def _component_text(raw: bytes, fingerprint: str) -> str | None:
    """The slice's "component" value as the encoder wrote it at nesting level 1, or None when
    `raw` does not start with it or it is not the component of this fingerprint."""
    try:
        text = raw.decode()
        if not text.startswith(_SLICE_HEAD):
            return None
        end = text.index(_LEVEL1_END, len(_SLICE_HEAD)) + len(_LEVEL1_END)
    except (UnicodeDecodeError, ValueError):
        return None
    level1 = text[len(_SLICE_HEAD) - 1 : end]
    # the fingerprint is one of the component's own keys (at level 2 of the slice)
    return level1 if f'\n    "fingerprint": "{fingerprint}",' in level1 else None


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


def _unchanged(path: Path, entry: list[str] | None, fingerprint: str) -> bytes | None:
    """The bytes of `path` when it still holds what write_ir wrote for this slice fingerprint
    (else None): then encoding the slice again (the costly part of the `ir` task: indented JSON
    is encoded in pure Python) would give the same bytes. The fingerprint is the hash of the
    slice's content; the file's sha256 proves nobody changed or removed it since."""
    if entry is None or entry[0] != fingerprint:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == entry[1] else None
