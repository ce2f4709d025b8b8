"""`autocoder cache status|push|pull|gc` and `autocoder explain`, registered by cli.py."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from autocoder.runcache import cache as runcache
from autocoder.runcache.store import Store, StoredObject

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def add_commands(sub: Any, dir_arg: Any) -> None:
    """Add the `cache` and `explain` commands to the CLI's subparsers."""
    cache = sub.add_parser(
        "cache",
        help="the run-cache: status, push, pull, gc",
        description="The run-cache stores every task's targets by the hash of its inputs, so a "
        "second clone restores instead of rebuilding. Local: AUTOCODER_CACHE_DIR or "
        "$XDG_CACHE_HOME/autocoder. Remote: AUTOCODER_CACHE_URL or deployment.yaml's "
        "build.cache.url (a directory or an fsspec URL such as s3://bucket/prefix).",
    )
    actions = cache.add_subparsers(title="actions", metavar="ACTION")
    status = actions.add_parser("status", help="where the caches are, their entries and size")
    push = actions.add_parser("push", help="copy local entries the remote does not have")
    pull = actions.add_parser("pull", help="copy remote entries the local cache does not have (verified)")
    gc = actions.add_parser("gc", help="drop the oldest local entries down to --max-size, then unused blobs")
    gc.add_argument("--max-size", default=None, help="e.g. 500M or 2G (default: only unused blobs)")
    for parser, run in ((status, cmd_status), (push, cmd_push), (pull, cmd_pull), (gc, cmd_gc)):
        dir_arg(parser)
        parser.set_defaults(run=run)
    cache.set_defaults(run=lambda args: (cache.print_help(), 2)[1])

    explain = sub.add_parser(
        "explain",
        help="why the next build would run each task",
        description="For each task the next `autocoder build DIR [TASK...]` would run, the reason: "
        "a blueprint key or file dependency that changed (old → new digest), a tool version "
        "that changed, no record of a previous run, a missing target, or a dependency that "
        "will run first. Reads .doit.db; writes nothing.",
    )
    dir_arg(explain)
    explain.add_argument("tasks", nargs="*", metavar="TASK", help="tasks or task groups (default: all)")
    explain.set_defaults(run=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from autocoder.runcache.explain import explain

    directory: Path = args.dir
    if not (directory / "architecture.yaml").is_file():
        print(
            f"autocoder explain: {directory} has no architecture.yaml; fix: pass the project folder",
            file=sys.stderr,
        )
        return 2
    print(explain(directory, list(args.tasks)).render())
    return 0


def _stores(directory: Path) -> tuple[runcache.RunCache, str]:
    cache = runcache._configured(directory.resolve(), ())
    return cache, runcache.remote_url(directory.resolve())[1]


def _summary(objects: list[StoredObject]) -> str:
    manifests = sum(1 for o in objects if o.name.startswith("manifests/"))
    blobs = sum(1 for o in objects if o.name.startswith("blobs/"))
    return f"{manifests} entries, {blobs} blobs, {_human(sum(o.size for o in objects))}"


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def cmd_status(args: argparse.Namespace) -> int:
    cache, source = _stores(args.dir)
    state = "on" if runcache.enabled() else f"off ({runcache.ENV_DISABLE}=off)"
    print(f"run-cache: {state}")
    print(f"local:  {cache.local.url}: {_summary(list(cache.local.objects()))}")
    if cache.remote is None:
        print("remote: none (set AUTOCODER_CACHE_URL or build.cache.url in deployment.yaml)")
    else:
        listed = cache._remote(lambda remote: list(remote.objects()))
        shown = _summary(listed) if listed is not None else "unavailable"
        mode = "read-only" if cache.readonly else "read-write"
        print(f"remote: {cache.remote.url} (from {source}, {mode}): {shown}")
    print(f"signing: {'HMAC key set, unsigned entries refused' if cache.hmac_key else 'no HMAC key'}")
    return 0


def _copy(source: Store, target: Store, verify: bool) -> tuple[int, int]:
    """Copy every complete entry of `source` missing from `target`: blobs (verified against
    their sha256 when `verify`), then the manifest. Returns (entries copied, skipped)."""
    copied = skipped = 0
    for obj in list(source.objects()):
        if not obj.name.startswith("manifests/") or target.exists(obj.name):
            continue
        raw = source.get(obj.name)
        try:
            manifest = json.loads(raw or b"")
            digests = {t["sha256"] for t in manifest["targets"]}
        except (ValueError, KeyError, TypeError):
            skipped += 1
            continue
        blobs = {}
        for digest in digests:
            name = runcache.blob_name(digest)
            if target.exists(name):
                continue
            data = source.get(name)
            if data is None or (verify and hashlib.sha256(data).hexdigest() != digest):
                break
            blobs[name] = data
        else:
            for name, data in blobs.items():
                target.put(name, data)
            target.put(obj.name, raw or b"")
            copied += 1
            continue
        skipped += 1
    return copied, skipped


def cmd_push(args: argparse.Namespace) -> int:
    cache, _ = _stores(args.dir)
    if cache.remote is None:
        print("autocoder cache push: no remote; fix: set AUTOCODER_CACHE_URL", file=sys.stderr)
        return 2
    if cache.readonly:
        print(f"autocoder cache push: the remote is read-only ({runcache.ENV_READONLY})", file=sys.stderr)
        return 2
    remote = cache.remote
    result = cache._remote(lambda _: _copy(cache.local, remote, verify=True))
    if result is None:
        return 1
    print(f"pushed {result[0]} entries to {remote.url} ({result[1]} incomplete or corrupt, skipped)")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    cache, _ = _stores(args.dir)
    if cache.remote is None:
        print("autocoder cache pull: no remote; fix: set AUTOCODER_CACHE_URL", file=sys.stderr)
        return 2
    remote = cache.remote
    result = cache._remote(lambda _: _copy(remote, cache.local, verify=True))
    if result is None:
        return 1
    print(f"pulled {result[0]} entries from {remote.url} ({result[1]} incomplete or corrupt, skipped)")
    return 0


def parse_size(text: str) -> int | None:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        return None
    power = " kmgt".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1024**power)


def cmd_gc(args: argparse.Namespace) -> int:
    """Least recently used first: a local hit refreshes its manifest's mtime."""
    cache, _ = _stores(args.dir)
    limit = parse_size(args.max_size) if args.max_size is not None else None
    if args.max_size is not None and limit is None:
        print(
            f"autocoder cache gc: --max-size {args.max_size!r} is not a size; fix: e.g. 500M or 2G",
            file=sys.stderr,
        )
        return 2
    store = cache.local
    objects = list(store.objects())
    total = sum(o.size for o in objects)
    manifests = sorted((o for o in objects if o.name.startswith("manifests/")), key=lambda o: o.mtime)
    dropped = 0
    while limit is not None and total > limit and manifests:
        oldest = manifests.pop(0)
        store.delete(oldest.name)
        total -= oldest.size
        dropped += 1
    used = set()
    for manifest in manifests:
        try:
            used |= {t["sha256"] for t in json.loads(store.get(manifest.name) or b"")["targets"]}
        except (ValueError, KeyError, TypeError):
            store.delete(manifest.name)
    freed = 0
    for obj in objects:
        if obj.name.startswith("blobs/") and obj.name.rsplit("/", 1)[1] not in used:
            store.delete(obj.name)
            freed += obj.size
    left = _summary(list(store.objects()))
    print(f"gc: dropped {dropped} entries and {_human(freed)} of unused blobs; {store.url} now holds {left}")
    return 0
