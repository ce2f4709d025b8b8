"""What hypothesis derives, made once per machine (autocoder/hypothesis_cache.py): a project that
starts from the machine's copies finds the same simplest messages and reads the same tables as
one that computed them, a build under any reporter keeps them in the project and gives them to
the machine (the constants of the modules from outside the project only), and a project's
storage outside the project is never written."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterable
from pathlib import Path

from conftest import EXAMPLE
from hypothesis.internal.constants_ast import is_local_module_file

from autocoder import hypothesis_cache

# gen:runtime's steps around its hypothesis search, in a fresh interpreter (hypothesis keeps the
# table in memory once loaded): seed, find a simplest message with text in it, publish
SAMPLE = """
import json, sys
from pathlib import Path
from autocoder import hypothesis_cache
from autocoder.codegen.strategies import simplest_message
project = Path(sys.argv[1])
hypothesis_cache.seed(project)
seeded = (hypothesis_cache._project(project, hypothesis_cache.UNICODE) / hypothesis_cache.FILE).is_file()
text = {"type": "string", "required": True, "min_length": 3}
message = simplest_message({"name": text, "n": {"type": "integer", "required": True}})
hypothesis_cache.publish(project)
print(json.dumps({"message": message, "seeded": seeded}))
"""


def sample(project: Path, machine: Path) -> dict:
    env = {
        **os.environ,
        "HYPOTHESIS_STORAGE_DIRECTORY": str(project / "generated" / ".cache" / "hypothesis"),
        "AUTOCODER_CACHE_DIR": str(machine),
    }
    run = subprocess.run(
        [sys.executable, "-c", SAMPLE, str(project)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def tables(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(root.rglob(hypothesis_cache.FILE))]


def test_a_copied_table_gives_the_samples_a_computed_one_gives(tmp_path):
    machine = tmp_path / "machine"
    first, second = tmp_path / "first", tmp_path / "second"
    computed = sample(first, machine)  # the machine's first project: computes, then publishes
    assert not computed["seeded"] and len(tables(first)) == 1
    assert tables(machine) == tables(first)
    copied = sample(second, machine)  # the next one starts from the machine's table
    assert copied["seeded"] and tables(second) == tables(first)
    assert copied["message"] == computed["message"] and len(computed["message"]["name"]) == 3


def test_a_storage_outside_the_project_is_left_alone(tmp_path, monkeypatch):
    machine = tmp_path / "machine"
    table = machine / hypothesis_cache.FILE
    table.parent.mkdir(parents=True)
    table.write_bytes(b"a table")
    (machine / "not-a-table.json.gz").write_bytes(b"something else")
    monkeypatch.setattr(hypothesis_cache, "_machine", lambda kind: machine)
    outside = tmp_path / "elsewhere"
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(outside))
    project = tmp_path / "project"
    project.mkdir()
    hypothesis_cache.seed(project)
    assert not outside.exists()
    inside = project / "generated" / ".cache" / "hypothesis"
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(inside))
    hypothesis_cache.seed(project)
    assert tables(inside) == [b"a table"]


CODEC = "codec-v2-utf-8.json.gz"  # hypothesis.internal.charmap.intervals_from_codec("utf-8")


def test_a_build_under_the_json_reporter_keeps_the_tables_in_the_project_and_shares_them(tmp_path):
    """The test tier's warm-up draws from a regular expression, which needs the table of what
    UTF-8 encodes (~3 s of CPU to compute): the first project's build computes it in its own
    storage and gives it to the machine; the next project has it from gen:runtime on, before
    any test runs. doit's JSON reporter does not set up the project as Autocoder's does: the
    build itself does. (hypothesis rewrites a table it has read, with a new gzip header: the
    tables are compared by content.)"""
    machine = tmp_path / "machine"
    env = {**os.environ, "AUTOCODER_CACHE": "off", "AUTOCODER_CACHE_DIR": str(machine)}
    env.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)

    def build(project: Path, task: str) -> Path | None:
        built = subprocess.run(
            [sys.executable, "-m", "autocoder.cli", "build", ".", "--reporter", "json", task],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert not (project / ".hypothesis").exists()
        return next((project / "generated" / ".cache" / "hypothesis").rglob(CODEC), None)

    first, second = tmp_path / "first", tmp_path / "second"
    for project in (first, second):
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
    assert build(first, "gen:runtime") is None  # nothing drew from a regular expression yet
    computed = build(first, "test:pricer")
    assert computed is not None
    (shared,) = machine.rglob(CODEC)
    assert gzip.decompress(shared.read_bytes()) == gzip.decompress(computed.read_bytes())
    constants = {p.name for p in machine.glob("hypothesis-constants/*/*")}
    assert not constants & own_modules(first)  # never a generated module's
    if is_local_module_file(hypothesis_cache.__file__):  # Autocoder installed from a checkout
        assert own_modules_of([Path(hypothesis_cache.__file__)]) <= constants
    seeded = build(second, "gen:runtime")
    assert seeded is not None and seeded.read_bytes() == shared.read_bytes()
    assert constants <= {p.name for p in (second / "generated" / ".cache" / "hypothesis").glob("constants/*")}
    used = build(second, "test:pricer")
    assert used is not None and gzip.decompress(used.read_bytes()) == gzip.decompress(computed.read_bytes())


def own_modules(project: Path) -> set[str]:
    """hypothesis's names for the constants of the project's generated modules."""
    return own_modules_of((project / "generated" / "src").rglob("*.py"))


def own_modules_of(sources: Iterable[Path]) -> set[str]:
    return {hashlib.sha1(p.read_bytes(), usedforsecurity=False).hexdigest()[:16] for p in sources}


def test_the_constants_published_are_those_of_modules_from_outside_the_project(tmp_path, monkeypatch):
    """The constants of a module loaded from inside the project stay with it; those of a
    module from elsewhere (Autocoder's own, in a checkout) go to the machine."""
    project, machine = tmp_path / "project", tmp_path / "machine"
    storage = project / "generated" / ".cache" / "hypothesis"
    inside, outside = project / "generated" / "src" / "mine.py", tmp_path / "tool" / "theirs.py"
    for module, text in ((inside, "A = 'inside'\n"), (outside, "B = 'outside'\n")):
        module.parent.mkdir(parents=True)
        module.write_text(text)
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(storage))
    monkeypatch.setattr(hypothesis_cache, "_machine", lambda kind: machine / kind.machine)
    for name, path in (("mine_s11", inside), ("theirs_s11", outside)):
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(__file__=str(path)))
    names = {p.name: next(iter(own_modules_of([p]))) for p in (inside, outside)}
    (storage / "constants").mkdir(parents=True)
    for name in names.values():
        (storage / "constants" / name).write_text("[]")
    hypothesis_cache.publish(project)
    assert [p.name for p in (machine / "hypothesis-constants").iterdir()] == [names["theirs.py"]]
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(other / "hypothesis"))
    hypothesis_cache.seed(other)
    assert [p.name for p in (other / "hypothesis" / "constants").iterdir()] == [names["theirs.py"]]
