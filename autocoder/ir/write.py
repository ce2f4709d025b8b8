"""Write the IR files: ir.v1.json and one slice per component, each only when it changed."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder import __version__
from autocoder.canonical import canonical_json, content_hash
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
    (splice_components): a one-component edit encodes one component. The rest of ir.v1.json is
    taken part by part from the file the last run wrote where a part's data is unchanged
    (_encode_ir). Returns the paths that were written.
    """
    return commit_ir(plan_ir(generated, ir, slices, root=root))


@dataclass
class IrPlan:
    """What write_ir writes, encoded and checked against the files as they are, not yet written
    (plan_ir, commit_ir): the `check` task's child computes it where the compiler is imported
    and `ir` writes it without importing it (tasks/compile_tasks.py). Plain paths and bytes."""

    root: Path  # the project: every path is confined to it
    generated: Path
    slice_dir: Path  # confined
    slices: list[tuple[str, bytes]]  # (name, bytes) of the slices not vouched unchanged
    names: frozenset[str]  # every component's slice name: other slices are removed
    ir_file: Path  # confined
    ir_bytes: bytes
    index_path: Path  # confined
    index_bytes: bytes
    after: list[tuple[Path, Path, bytes]] = field(default_factory=list)  # (shown, confined, bytes)
    layout: Layout | None = None  # where the components are in ir_bytes (None: no components)


@dataclass(frozen=True)
class Layout:
    """Where ir.v1.json's components list is in its text: json.loads of the text with `[]` in
    its place, plus json.loads of each component's text, is json.loads of the whole (JSON is
    read part by part), so a reader can take unchanged components' data from a memo."""

    start: int  # character offsets of the list's text
    end: int
    components: list[str]  # each component's text, as in the file
    rest: dict[str, Any]  # the IR's JSON data but the components (what json.loads reads of the rest)


def plan_ir(generated: Path, ir: IR, slices: dict[str, Slice], *, root: Path | None = None) -> IrPlan:
    """write_ir's writes, encoded (see write_ir): OutsideProjectError when a path is not
    confined to `root`."""
    from autocoder.ir.models import dump

    root = generated.parent if root is None else root
    slice_dir = confined(root, generated / SLICE_DIR, directory=True)
    folder = str(slice_dir)
    targets = {name: _slice_file(root, generated, folder, name) for name in sorted(slices)}
    ir_file = confined(root, ir_path(generated))
    index_path = confined(root, generated / WRITTEN_INDEX)
    previous = _read_index(index_path)
    index: dict[str, list[str]] = {}
    encoded: dict[str, SliceSource] = {}
    changed = []
    for name, path in targets.items():
        fingerprint = slices[name].component.fingerprint
        if _unchanged(path, previous.get(name), fingerprint):
            index[name] = previous[name]
            encoded[name] = (previous[name][1], path)  # its bytes are read only if needed
            continue
        data = canonical_json(dump(slices[name]))
        changed.append((name, data))
        index[name] = [fingerprint, hashlib.sha256(data).hexdigest()]
        encoded[name] = (index[name][1], data)
    previous_ir = _previous_parts(ir_file, _read_ir_entry(index_path))
    data, parts, layout = _encode_ir(ir, [encoded[c.name] for c in ir.components], previous_ir)
    entry = {"sha256": hashlib.sha256(data).hexdigest(), "parts": parts}
    index_bytes = json.dumps({"version": _index_version(), "slices": index, "ir": entry}).encode()
    return IrPlan(
        root,
        generated,
        slice_dir,
        changed,
        frozenset(slices),
        ir_file,
        data,
        index_path,
        index_bytes,
        layout=layout,
    )


def commit_ir(plan: IrPlan) -> list[Path]:
    """Do what `plan` says (write_ir's order: slices, removals, ir.v1.json, its index, then
    `plan.after`), each file only when its bytes change; the paths written."""
    root = plan.root
    written = []
    for name, data in plan.slices:
        if write_if_changed(_slice_target(root, plan.generated, plan.slice_dir, name), data):
            written.append(slice_path(plan.generated, name))
    for stale in sorted(os.listdir(plan.slice_dir)):  # names: 500 Path objects sorted cost 50 ms
        if stale.endswith(".json") and stale.removesuffix(".json") not in plan.names:
            confined(root, plan.slice_dir / stale, "delete").unlink()
    if write_if_changed(plan.ir_file, plan.ir_bytes):
        written.append(ir_path(plan.generated))
    with contextlib.suppress(OSError):  # an index: failing to write it costs only time next run
        write_if_changed(plan.index_path, plan.index_bytes)
    for shown, path, data in plan.after:
        if write_if_changed(path, data):
            written.append(shown)
    return written


