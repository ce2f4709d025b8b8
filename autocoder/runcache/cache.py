"""Lookup, verification, restore and save of run-cache entries; where the cache is configured.

An entry is a manifest, `manifests/<k[:2]>/<key>.json` (each target's path, sha256, size and
mode), plus one blob per distinct target content, `blobs/<s[:2]>/<sha256>`, so identical files
are stored once. Everything read back is checked before a single byte is written into the
project: the manifest's shape, its target list against the task's declared targets, its HMAC
signature when a key is set, and every blob against its sha256. An entry that fails a check is
dropped with a warning and the task runs. Reads go local first, then remote; a remote that
fails (unreachable, 5xx, timeout) is switched off for the rest of the build after one warning.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from autocoder.runcache.store import DirectoryStore, Store, open_store

ENV_DISABLE = "AUTOCODER_CACHE"  # "off" (or 0/false/no) builds without the run-cache
ENV_DIR = "AUTOCODER_CACHE_DIR"
ENV_URL = "AUTOCODER_CACHE_URL"
ENV_READONLY = "AUTOCODER_CACHE_READONLY"
ENV_HMAC = "AUTOCODER_CACHE_HMAC_KEY"
FORMAT = "autocoder-run-cache"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")

T = TypeVar("T")


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no", "off")


def enabled() -> bool:
    return os.environ.get(ENV_DISABLE, "").lower() not in ("off", "0", "false", "no")


def local_dir() -> Path:
    """AUTOCODER_CACHE_DIR, else $XDG_CACHE_HOME/autocoder, else ~/.cache/autocoder."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "autocoder"


def machine_folder(kind: str, key: bytes) -> Path:
    """A folder beside the local store for what this machine computes once and every project
    then reuses (compiled templates, simplest messages, hypothesis's Unicode tables): `kind`,
    then the SHA-256 of `key`, which holds everything that decides the folder's content
    (versions, code): any change of it starts a new folder, and an old one is never read."""
    return local_dir() / kind / hashlib.sha256(key).hexdigest()


def remote_url(project: Path) -> tuple[str | None, str]:
    """The remote's URL and where it was set: AUTOCODER_CACHE_URL wins over deployment.yaml's
    `build: {cache: {url: ...}}` (a CI job can point elsewhere without editing the blueprint)."""
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL], ENV_URL
    url = deployment_cache_url(project)
    return (url, "deployment.yaml build.cache.url") if url else (None, "not set")


def deployment_cache_url(project: Path) -> str | None:
    """build.cache.url of deployment.yaml, read with a safe YAML loader; None when the file or
    the key is absent or malformed (`check` reports a malformed blueprint with its position)."""
    import yaml

    try:
        data = yaml.safe_load((project / "deployment.yaml").read_text(encoding="utf-8"))
        url = data["build"]["cache"]["url"]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
        return None
    return url if isinstance(url, str) and url else None


def warn(message: str) -> None:
    print(f"autocoder: run-cache: {message}", file=sys.stderr, flush=True)


@dataclass
class Entry:
    """A verified entry: its manifest and every target's bytes, ready to be written."""

    manifest: dict[str, Any]
    blobs: dict[str, bytes]
    origin: str  # "local" or "remote"


