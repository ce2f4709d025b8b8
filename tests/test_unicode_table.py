"""hypothesis's Unicode tables, made once per machine (codegen/unicode_table.py): a project that
starts from the machine's copies finds the same simplest messages and draws the same tables as
one that computed them, a build under any reporter keeps them in the project and gives them to
the machine, and a project's storage outside the project is never written."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE

from autocoder.codegen import unicode_table

# gen:runtime's steps around its hypothesis search, in a fresh interpreter (hypothesis keeps the
# table in memory once loaded): seed, find a simplest message with text in it, publish
SAMPLE = """
import json, sys
from pathlib import Path
from autocoder.codegen import unicode_table
from autocoder.codegen.strategies import simplest_message
project = Path(sys.argv[1])
unicode_table.seed(project)
seeded = (unicode_table._project_tables() / unicode_table.FILE).is_file()
text = {"type": "string", "required": True, "min_length": 3}
message = simplest_message({"name": text, "n": {"type": "integer", "required": True}})
unicode_table.publish(project)
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
    return [p.read_bytes() for p in sorted(root.rglob(unicode_table.FILE))]


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
    table = machine / unicode_table.FILE
    table.parent.mkdir(parents=True)
    table.write_bytes(b"a table")
    (machine / "not-a-table.json.gz").write_bytes(b"something else")
    monkeypatch.setattr(unicode_table, "_machine_tables", lambda: machine)
    outside = tmp_path / "elsewhere"
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(outside))
    project = tmp_path / "project"
    project.mkdir()
    unicode_table.seed(project)
    assert not outside.exists()
    inside = project / "generated" / ".cache" / "hypothesis"
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(inside))
    unicode_table.seed(project)
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
    seeded = build(second, "gen:runtime")
    assert seeded is not None and seeded.read_bytes() == shared.read_bytes()
    used = build(second, "test:pricer")
    assert used is not None and gzip.decompress(used.read_bytes()) == gzip.decompress(computed.read_bytes())