def _slice_file(root: Path, generated: Path, folder: str, name: str) -> str:
    """_slice_target as a string, for reading (500 Path objects cost ~10 ms)."""
    if _plain(name):
        return f"{folder}/{name}.json"
    return str(confined(root, slice_path(generated, name)))


def _slice_target(root: Path, generated: Path, slice_dir: Path, name: str) -> Path:
    """confined(root, slice_path(generated, name)) without resolving the folder once per slice:
    a plain file name in the already confined folder is what confined would return."""
    if _plain(name):
        return slice_dir / f"{name}.json"
    return confined(root, slice_path(generated, name))


def _plain(name: str) -> bool:
    """Whether `name` + ".json" is a file name in its folder: no separator, NUL or dot name."""
    return (
        bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
    )


# ir.v1.json is indented JSON with sorted keys, whose top-level keys sit on lines indented by
# two spaces; "components" is one of them, and no string can hold a raw newline.
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
    return _encode_ir(ir, [(hashlib.sha256(raw).hexdigest(), raw) for raw in slice_bytes], {})[0]


# A slice as _encode_ir takes it: the sha256 of its bytes, and its bytes or the path of the
# file read_known found holding them (the bytes are then read from memory only if needed).
SliceSource = tuple[str, bytes | str]


# A part of ir.v1.json other than its components: a top-level value, or one value of a
# top-level mapping (metadata's capacity, a schema...). name -> [sha256 of its compact JSON,
# start, end] (character offsets of its text in the file), kept in WRITTEN_INDEX.
Parts = dict[str, list[Any]]


def _encode_ir(
    ir: IR, slice_bytes: list[SliceSource], previous: dict[str, tuple[str, str]]
) -> tuple[bytes, Parts, Layout | None]:
    """encode_ir, also taking each part other than the components from `previous` (name ->
    (digest, text as the last run wrote it, _previous_parts)) when its digest is unchanged:
    json's indenting encoder is pure Python, and the bindings, capacity and schemas of 500
    components cost `ir` more than the one component an edit changed. The parts written, for
    the index. Equal compact canonical JSON means equal data, so equal indented text."""
    from autocoder.ir.models import dump

    if not ir.components:
        return canonical_json(dump(ir)), {}, None
    rest, known, groups = _rest(ir)
    pieces: list[str] = []
    parts: Parts = {}
    offset = 0

    def emit(text: str) -> None:
        nonlocal offset
        pieces.append(text)
        offset += len(text)

    def part(name: str, value: Any, depth: int) -> None:
        digest = known.get(name) or content_hash(value)
        old = previous.get(name)
        if old is not None and old[0] == digest:
            text = old[1]
        else:
            text = canonical_json(value).decode()[:-1].replace("\n", "\n" + "  " * depth)
        start = offset
        emit(text)
        parts[name] = [digest, start, offset]

    layout = None
    emit("{")
    for i, key in enumerate(sorted([*rest, "components"])):
        emit(("," if i else "") + "\n  " + _key(key) + ": ")
        value = rest.get(key)
        if key == "components":
            texts = _components_texts(ir, slice_bytes)
            start = offset
            emit("[\n    " + ",\n    ".join(texts) + "\n  ]")
            layout = Layout(start, offset, texts, rest)
        elif isinstance(value, dict) and value:
            emit("{")
            for j, sub in enumerate(sorted(value)):
                emit(("," if j else "") + "\n    " + _key(sub) + ": ")
                part(json.dumps([key, sub]), value[sub], 2)
            emit("\n  }")
        else:
            part(json.dumps([key]), value, 1)
    emit("\n}\n")
    _remember_rest(groups, parts)
    return "".join(pieces).encode(), parts, layout


# The IR's JSON but its components, in two groups of fields (metadata's warnings and capacity;
# the rest but metadata), as the last plan read it: pydantic's JSON of a group -> its data and
# its parts' digests (content_hash, by part name). A warm worker's children inherit the
# entries of its warm-up: after an edit of a component's logic, neither group changes, and the
# bindings and capacity of 500 components are neither parsed nor hashed again (~3 ms).
_REST: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
Group = tuple[str, dict[str, Any], dict[str, str]]  # pydantic's JSON, its data, digests


