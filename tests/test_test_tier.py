"""The test tier (validate/testing.py) runs generated tests in this process: what it sets up
for them, and that it puts the process back as it found it."""

from __future__ import annotations

import os
from pathlib import Path

from autocoder.validate.testing import run_pytest

PROBE = """
import os
import sqlite3

from autocoder_runtime.database import Dialect


def test_throwaway_databases_skip_fsync(tmp_path):
    assert os.environ["SQLITE_SYNCHRONOUS"] == "NORMAL"
    connection = Dialect(str(tmp_path / "probe.db")).connect()
    (level,) = connection.execute("PRAGMA synchronous").fetchone()
    connection.close()
    assert level == 1  # NORMAL (FULL is 2)
    assert os.environ["DATA_DIR"]
"""


def test_generated_tests_run_with_throwaway_databases_and_the_environment_is_restored(
    tmp_path: Path, monkeypatch
):
    monkeypatch.delenv("SQLITE_SYNCHRONOUS", raising=False)
    src = tmp_path / "src"
    (src / "tests").mkdir(parents=True)
    (src / "tests" / "test_probe.py").write_text(PROBE)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = run_pytest(src, "tests/test_probe.py", tmp_path / "junit.xml", scratch)
    assert result.ok, result.output
    assert result.tests == 1
    assert "SQLITE_SYNCHRONOUS" not in os.environ
