"""Where run-cache entries live: a directory, or any fsspec URL (s3://bucket/prefix...).

A store holds objects by relative name (`manifests/ab/<key>.json`, `blobs/cd/<sha256>`) and
offers whole-object get and put only. Writes are atomic: a directory store writes a temp file
and renames it; an object store (S3) puts the whole object in one request, which readers see
entirely or not at all.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

LAYOUT = "v1"  # the top folder of every store: a new layout starts beside the old one
REMOTE_TIMEOUT_S = 10.0  # connect and read timeout of one remote request, by default
ENV_TIMEOUT = "AUTOCODER_CACHE_TIMEOUT_S"


def remote_timeout() -> float:
    """The remote's per-request timeout: AUTOCODER_CACHE_TIMEOUT_S when it holds a number of
    seconds in (0, 300], else REMOTE_TIMEOUT_S (a bad value warns once: the cache must never
    fail a build)."""
    text = os.environ.get(ENV_TIMEOUT, "").strip()
    if not text:
        return REMOTE_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if 0 < value <= 300:
        return value
    print(
        f"run-cache: {ENV_TIMEOUT}={text[:40]!r} is not a number of seconds in (0, 300]; "
        f"using {REMOTE_TIMEOUT_S:g}",
        file=sys.stderr,
    )
    return REMOTE_TIMEOUT_S


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int
    mtime: float


class Store(Protocol):
    url: str

    def get(self, name: str) -> bytes | None: ...
    def get_many(self, names: list[str]) -> dict[str, bytes]: ...
    def put(self, name: str, data: bytes) -> None: ...
    def exists(self, name: str) -> bool: ...
    def delete(self, name: str) -> None: ...
    def objects(self) -> Iterator[StoredObject]: ...


class DirectoryStore:
    """A store in a local (or mounted network) directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, name: str) -> Path:
        return self.root / LAYOUT / name

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def get_many(self, names: list[str]) -> dict[str, bytes]:
        """The objects that exist, by name."""
        found = {name: self.get(name) for name in names}
        return {name: data for name, data in found.items() if data is not None}

    def put(self, name: str, data: bytes) -> None:
        """Temp file in the same folder, then rename: concurrent writers of one name (two
        builds storing the same blob) each rename a complete file, and a reader never sees a
        partial one. No leftover cleanup here: another writer's temp file may be in flight."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def touch(self, name: str) -> None:
        """Mark an entry as used now: `autocoder cache gc` drops the least recently used."""
        with contextlib.suppress(OSError):
            os.utime(self._path(name))

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()

    def objects(self) -> Iterator[StoredObject]:
        top = self.root / LAYOUT
        for folder, _, files in os.walk(top):
            for file in files:
                if file.endswith(".tmp"):
                    continue
                path = Path(folder, file)
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    yield StoredObject(path.relative_to(top).as_posix(), stat.st_size, stat.st_mtime)


class FsspecStore:
    """A store at an fsspec URL. For s3:// the endpoint and credentials come from the usual
    environment variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY...);
    requests time out after remote_timeout() and are retried once, so an unreachable remote
    costs seconds, not minutes."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url
        protocol = url.split("://", 1)[0]
        options: dict[str, Any] = {"skip_instance_cache": True}
        if protocol in ("s3", "s3a"):
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            options["config_kwargs"] = {
                "connect_timeout": remote_timeout(),
                "read_timeout": remote_timeout(),
                "retries": {"max_attempts": 2},
            }
            if endpoint:
                options["endpoint_url"] = endpoint
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        if protocol in ("s3", "s3a"):
            self.fs.retries = 2  # s3fs's own retry loop on top of botocore's (default 5)
        self.root = root.rstrip("/")

    def _path(self, name: str) -> str:
        return f"{self.root}/{LAYOUT}/{name}"

    def get(self, name: str) -> bytes | None:
        try:
            data = self.fs.cat_file(self._path(name))
        except FileNotFoundError:
            return None
        return bytes(data)

    def get_many(self, names: list[str]) -> dict[str, bytes]:
        """The objects that exist, fetched concurrently (one round trip for a task's blobs)."""
        if len(names) < 2:
            one = self.get(names[0]) if names else None
            return {names[0]: one} if one is not None else {}
        paths = {self._path(name): name for name in names}
        try:
            found = self.fs.cat(list(paths), on_error="omit")
        except FileNotFoundError:
            return {}
        return {paths[path]: bytes(data) for path, data in found.items() if path in paths}

    def put(self, name: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(name), data)

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self._path(name)))

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(name))

    def objects(self) -> Iterator[StoredObject]:
        top = f"{self.root}/{LAYOUT}"
        try:
            found = self.fs.find(top, detail=True)
        except FileNotFoundError:
            return
        for path, info in sorted(found.items()):
            modified = info.get("LastModified") or info.get("mtime") or info.get("created") or 0
            mtime = modified.timestamp() if hasattr(modified, "timestamp") else float(modified or 0)
            yield StoredObject(path[len(top) + 1 :], int(info.get("size") or 0), mtime or time.time())


def open_store(url: str) -> Store:
    """A directory path (or file:// URL) is a DirectoryStore; any other URL goes to fsspec."""
    if url.startswith("file://"):
        return DirectoryStore(Path(url[len("file://") :]))
    if "://" not in url:
        return DirectoryStore(Path(url).expanduser())
    return FsspecStore(url)
