"""hypothesis's table of Unicode categories, made once per machine instead of once per project.

Why: gen:runtime finds the simplest valid message of each schema with hypothesis
(codegen/strategies.py), and a project's first text strategy makes hypothesis build its table
of Unicode categories (hypothesis.internal.charmap: `unicodedata.category` of all 1.1 million
code points, 0.5-1.9 s of CPU, most of gen:runtime in a build from scratch), which it keeps in
the project's hypothesis storage (generated/.cache/hypothesis: tasks/reporter.py sets
HYPOTHESIS_STORAGE_DIRECTORY). Every new project built it again.

How: before gen:runtime renders, a project without the table gets a copy of the machine's
(`seed`); after it, a machine without one gets the project's (`publish`). The machine's copy is
kept per Python and hypothesis version, under the Unicode version hypothesis files it by,
beside the run-cache's local store ($XDG_CACHE_HOME/autocoder, AUTOCODER_CACHE_DIR). The table
is what hypothesis itself computes from this Python's Unicode database (hypothesis reads the
file and, when it is unreadable, computes the table again), so the samples are the same bytes
with a copied table or a computed one (tests/test_unicode_table.py). Both steps are best effort:
a copy that fails leaves hypothesis to compute the table, as before.
"""

from __future__ import annotations

import contextlib
import os
import platform
import unicodedata
from pathlib import Path

FILE = "charmap.json.gz"  # hypothesis.internal.charmap.charmap_file()


def _project_table() -> Path | None:
    """Where hypothesis reads the table in this build (None: no storage is set)."""
    storage = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
    if not storage:
        return None
    return Path(storage) / "unicode_data" / unicodedata.unidata_version / FILE


def _inside(directory: Path, table: Path | None) -> Path | None:
    """`table` when it lies inside the project `directory` (its folders' symlinks resolved)."""
    from autocoder.fsutil import OutsideProjectError, confined

    if table is None:
        return None
    try:
        return confined(directory, table)
    except OutsideProjectError:
        return None


def _machine_table() -> Path:
    from autocoder.runcache.cache import local_dir
    from autocoder.tools import tool_versions

    versions = f"python-{platform.python_version()} {tool_versions()}".replace(" ", "_").replace("==", "-")
    return local_dir() / "hypothesis-unicode" / versions / unicodedata.unidata_version / FILE


def _copy(source: Path, target: Path) -> None:
    from autocoder.fsutil import atomic_write

    with contextlib.suppress(OSError):
        atomic_write(target, source.read_bytes(), durable=False)


def seed(directory: Path) -> None:
    """Give the project's hypothesis storage the machine's table, when it has none (and the
    storage is inside the project `directory`: nothing is written elsewhere)."""
    project = _inside(directory, _project_table())
    if project is None or project.is_file():
        return
    machine = _machine_table()
    if machine.is_file():
        _copy(machine, project)


def publish(directory: Path) -> None:
    """Keep the project's table for the machine's next projects, when the machine has none."""
    project = _inside(directory, _project_table())
    if project is None or not project.is_file():
        return
    machine = _machine_table()
    if not machine.is_file():
        _copy(project, machine)
