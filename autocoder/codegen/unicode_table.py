"""hypothesis's Unicode tables, made once per machine instead of once per project.

Why: hypothesis derives tables from this Python's Unicode database the first time a strategy
needs them (hypothesis.internal.charmap) and keeps them in its storage directory, which a build
puts in the project (generated/.cache/hypothesis: HYPOTHESIS_STORAGE_DIRECTORY, set by
`autocoder build` and tasks/reporter.py). Every new project computed them again:
- the table of Unicode categories (`unicodedata.category` of all 1.1 million code points,
  0.5-1.9 s of CPU), for gen:runtime's simplest messages (codegen/strategies.py) and any text
  strategy of the tests;
- the table of what UTF-8 can encode (`intervals_from_codec`: every code point encoded and
  decoded, ~3 s of CPU), for every `from_regex` strategy: the test tier's warm-up has one
  (validate/testing.py), so each process that prepared test runs computed it, two at once in
  a `-n 2` build from scratch (6.4 of its ~40 CPU-seconds, py-spy).

How: before gen:runtime renders, a project gets a copy of each table the machine has and it
lacks (`seed`); after gen:runtime and after the test tier's warm-up, the machine gets a copy of
each table the project has and it lacks (`publish`). The machine's copies are kept per Python,
Unicode and hypothesis version, beside the run-cache's local store ($XDG_CACHE_HOME/autocoder,
AUTOCODER_CACHE_DIR: runcache.cache.machine_folder). A table is what hypothesis itself
computes from this Python's Unicode database (hypothesis reads the file and, when it is
unreadable, computes the table again), so the samples and tests are the same with a copied
table or a computed one (tests/test_unicode_table.py). Both steps are best effort: a
copy that fails leaves hypothesis to compute the table, as before.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import unicodedata
from pathlib import Path

FILE = "charmap.json.gz"  # hypothesis.internal.charmap.charmap_file(): the categories
# the tables hypothesis.internal.charmap keeps: the categories, and per codec what it encodes
TABLE = re.compile(r"(charmap|codec-[A-Za-z0-9_.-]+)\.json\.gz")


def _project_tables() -> Path | None:
    """The folder where hypothesis keeps its tables in this build (None: no storage is set)."""
    storage = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
    if not storage:
        return None
    return Path(storage) / "unicode_data" / unicodedata.unidata_version


def _inside(directory: Path, tables: Path | None) -> Path | None:
    """The folder `tables` when it lies inside the project `directory` (symlinks resolved)."""
    from autocoder.fsutil import OutsideProjectError, confined

    if tables is None:
        return None
    try:
        return confined(directory, tables, directory=True)
    except OutsideProjectError:
        return None


def _machine_tables() -> Path:
    from autocoder.runcache.cache import machine_folder
    from autocoder.tools import tool_versions

    key = f"{platform.python_version()} {unicodedata.unidata_version} {tool_versions()}"
    return machine_folder("hypothesis-unicode", key.encode())


def _tables(folder: Path) -> set[str]:
    """The names of the tables in `folder` (none when it cannot be read)."""
    try:
        return {entry.name for entry in folder.iterdir() if TABLE.fullmatch(entry.name) and entry.is_file()}
    except OSError:
        return set()


def _copy(source: Path, target: Path) -> None:
    from autocoder.fsutil import atomic_write

    with contextlib.suppress(OSError):
        atomic_write(target, source.read_bytes(), durable=False)


def seed(directory: Path) -> None:
    """Give the project's hypothesis storage each table of the machine's that it lacks (when
    the storage is inside the project `directory`: nothing is written elsewhere)."""
    project = _inside(directory, _project_tables())
    if project is None:
        return
    machine = _machine_tables()
    for name in sorted(_tables(machine) - _tables(project)):
        _copy(machine / name, project / name)


def publish(directory: Path) -> None:
    """Keep each table of the project's that the machine lacks, for its next projects."""
    project = _inside(directory, _project_tables())
    if project is None:
        return
    machine = _machine_tables()
    for name in sorted(_tables(project) - _tables(machine)):
        _copy(project / name, machine / name)
