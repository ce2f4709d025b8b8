"""Build packs: every entry a build used, in one remote object, so a second clone makes one request.

An object store answers each request in milliseconds, but a build restores thousands of small
objects (a manifest and its blobs per task) one task at a time, since a task's key is known
only once the tasks before it have written its inputs. The keys are not knowable up front; the
blueprint is. So after a build that wrote the remote, the build also writes a pack named by its
blueprint files and tool versions: every manifest and blob of the tasks it ran, restored or
found up to date. A clone with the same blueprint and tools fetches that one object at its
first local miss, verifies every blob against its sha256, and unpacks the entries into its
local cache; every task after that is a local hit. A pack is only an accelerator: a task it
does not hold is looked up in the remote as before.

A pack is bytes and JSON only: one JSON header line (the format and each object's name and
size), then the objects' bytes in that order. Names are checked against the store's two name
shapes before anything is written, so a pack cannot name a path outside the local cache.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from autocoder.layout import ARCHITECTURE, DEPLOYMENT

PACK_FORMAT = "autocoder-run-cache-pack"
PACK_VERSION = 1
MAX_HEADER_BYTES = 16 << 20
_MANIFEST = re.compile(r"manifests/([0-9a-f]{2})/(\1[0-9a-f]{62})\.json")
_BLOB = re.compile(r"blobs/([0-9a-f]{2})/(\1[0-9a-f]{62})")


class PackError(ValueError):
    """A pack that is not one: wrong format, a bad name, or sizes that do not add up."""


def pack_name(project: Path, fields: dict[str, str]) -> str:
    """`packs/<k[:2]>/<k>.pack`, k over the blueprint files' content and the tool versions:
    what a clone knows before its first task runs."""
    blueprint = []
    for name in (ARCHITECTURE, DEPLOYMENT):
        path = project / name
        if path.is_file():
            blueprint.append([name, hashlib.sha256(path.read_bytes()).hexdigest()])
    material = {"version": PACK_VERSION, "fields": fields, "blueprint": blueprint}
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"packs/{key[:2]}/{key}.pack"


def encode(objects: dict[str, bytes]) -> bytes:
    """The pack of these store objects (sorted by name: the same objects, the same bytes)."""
    names = sorted(objects)
    header = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "objects": [[name, len(objects[name])] for name in names],
    }
    return b"".join([json.dumps(header, sort_keys=True).encode(), b"\n", *(objects[n] for n in names)])


def decode(data: bytes) -> dict[str, bytes]:
    """The pack's objects by name; raises PackError when the pack is malformed. Blobs are not
    verified here (the caller checks each against its sha256 and keeps the good ones)."""
    end = data.find(b"\n", 0, MAX_HEADER_BYTES)
    if end < 0:
        raise PackError("no header line")
    try:
        header = json.loads(data[:end])
        listed = header["objects"]
        ok = (
            header["format"] == PACK_FORMAT and header["version"] == PACK_VERSION and isinstance(listed, list)
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise PackError("not a run-cache pack")
    objects: dict[str, bytes] = {}
    offset = end + 1
    for item in listed:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise PackError("malformed object list")
        name, size = item
        if not isinstance(size, int) or size < 0 or not (_MANIFEST.fullmatch(name) or _BLOB.fullmatch(name)):
            raise PackError(f"bad object {str(name)[:80]!r}")
        objects[name] = data[offset : offset + size]
        offset += size
    if offset != len(data):
        raise PackError("sizes do not add up to the pack's length")
    return objects


def manifest_key(name: str) -> str | None:
    match = _MANIFEST.fullmatch(name)
    return match.group(2) if match else None


def blob_digest(name: str) -> str | None:
    match = _BLOB.fullmatch(name)
    return match.group(2) if match else None
