"""The type tier: mypy over the whole generated package and its tests, in this process.

One run for the system, not one per component: mypy's incremental cache (under
generated/.cache/mypy) re-checks only the modules that changed, and the shared runtime it
imports is read once.

A project's first run starts from a copy of a machine-wide cache (`shared_cache`), made by
the first project checked with the same mypy, Python, environment and runtime: checking the
runtime and its third-party packages (pydantic, starlette, httpx...) is most of a from-scratch
run's minute. Sound because mypy validates every cached module before using it (its source's
size and hash, the options, mypy's version, its dependencies' interfaces) and re-checks what
differs, as it does with its own cache from an earlier run. AUTOCODER_MYPY_CACHE=off turns
the sharing off; a path puts the machine-wide caches there.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from autocoder.layout import SOURCES
from autocoder.validate.findings import Finding

_LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<severity>error|note): "
    r"(?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)


def typecheck(src: Path, system: str, cache: Path) -> list[Finding]:
    """mypy findings (errors only) in the generated system, paths relative to `src`'s project."""
    shared = shared_cache()
    if shared is not None and not cache.exists() and shared.is_dir():
        shutil.copytree(shared, cache)
    findings = typecheck_files(src, [system, "tests"], cache)
    if shared is not None and not shared.exists() and cache.is_dir():
        _publish(cache, shared)
    return findings


def shared_cache() -> Path | None:
    """The machine-wide mypy cache for this mypy, Python, environment and runtime (None: off)."""
    from autocoder.runcache.cache import local_dir
    from autocoder.runtime_pkg import runtime_fingerprint

    setting = os.environ.get("AUTOCODER_MYPY_CACHE", "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    root = Path(setting).expanduser() if setting else local_dir() / "mypy"
    key = hashlib.sha256(
        "\n".join(
            [importlib.metadata.version("mypy"), sys.version, sys.prefix, runtime_fingerprint()]
        ).encode()
    ).hexdigest()[:16]
    return root / key


def _publish(cache: Path, shared: Path) -> None:
    """Copy a finished run's cache to `shared`, whole or not at all: copied beside it, then
    renamed into place; when another build published first, its copy stays."""
    try:
        shared.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=shared.parent))
    except OSError:
        return  # the cache is an optimisation: no room or no permission costs only speed
    try:
        shutil.copytree(cache, staging / "cache")
        os.rename(staging / "cache", shared)
    except OSError:
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def typecheck_files(src: Path, paths: list[str], cache: Path) -> list[Finding]:
    """mypy findings (errors only) in these files or folders under `src`, with the generated
    system's configuration (its pyproject.toml)."""
    from mypy import api

    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(src / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            "--show-column-numbers",
            "--no-error-summary",
            "--no-pretty",
            *(str(src / path) for path in paths),
        ]
    )
    findings = []
    for line in stdout.splitlines():
        match = _LINE.match(line)
        if match is None or match["severity"] != "error":
            continue
        path = Path(match["path"])
        relative = path.relative_to(src) if path.is_absolute() and path.is_relative_to(src) else path
        findings.append(
            Finding(
                f"{SOURCES}/{relative.as_posix()}",
                int(match["line"]),
                int(match["col"] or 1),
                "mypy",
                match["code"] or "error",
                match["message"],
            )
        )
    if status not in (0, 1) and not findings:
        findings.append(Finding(SOURCES, 1, 1, "mypy", "crash", (stderr or stdout).strip()[:2000]))
    return findings