def _rest(ir: IR) -> tuple[dict[str, Any], dict[str, str], list[Group]]:
    """json.loads(ir.model_dump_json(by_alias=True, exclude={"components"})) (pydantic's JSON,
    from its serialiser in Rust, is the same data as dump()'s), read group by group (_REST's
    data where a group's JSON is the same text); the digests known of its parts; the groups."""
    texts = (
        ir.model_dump_json(by_alias=True, exclude={"components", "metadata"}),
        ir.metadata.model_dump_json(by_alias=True, exclude={"sources"}),
    )
    groups: list[Group] = []
    known: dict[str, str] = {}
    for text in texts:
        data, digests = _REST.get(text) or (json.loads(text), {})
        groups.append((text, data, digests))
        known.update(digests)
    sources = json.loads(ir.metadata.model_dump_json(by_alias=True, include={"sources"}))["sources"]
    rest = {**groups[0][1], "metadata": {"sources": sources, **groups[1][1]}}
    return rest, known, groups


def _remember_rest(groups: list[Group], parts: Parts) -> None:
    """Keep each group's data and its parts' digests (the group of metadata's fields holds the
    parts named ["metadata", field] but sources; the other group, those of the other keys)."""
    made: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    for index, (text, data, digests) in enumerate(groups):
        if not digests:
            for name, (digest, _, _) in parts.items():
                path = json.loads(name)
                metadata = path[0] == "metadata" and len(path) == 2 and path[1] != "sources"
                if metadata if index == 1 else path[0] != "metadata":
                    digests[name] = digest
        made[text] = (data, digests)
    _REST.clear()
    _REST.update(made)


def _key(key: str) -> str:
    return json.encoder.encode_basestring(key)  # as json writes a key with ensure_ascii=False


# (a component's fingerprint, the sha256 of its slice's bytes) -> its text at level 2 taken
# from those bytes: the entries the last plan used. A warm worker's children inherit those of
# its warm-up: for a slice read_known vouches for, neither its bytes (each on a page of its
# own, which referencing would copy from the worker's) nor their indenting are touched again.
_TEXTS: dict[tuple[str, str], str] = {}


def _components_texts(ir: IR, sources: list[SliceSource]) -> list[str]:
    """The text of each component at nesting level 2 (in the list at level 1), from its slice's
    bytes (a function of the bytes and the fingerprint: _TEXTS's for the same pair)."""
    from autocoder.ir.models import dump

    parts = []
    used: dict[tuple[str, str], str] = {}
    for component, (digest, source) in zip(ir.components, sources, strict=True):
        key = (component.fingerprint, digest)
        text = _TEXTS.get(key)
        if text is None:
            raw = source if isinstance(source, bytes) else _bytes(source, digest)
            level1 = None if raw is None else _component_text(raw, component.fingerprint)
            if level1 is None:
                parts.append(canonical_json(dump(component)).decode().rstrip("\n").replace("\n", "\n    "))
                continue
            text = level1.replace("\n", "\n  ")
        used[key] = text
        parts.append(text)
    _TEXTS.clear()
    _TEXTS.update(used)
    return parts


def _bytes(path: str, digest: str) -> bytes | None:
    """The bytes of `path` when they are those of `digest` (read_known), else None."""
    found = read_known(path)
    return found[0] if found is not None and found[1] == digest else None


def _read_ir_entry(path: Path) -> Any:
    """The last run's record of ir.v1.json (its sha256 and parts); None when unusable."""
    return _index(path)[1]


def _ir_entry(raw: bytes) -> Any:
    try:
        data = json.loads(raw)
        return data["ir"] if data["version"] == _index_version() else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


# _previous_parts' last answer, by the file's sha256 and the index's parts (a pure function of
# both): a warm worker's children inherit its warm-up's, and do not decode the 1 MB file again.
_PREVIOUS: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}


def _previous_parts(ir_file: Path, entry: Any) -> dict[str, tuple[str, str]]:
    """name -> (digest, text) of each part of ir.v1.json as the last run wrote it; empty unless
    the file's sha256 is the one recorded (nobody changed it since), and only when every part's
    text holds the data of its digest at its own depth (an index describing another file, or
    damaged, is not used at all)."""
    try:
        read = read_known(str(ir_file))
        if read is None or not isinstance(entry, dict) or read[1] != entry["sha256"]:
            return {}
        key = (read[1], json.dumps(entry["parts"], sort_keys=True))
        if key in _PREVIOUS:
            return _PREVIOUS[key]
        text = read[0].decode()
        found = {}
        for name, (digest, start, end) in entry["parts"].items():
            if not (isinstance(digest, str) and isinstance(start, int) and isinstance(end, int)):
                return {}
            piece = text[start:end]
            # an index that does not describe this file (the same data at another depth too)
            closing = "\n" + "  " * len(json.loads(name))
            if (
                _piece_hash(piece) != digest
                or "\n" in piece
                and not piece.startswith(closing, len(piece) - len(closing) - 1)
            ):
                return {}
            found[name] = (digest, piece)
        _PREVIOUS.clear()
        _PREVIOUS[key] = found
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


