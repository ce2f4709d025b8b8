"""What hypothesis derives once and keeps in its storage, made once per machine instead of once
per project.

Why: a build puts hypothesis's storage in the project (generated/.cache/hypothesis:
HYPOTHESIS_STORAGE_DIRECTORY, set by `autocoder build` and tasks/reporter.py), and hypothesis
keeps there what it derives the first time it needs it. Every new project derived it again:
- its Unicode tables (hypothesis.internal.charmap): the categories of all 1.1 million code
  points (0.5-1.9 s of CPU), for gen:runtime's simplest messages (codegen/strategies.py) and
  any text strategy of the tests; what UTF-8 can encode (`intervals_from_codec`: every code
  point encoded and decoded, ~3 s), for every `from_regex` strategy, which the test tier's
  warm-up has (validate/testing.py): each process that prepared test runs computed it, two at
  once in a `-n 2` build from scratch (6.4 of its ~40 CPU-seconds, py-spy);
- the constants of each local module (hypothesis.internal.constants_ast: its source parsed,
  its literals kept, a file named by a hash of the source), which hypothesis sometimes draws
  instead of random values. Local means not the standard library nor site-packages: with
  Autocoder and its runtime installed from a checkout (`pip install -e`), their ~100 modules,
  loaded in the process that prepares test runs, were parsed for each new project (0.4-0.9 s
  of CPU in each such process, py-spy).

How: before gen:runtime renders, a project gets a copy of each file the machine has and it
lacks (`seed`); after gen:runtime and after the test tier's warm-up, the machine gets a copy
of each Unicode table the project has and it lacks, and of the constants of the modules this
process loaded from outside the project (`publish`): never a generated module's, which only
its own project has. The machine's copies are kept per Python, Unicode and hypothesis
version, beside the run-cache's local store ($XDG_CACHE_HOME/autocoder, AUTOCODER_CACHE_DIR:
runcache.cache.machine_folder). Each file is what hypothesis itself derives from the same
input (this Python's Unicode database; a module's source, which names the file), and
hypothesis derives it again when a file is unreadable, so samples and tests are the same with
a copied file or a derived one (tests/test_hypothesis_cache.py). Both steps are best effort:
a copy that fails leaves hypothesis to derive the file, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

FILE = "charmap.json.gz"  # hypothesis.internal.charmap.charmap_file(): the categories


@dataclass(frozen=True)
class Kept:
    """One kind of file hypothesis keeps in its storage that no project's code decides."""

    folder: str  # under hypothesis's storage
    machine: str  # the kind of the machine's folder (runcache.cache.machine_folder)
    names: re.Pattern[str]


# hypothesis.internal.charmap: the categories, and per codec what it encodes
UNICODE = Kept(
    f"unicode_data/{unicodedata.unidata_version}",
    "hypothesis-unicode",
    re.compile(r"(charmap|codec-[A-Za-z0-9_.-]+)\.json\.gz"),
)
# hypothesis.internal.constants_ast.constants_from_module: sha1 of the source, 16 hex digits
CONSTANTS = Kept("constants", "hypothesis-constants", re.compile(r"[0-9a-f]{16}(_nolimit)?"))


def _project(directory: Path, kind: Kept) -> Path | None:
    """Where hypothesis keeps `kind` in this build, when that lies inside the project
    `directory` (symlinks resolved); None when no storage is set or it lies elsewhere."""
    from autocoder.fsutil import OutsideProjectError, confined

    storage = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
    if not storage:
        return None
    try:
        return confined(directory, Path(storage) / kind.folder, directory=True)
    except OutsideProjectError:
        return None


def _machine(kind: Kept) -> Path:
    from autocoder.runcache.cache import machine_folder
    from autocoder.tools import tool_versions

    key = f"{platform.python_version()} {unicodedata.unidata_version} {tool_versions()}"
    return machine_folder(kind.machine, key.encode())


def _names(folder: Path, kind: Kept) -> set[str]:
    """The names of `kind`'s files in `folder` (none when it cannot be read)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return set()
    return {entry.name for entry in entries if kind.names.fullmatch(entry.name) and entry.is_file()}


def _copy(source: Path, target: Path) -> None:
    from autocoder.fsutil import atomic_write

    with contextlib.suppress(OSError):
        atomic_write(target, source.read_bytes(), durable=False)


def seed(directory: Path) -> None:
    """Give the project's hypothesis storage each file of the machine's that it lacks (when
    the storage is inside the project `directory`: nothing is written elsewhere)."""
    for kind in (UNICODE, CONSTANTS):
        project = _project(directory, kind)
        if project is None:
            continue
        machine = _machine(kind)
        for name in sorted(_names(machine, kind) - _names(project, kind)):
            _copy(machine / name, project / name)


def publish(directory: Path) -> None:
    """Keep, for the machine's next projects, each Unicode table of the project's and each
    constants file of a module loaded from outside it (`_outside_modules`) that the machine
    lacks."""
    for kind, wanted in ((UNICODE, None), (CONSTANTS, _outside_modules(directory))):
        project = _project(directory, kind)
        if project is None:
            continue
        machine = _machine(kind)
        names = _names(project, kind) - _names(machine, kind)
        for name in sorted(names if wanted is None else {n for n in names if n.split("_")[0] in wanted}):
            _copy(project / name, machine / name)


def _outside_modules(directory: Path) -> set[str]:
    """How hypothesis names the constants of each module this process has loaded from source
    outside the project `directory` and outside site-packages and the standard library: the
    first 16 hex digits of the sha1 of its source (constants_ast.constants_from_module)."""
    import sysconfig

    project = str(directory.resolve()) + os.sep
    stdlib = tuple(sysconfig.get_path(name) + os.sep for name in ("stdlib", "platstdlib"))
    found = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str) or not file.endswith(".py") or "site-packages" in file:
            continue
        path = os.path.realpath(file)
        if path.startswith(project) or path.startswith(stdlib):
            continue
        with contextlib.suppress(OSError):
            found.add(hashlib.sha1(Path(path).read_bytes(), usedforsecurity=False).hexdigest()[:16])
    return found