@dataclass
class RunCache:
    local: Store
    remote: Store | None = None
    readonly: bool = False
    hmac_key: bytes | None = None
    remote_down: bool = False
    dropped: list[str] = field(default_factory=list)
    project: Path | None = None  # where the blueprint is: names the build pack (pack.py)
    pack_tried: bool = False
    packed: set[str] = field(default_factory=set)  # keys unpacked from the remote's pack

    # ------------------------------------------------------------------ remote guard

    def _remote(self, operation: Callable[[Store], T]) -> T | None:
        """Run one remote operation; on any failure, switch the remote off with one warning."""
        if self.remote is None or self.remote_down:
            return None
        try:
            return operation(self.remote)
        except Exception as exc:  # noqa: BLE001 - any remote failure degrades to a local build
            self.remote_down = True
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            warn(f"remote {self.remote.url} unavailable ({reason}); building with the local cache only")
            return None

    # ------------------------------------------------------------------ manifests

    def sign(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.hmac_key is None:
            return manifest
        body = {k: v for k, v in manifest.items() if k != "signature"}
        return {**body, "signature": _signature(self.hmac_key, body)}

    def _check_manifest(
        self, raw: bytes, key: str, targets: list[str] | None, extra: Callable[[str], bool] | None = None
    ) -> tuple[dict[str, Any] | None, str]:
        """The manifest when it is well formed, for this key and these targets (any, when
        None: a pack's entries are checked against their task's targets at lookup; besides
        the targets, only paths `extra` accepts), and (with a key set) signed with it; else
        None and why."""
        try:
            if len(raw) > MAX_MANIFEST_BYTES:
                return None, "manifest too large"
            manifest = json.loads(raw)
            entries = manifest["targets"]
            ok = (
                manifest["format"] == FORMAT
                and manifest["version"] == MANIFEST_VERSION
                and manifest["key"] == key
                and isinstance(entries, list)
                and all(_valid_target(t) for t in entries)
                and (targets is None or _same_outputs([t["path"] for t in entries], targets, extra))
            )
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            return None, "malformed manifest"
        if self.hmac_key is not None:
            body = {k: v for k, v in manifest.items() if k != "signature"}
            signature = manifest.get("signature")
            if not isinstance(signature, str) or not hmac.compare_digest(
                signature, _signature(self.hmac_key, body)
            ):
                return None, f"refused: manifest not signed with {ENV_HMAC}"
        return manifest, ""

    # ------------------------------------------------------------------ lookup

    def lookup(
        self, task: str, key: str, targets: list[str], extra: Callable[[str], bool] | None = None
    ) -> Entry | None:
        """A verified entry from the local store, else from the remote; None on a miss.
        `extra` accepts the outputs a task stores besides its doit targets (tasks.py)."""
        entry = self._lookup_in(self.local, "local", task, key, targets, extra)
        if entry is None and self.remote is not None and self.project is not None and not self.pack_tried:
            self.pack_tried = True  # the first local miss: one request may bring every entry
            self._remote(self._unpack)
            entry = self._lookup_in(self.local, "local", task, key, targets, extra)
        if entry is not None and isinstance(self.local, DirectoryStore):
            self.local.touch(manifest_name(key))
        if entry is not None and key in self.packed:
            entry.origin = "remote"
        if entry is None and self.remote is not None:
            entry = self._remote(lambda store: self._lookup_in(store, "remote", task, key, targets, extra))
            if entry is not None:
                self._copy_to_local(entry, key)
        return entry

    def _lookup_in(
        self,
        store: Store,
        origin: str,
        task: str,
        key: str,
        targets: list[str],
        extra: Callable[[str], bool] | None,
    ) -> Entry | None:
        name = manifest_name(key)
        raw = store.get(name)
        if raw is None:
            return None
        manifest, problem = self._check_manifest(raw, key, targets, extra)
        if manifest is None:
            warn(f"{task}: {origin} entry {key[:12]} {problem}; running the task")
            if not problem.startswith("refused"):
                self._drop(store, name, task)
            return None
        blobs: dict[str, bytes] = {}
        fetched = store.get_many(sorted({blob_name(t["sha256"]) for t in manifest["targets"]}))
        for target in manifest["targets"]:
            digest = target["sha256"]
            data = blobs.get(digest, fetched.get(blob_name(digest)))
            if data is None or hashlib.sha256(data).hexdigest() != digest:
                what = "missing" if data is None else "corrupted (its sha256 does not match)"
                warn(
                    f"{task}: {origin} blob {digest[:12]} for {target['path']} is {what}; "
                    "entry dropped, running the task"
                )
                if data is not None:
                    self._drop(store, blob_name(digest), task)
                self._drop(store, name, task)
                return None
            blobs[digest] = data
        return Entry(manifest, blobs, origin)

    def _drop(self, store: Store, name: str, task: str) -> None:
        self.dropped.append(f"{task}: {name}")
        if store is self.local:
            store.delete(name)
        else:
            self._remote(lambda remote: remote.delete(name))

    def _copy_to_local(self, entry: Entry, key: str) -> None:
        for digest, data in entry.blobs.items():
            if not self.local.exists(blob_name(digest)):
                self.local.put(blob_name(digest), data)
        self.local.put(manifest_name(key), _encode(entry.manifest))

    # ------------------------------------------------------------------ build packs

    def pack_name(self) -> str | None:
        from autocoder.runcache.keys import fingerprint_fields
        from autocoder.runcache.pack import pack_name

        return pack_name(self.project, fingerprint_fields()) if self.project is not None else None

    def _unpack(self, remote: Store) -> int:
        """Fetch this blueprint's pack (if any) and put its verified entries into the local
        cache; returns how many. A bad blob costs its entries only, a bad pack all of it,
        each with one warning: the tasks then look their entries up one by one."""
        from autocoder.runcache.pack import PackError, blob_digest, decode, manifest_key

        name = self.pack_name()
        data = remote.get(name) if name else None
        if data is None:
            return 0
        try:
            objects = decode(data)
        except PackError as exc:
            warn(f"pack {name} ignored: {exc}")
            return 0
        good: dict[str, bytes] = {}
        for object_name, blob in objects.items():
            digest = blob_digest(object_name)
            if digest is not None and hashlib.sha256(blob).hexdigest() == digest:
                good[digest] = blob
            elif digest is not None:
                warn(f"pack {name}: blob {digest[:12]} is corrupted; its entries are not unpacked")
        for object_name, raw in sorted(objects.items()):
            key = manifest_key(object_name)
            manifest = self._check_manifest(raw, key, None)[0] if key else None
            if manifest is None or key is None:
                continue  # malformed or (with an HMAC key) unsigned: never stored locally
            digests = {t["sha256"] for t in manifest["targets"]}
            if not all(d in good or self.local.exists(blob_name(d)) for d in digests):
                continue
            for digest in sorted(digests):
                if digest in good and not self.local.exists(blob_name(digest)):
                    self.local.put(blob_name(digest), good[digest])
            self.local.put(object_name, raw)
            self.packed.add(key)
        return len(self.packed)

    def write_pack(self, keys: set[str]) -> int | None:
        """Put the pack of these keys' local entries on the remote (a writable one only);
        the number of entries packed, or None when nothing was written."""
        name = self.pack_name()
        if self.remote is None or self.readonly or not name:
            return None
        from autocoder.runcache.pack import encode

        objects: dict[str, bytes] = {}
        for key in sorted(keys):
            raw = self.local.get(manifest_name(key))
            manifest = self._check_manifest(raw, key, None)[0] if raw is not None else None
            if manifest is None or raw is None:
                continue
            blobs = {
                blob_name(t["sha256"]): self.local.get(blob_name(t["sha256"])) for t in manifest["targets"]
            }
            if all(data is not None for data in blobs.values()):
                objects.update({n: data for n, data in blobs.items() if data is not None})
                objects[manifest_name(key)] = raw
        entries = sum(1 for n in objects if n.startswith("manifests/"))
        if not entries:
            return None
        data = encode(objects)

        def put(remote: Store) -> bool:
            remote.put(name, data)
            return True

        return entries if self._remote(put) else None

    # ------------------------------------------------------------------ restore, save

    def restore(self, project: Path, entry: Entry) -> None:
        """Write every target (already verified) atomically, inside the project only."""
        from autocoder.fsutil import confined, write_if_changed

        for target in entry.manifest["targets"]:
            path = confined(project, Path(target["path"]))
            # no fsync: a restore lost in a power cut fails doit's md5 check and runs again
            write_if_changed(path, entry.blobs[target["sha256"]], durable=False)
            mode = target["mode"] & 0o755
            if os.stat(path).st_mode & 0o7777 != mode:  # a chmod alike would still set the ctime,
                os.chmod(path, mode)  # and a new ctime makes the digest memos hash the file again

    def save(self, project: Path, task: str, key: str, targets: list[str], fields: dict[str, str]) -> bool:
        """Store the targets after a successful run: blobs first, the manifest last, so that a
        manifest is never visible before the blobs it names. False when a target is not a
        regular file of the project (then nothing is stored)."""
        entries, blobs = [], {}
        for target in sorted(targets):
            path = project / target
            if path.is_symlink() or not path.is_file():
                return False
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            blobs[digest] = data
            mode = path.stat().st_mode & 0o755
            entries.append({"path": target, "sha256": digest, "size": len(data), "mode": mode})
        manifest = self.sign(
            {
                "format": FORMAT,
                "version": MANIFEST_VERSION,
                "key": key,
                "task": task,
                "fields": fields,
                "targets": entries,
            }
        )
        encoded = _encode(manifest)
        _put_entry(self.local, key, blobs, encoded)
        if self.remote is not None and not self.readonly:
            self._remote(lambda remote: _put_entry(remote, key, blobs, encoded))
        return True


def _put_entry(store: Store, key: str, blobs: dict[str, bytes], manifest: bytes) -> None:
    for digest, data in blobs.items():
        if not store.exists(blob_name(digest)):
            store.put(blob_name(digest), data)
    store.put(manifest_name(key), manifest)


def _same_outputs(paths: list[str], targets: list[str], extra: Callable[[str], bool] | None) -> bool:
    """Every declared target once, and nothing else but what `extra` accepts."""
    if len(set(paths)) != len(paths) or not set(targets) <= set(paths):
        return False
    return all(extra is not None and extra(p) for p in set(paths) - set(targets))


def _valid_target(target: Any) -> bool:
    return (
        isinstance(target, dict)
        and isinstance(target.get("path"), str)
        and isinstance(target.get("sha256"), str)
        and _HEX64.fullmatch(target["sha256"]) is not None
        and isinstance(target.get("mode"), int)
        and 0 <= target["mode"] <= 0o777
    )


def _signature(key: bytes, body: dict[str, Any]) -> str:
    return hmac.new(key, json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def _encode(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, indent=1).encode() + b"\n"


def manifest_name(key: str) -> str:
    return f"manifests/{key[:2]}/{key}.json"


def blob_name(digest: str) -> str:
    return f"blobs/{digest[:2]}/{digest}"


def from_environment(project: Path) -> RunCache | None:
    """The run-cache as configured (None when AUTOCODER_CACHE=off)."""
    if not enabled():
        return None
    watched = ("AUTOCODER_CACHE", "XDG_CACHE_HOME")
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(watched)))
    # per process: doit's `-n N` forks workers, and an fsspec filesystem is not fork-safe
    return _configured(project.resolve(), (*env, ("pid", str(os.getpid()))))


@functools.lru_cache(maxsize=4)
def _configured(project: Path, env: tuple[tuple[str, str], ...]) -> RunCache:
    """One RunCache per project and configuration in a process: the remote's state (switched
    off after a failure) lasts for the whole build."""
    del env  # part of the cache key only
    url, _ = remote_url(project)
    remote: Store | None = None
    if url:
        try:
            remote = open_store(url)
        except Exception as exc:  # noqa: BLE001 - a bad URL or missing fsspec backend: build locally
            warn(f"remote {url} cannot be opened ({exc}); building with the local cache only")
    secret = os.environ.get(ENV_HMAC)
    return RunCache(
        local=DirectoryStore(local_dir()),
        remote=remote,
        project=project,
        readonly=_flag(ENV_READONLY),
        hmac_key=secret.encode() if secret else None,
    )
