"""hypothesis's Unicode table, made once per machine (codegen/unicode_table.py): a project that
starts from the machine's copy finds the same simplest messages as one that computed it, and a
project's storage outside the project is never written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
seeded = unicode_table._project_table().is_file()
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
    table = machine / "table"
    table.parent.mkdir(parents=True)
    table.write_bytes(b"a table")
    monkeypatch.setattr(unicode_table, "_machine_table", lambda: table)
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