# A part's text in ir.v1.json -> content_hash of its data: a pure function of the text, kept
# for the texts the last plan read (a warm worker's children inherit the entries of the file
# as it was when the worker warmed up: after an edit, most parts' texts are those).
_PIECE_HASHES: dict[str, str] = {}
_PIECE_HASHES_MAX = 10_000


def _piece_hash(piece: str) -> str:
    found = _PIECE_HASHES.get(piece)
    if found is None:
        found = content_hash(json.loads(piece))
        if len(_PIECE_HASHES) >= _PIECE_HASHES_MAX:
            _PIECE_HASHES.clear()
        _PIECE_HASHES[piece] = found
    return found


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
    return _index(path)[0]


# The index as the last plan read it, by the sha256 of its bytes: its slices' entries and its
# record of ir.v1.json (read only). A warm worker's children inherit its warm-up's: the index
# of 500 slices is not parsed and checked again (twice) while its file is as it was.
_INDEX: dict[str, tuple[dict[str, list[str]], Any]] = {}


def _index(path: Path) -> tuple[dict[str, list[str]], Any]:
    read = read_known(str(path))
    if read is None:
        return {}, None
    found = _INDEX.get(read[1])
    if found is None:
        found = (_index_slices(read[0]), _ir_entry(read[0]))
        _INDEX.clear()
        _INDEX[read[1]] = found
    return found


def _index_slices(raw: bytes) -> dict[str, list[str]]:
    try:
        data = json.loads(raw)
        slices = data["slices"] if data["version"] == _index_version() else {}
        return {
            str(name): entry
            for name, entry in slices.items()
            if isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _unchanged(path: str, entry: list[str] | None, fingerprint: str) -> bool:
    """Whether `path` still holds what write_ir wrote for this slice fingerprint: then encoding
    the slice again (the costly part of the `ir` task: indented JSON is encoded in pure Python)
    would give the same bytes. The fingerprint is the hash of the slice's content; the file's
    sha256 proves nobody changed or removed it since."""
    if entry is None or entry[0] != fingerprint:
        return False
    return known_digest(path) == entry[1]


# A file's stat signature: the inode, the size, and the times a write or a rename sets (the
# change time cannot be set back by anyone: utime sets it to now).
Signature = tuple[int, int, int, int]

# What this process last read of each file read_known read: path -> (signature, bytes, sha256).
# A warm worker fills it as it warms up (plan_ir reads every slice and ir.v1.json); each child
# it forks inherits it: after a one-component edit, 500 slices are stat'ed instead of read and
# hashed (~7 ms of `check`'s child at 500 components).
_KNOWN: dict[str, tuple[Signature, bytes, str]] = {}
_KNOWN_MAX = 20_000


def known_digest(path: str) -> str | None:
    """read_known's sha256 of `path`, without referencing its bytes when they are known."""
    known = _still_known(path)
    if known is not None:
        return known[2]
    found = read_known(path)
    return None if found is None else found[1]


def read_known(path: str) -> tuple[bytes, str] | None:
    """`path`'s bytes and their sha256 (hex); None when it cannot be read. The bytes this
    process read before when the file's stat signature is the one it had then (a rewrite,
    atomic or in place, changes the inode or the times; the size too, mostly), else read."""
    known = _still_known(path)
    if known is not None:
        return known[1], known[2]
    try:
        with open(path, "rb") as handle:
            signature = _signature(os.fstat(handle.fileno()))  # of what is read, not of `path`
            data = handle.read()
    except OSError:
        return None
    digest = hashlib.sha256(data).hexdigest()
    if len(_KNOWN) >= _KNOWN_MAX:
        _KNOWN.clear()
    _KNOWN[path] = (signature, data, digest)
    return data, digest


def _still_known(path: str) -> tuple[Signature, bytes, str] | None:
    """What this process read of `path` when its stat signature is still the one it had then."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    known = _KNOWN.get(path)
    return known if known is not None and known[0] == _signature(stat) else None


def _signature(stat: os.stat_result) -> Signature:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
