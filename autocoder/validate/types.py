"""The type tier: mypy over the whole generated package and its tests, with the generated
pyproject's settings (the pydantic plugin, disallow_untyped_defs, warn_unused_ignores).

One check for the system, not one per component: mypy's incremental cache (under
generated/.cache/mypy) re-checks only the modules that changed, and the shared runtime it
imports is read once. Measured at 100 synthetic components (benchmarks/typecheck_bench.py,
benchmarks/results/typecheck.json; profiles with mypy's --timing-stats and --dump-build-stats):
- From scratch, the 261 generated modules are a fifth of the 1,280 mypy reads; the rest is the
  runtime, pydantic, starlette, httpx, hypothesis, pytest and the standard library's stubs.
  Of the generated modules' own checking, 76% is the generated tests, 24% the package.
  Copying the machine-wide cache (17 MB) takes 0.05 s; the pydantic plugin's import 0.1 s.
  mypy's own worker processes (-n 2) cost 20% more CPU and were no faster on two busy cores;
  one mypy per component would pay mypy's fixed cost (0.5 s of CPU with a warm cache) a
  hundred times: 50 s against 3-4 s for the whole system.
- As a machine's second project (third-party packages and the runtime cached), 4.4-4.7 CPU-s at
  100 components (--timing-stats, --line-checking-stats): ~0.7 s finding and validating the
  ~1,000 cached modules, ~0.8 s the component modules, ~2 s their tests, ~1 s the path tests.
  The costliest construct was `@given(message=st.fixed_dictionaries({...}))`: mypy inferred the
  whole strategy inside @given's catch-all argument (~5 ms each, 124 of them); next, the same
  30-line body in every path test. So the generated tests declare each strategy once, as a
  constant annotated `st.SearchStrategy[dict[str, Any]]` (inferred against that type, which also
  checks it; a store's and an aggregator's other tests reuse it), and a path test calls the
  runtime's `testing.check_path` (checked once, in the machine-wide cache). Same flags, same
  files; mypy alone, alternating with 1d47efd's tests, 0.91x the CPU (3.59 s against 3.87, 8
  rounds, load 3-4: benchmarks/results/typecheck_mypy_ab-typecold.json); the whole task's CPU
  in typecheck_bench is within its noise (1.00x and 0.91x, typecheck-typecold*.json).
- Where it runs: with -n 2, doit dispatches this one task after nearly every other one, whether
  it is pulled in by `report` or listed before the tests (benchmarks/results/typecheck_dag*.json:
  it starts once the last tests are dispatched), so its whole run is on the critical path.
- A one-component edit spends ~0.007 s type-checking the edited module and 0.6-1 s CPU on
  mypy's fixed cost: finding and validating all 1,280 modules' cache entries and loading the
  cached trees the edited module depends on (788 of them).

So a rebuild asks the project's mypy daemon (validate/mypy_daemon.py: dmypy, fine-grained
incremental, started by the rebuild before, stopped by itself when idle), which keeps all of
that in memory; without a ready daemon, or when it is dead or answers anything but a clean
mypy result, mypy runs here. The daemon starts from the cache, with mypy's fine-grained
dependencies (kept only while AUTOCODER_MYPY_DAEMON is not off: single cold runs cost 24-27%
more CPU with them, the benchmark's alternating medians showed no difference), in ~3 s instead
of a 15 s check, and holds ~140 MB at 100 components. Measured against the in-process run,
alternating (typecheck.json, load 5-7 on 2 cores): a one-component edit 0.51 s against 2.29 s
at 100 components, 0.66 s against 3.13 s at 500 (CPU 0.37 s against 1.9-2.1 s, the daemon's
own included); from scratch and as a machine's second project, the same as before (CPU ratio
0.96 and 0.95). After a runtime change a project's first check starts from the earlier
runtime's machine-wide cache: 4.4 s of CPU instead of a cold 21-22 s.

A project's first run starts from a copy of a machine-wide cache (`shared_cache`), made by
the first project checked with the same mypy, Python, environment and runtime, or, when the
runtime changed since, the newest one of an earlier runtime: checking the runtime's
third-party packages is most of a from-scratch run. Sound because mypy validates every cached
module before using it (its source's size and hash, the options, mypy's version, its
dependencies' interfaces) and re-checks what differs, as it does with its own cache from an
earlier run. mypy runs in the generated src on relative paths, so that a module's cache entry
names the same file in every project (an error mypy replays from a cache another project
published names this project's file). AUTOCODER_MYPY_CACHE=off turns the sharing off; a path
puts the machine-wide caches there.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from stat import S_ISREG

from autocoder.layout import SOURCES
from autocoder.validate import mypy_daemon
from autocoder.validate.findings import Finding

FORMAT_FILE = "autocoder-format"  # in the cache folder: _format(), once a run wrote it so
SOURCES_FILE = "autocoder-sources.json"  # in the cache folder: what the last run here read
KEEP = 3  # machine-wide caches kept per mypy/Python/environment (the newest runtimes')

_LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<severity>error|note): "
    r"(?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)


def typecheck(src: Path, system: str, cache: Path) -> list[Finding]:
    """mypy findings (errors only) in the generated system, paths relative to `src`'s project:
    from the project's ready daemon when there is one, else in process (then, on a rebuild,
    a daemon is started for the next one)."""
    paths = [system, "tests"]
    flags = _flags(src, cache)
    daemon = mypy_daemon.daemon_for(src, cache, flags, paths)
    if daemon is not None:
        retime_same_second_edits(src, paths, cache)  # the daemon too trusts size + second
        answer = daemon.check()
        findings = None if answer is None else _findings(src, answer[0], "", answer[1])
        if findings is not None:
            _record_sources(src, paths, cache)
            return findings
        if answer is not None:  # status 1 without an error line: not an answer to trust
            daemon.stop()
    rebuild = _usable(cache)
    shared = shared_cache()
    if shared is not None and not rebuild:
        _seed(cache, shared)
    retime_same_second_edits(src, paths, cache)
    findings = _run(flags, paths, src)
    _record_sources(src, paths, cache)
    if cache.is_dir():
        (cache / FORMAT_FILE).write_text(_format() + "\n", encoding="utf-8")
    if shared is not None and not shared.exists() and cache.is_dir():
        _publish(cache, shared)
    if daemon is not None and rebuild:
        daemon.start()
    return findings


def retime_same_second_edits(src: Path, paths: list[str], cache: Path) -> None:
    """Move back by one second the mtime of every source that changed since the last check
    here (in process or by the daemon) but kept its size and its whole-second mtime. mypy's
    cache and its daemon both trust a file whose size and whole-second mtime are what they
    recorded, without reading it: a module regenerated with text of the same length within the
    second of the last check (`x + 1` -> `1 + x`) would keep its old verdict. Only the mtime
    moves; doit compares such a file by content."""
    recorded = _recorded_sources(cache)
    for name, path, stat in _sources(src, paths):
        entry = recorded.get(name)
        if entry is None:
            continue
        size, mtime_ns, digest = entry
        same_second = stat.st_mtime_ns // 10**9 == mtime_ns // 10**9
        if stat.st_size == size and same_second and stat.st_mtime_ns != mtime_ns and _sha(path) != digest:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))


def _sources(src: Path, paths: list[str]) -> list[tuple[str, str, os.stat_result]]:
    """The .py files under `paths`: (name relative to `src`, path, stat), sorted by name.
    os.walk and strings, not Path.rglob: ~1,300 files at 500 components, listed twice a check,
    cost ~0.3 s through pathlib and a fifth of it this way."""
    root = str(src)
    found = []
    for top in paths:
        for folder, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            relative = os.path.relpath(folder, root).replace(os.sep, "/")
            for file in files:
                if not file.endswith(".py"):
                    continue
                path = os.path.join(folder, file)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # a dangling symlink: rglob's is_file() left it out too
                if S_ISREG(stat.st_mode):
                    found.append((f"{relative}/{file}", path, stat))
    return sorted(found, key=lambda entry: entry[0])


def _sha(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _recorded_sources(cache: Path) -> dict[str, tuple[int, int, str]]:
    """What `_record_sources` wrote: {path: (size, mtime_ns, sha256)}; nothing when absent or
    unreadable (mypy's own checks then stand alone, as before)."""
    try:
        data = json.loads((cache / SOURCES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        path: (entry[0], entry[1], entry[2])
        for path, entry in data.items()
        if isinstance(entry, list)
        and len(entry) == 3
        and all(isinstance(v, int) for v in entry[:2])
        and isinstance(entry[2], str)
    }


def _record_sources(src: Path, paths: list[str], cache: Path) -> None:
    """Each source's size, mtime and sha256 as this check read them (see
    retime_same_second_edits); a file whose size and mtime are as recorded keeps its recorded
    hash (after a one-component edit, one file is read)."""
    from autocoder.fsutil import write_if_changed

    if not cache.is_dir():
        return
    recorded = _recorded_sources(cache)
    record = {}
    for name, path, stat in _sources(src, paths):
        known = recorded.get(name)
        same = known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns)
        record[name] = [stat.st_size, stat.st_mtime_ns, known[2] if known and same else _sha(path)]
    write_if_changed(cache / SOURCES_FILE, json.dumps(record, sort_keys=True).encode())


def _usable(cache: Path) -> bool:
    """Whether the project's cache exists and every run that wrote it kept the fine-grained
    dependencies (a daemon loading a cache with some of them missing could miss a change);
    a cache of an older format is removed."""
    marker = cache / FORMAT_FILE
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == _format():
        return True
    shutil.rmtree(cache, ignore_errors=True)
    return False


def shared_cache(fingerprint: str | None = None) -> Path | None:
    """The machine-wide mypy cache for this mypy, Python, environment and runtime (None: off):
    <root>/<mypy, Python, environment>/<runtime fingerprint>."""
    from autocoder.runcache.cache import local_dir
    from autocoder.runtime_pkg import runtime_fingerprint

    setting = os.environ.get("AUTOCODER_MYPY_CACHE", "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    root = Path(setting).expanduser() if setting else local_dir() / "mypy"
    environment = hashlib.sha256(
        "\n".join([importlib.metadata.version("mypy"), sys.version, sys.prefix, _format()]).encode()
    ).hexdigest()[:16]
    return root / environment / (fingerprint or runtime_fingerprint())[:16]


def _seed(cache: Path, shared: Path) -> None:
    """Start the project's cache from the machine-wide one of this runtime, else from the newest
    one of an earlier runtime (same mypy, Python and environment: only the runtime's modules and
    what imports them are re-checked, instead of every third-party package)."""
    sources = [shared] if shared.is_dir() else _newest_first(shared.parent)
    for source in sources[:1]:
        try:
            shutil.copytree(source, cache)
        except OSError:  # pruned while copied: a cold run, not a wrong one
            shutil.rmtree(cache, ignore_errors=True)


def _newest_first(folder: Path) -> list[Path]:
    """The published caches in `folder` (no staging copies), newest first."""
    if not folder.is_dir():
        return []
    published = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(published, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def _publish(cache: Path, shared: Path) -> None:
    """Copy a finished run's cache to `shared`, whole or not at all: copied beside it, then
    renamed into place; when another build published first, its copy stays. Caches of earlier
    runtimes beyond the KEEP newest are removed."""
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
    for old in _newest_first(shared.parent)[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def typecheck_files(src: Path, paths: list[str], cache: Path) -> list[Finding]:
    """mypy findings (errors only) in these files or folders under `src`, with the generated
    system's configuration (its pyproject.toml), in this process."""
    return _run(_flags(src, cache), paths, src)


def _format() -> str:
    """The cache's format: with mypy's fine-grained dependencies (what a daemon starts from)
    when daemons are on, plain when they are off."""
    return "fine-grained" if mypy_daemon.enabled() else "plain"


def _flags(src: Path, cache: Path) -> list[str]:
    """mypy's flags: the generated configuration, plain output, and (daemons on) the fine-grained
    dependencies in the cache (what a daemon loads instead of re-checking everything)."""
    return [
        "--config-file",
        str(src / "pyproject.toml"),
        "--cache-dir",
        str(cache),
        *(["--cache-fine-grained"] if mypy_daemon.enabled() else []),
        "--show-column-numbers",
        "--no-error-summary",
        "--no-pretty",
    ]


def _run(flags: list[str], paths: list[str], src: Path) -> list[Finding]:
    """mypy in this process, in `src` on `paths` relative to it: the cache then names a module's
    file by a path that is the same in every project, so an error mypy replays from a cache
    another project published (same module, same text) names this project's file."""
    from mypy import api

    with contextlib.chdir(src):
        stdout, stderr, status = api.run([*flags, *paths])
    findings = _findings(src, stdout, stderr, status)
    if findings is None:  # status 1 without an error line mypy's output format would show
        return [Finding(SOURCES, 1, 1, "mypy", "crash", (stderr or stdout).strip()[:2000])]
    return findings


def _findings(src: Path, stdout: str, stderr: str, status: int) -> list[Finding] | None:
    """The error lines of mypy's output as findings, by file and position (the daemon reports
    modules in another order than a run in process); None when it says it failed but no error
    line parses (an answer not to trust)."""
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
    if status == 1 and not findings:
        return None
    findings.sort(key=lambda f: (f.path, f.line, f.col, f.rule, f.message))
    if status not in (0, 1) and not findings:
        findings.append(Finding(SOURCES, 1, 1, "mypy", "crash", (stderr or stdout).strip()[:2000]))
    return findings
