"""What a build tells its user: progress, a summary that is not stale, one clear line for a
project it cannot write, and one build at a time per project."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXAMPLE


def autocoder(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture
def orders(tmp_path) -> Path:
    project = tmp_path / "orders"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
    return project


def test_progress_counts_tasks_done_out_of_the_total_and_names_the_running_one(orders):
    first = autocoder("build", ".", "gen", cwd=orders, env={"AUTOCODER_PROGRESS": "1"})
    assert first.returncode == 0, first.stdout + first.stderr
    lines = [line for line in first.stdout.splitlines() if line.startswith(".  ")]
    counts = [re.match(r"\.  \[(\d+)/(\d+)\] (\S+)$", line) for line in lines]
    assert all(counts), lines
    assert [(int(m[1]), int(m[2])) for m in counts] == [(i, 8) for i in range(1, 9)]
    assert [m[3] for m in counts][:2] == ["check", "ir"] and "gen:pricer" in {m[3] for m in counts}
    again = autocoder("build", ".", "gen:pricer", cwd=orders, env={"AUTOCODER_PROGRESS": "1"})
    assert again.stdout.splitlines() == ["-- [1/3] check", "-- [2/3] ir", "-- [3/3] gen:pricer"]
    plain = autocoder("build", ".", "gen:pricer", cwd=orders)  # a pipe, not a terminal: no counts
    assert plain.stdout.splitlines() == ["-- check", "-- ir", "-- gen:pricer"]


def doit(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=project, capture_output=True, text=True, timeout=600
    )


def error_lines(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if ": error AC" in line]


def test_diagnostics_name_the_file_as_the_user_gave_it(tmp_path):
    """`autocoder check shop` says shop/architecture.yaml:L:C, from wherever it runs; inside
    the project (plain doit) the file is architecture.yaml."""
    shop = tmp_path / "shop"
    shutil.copytree(EXAMPLE, shop, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
    assert autocoder("init", "shop", cwd=tmp_path).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    arch = shop / "architecture.yaml"
    good = arch.read_text()
    arch.write_text(good.replace("total >= 100", "totl >= 100"))
    line = good.splitlines().index('    logic: {where: "total >= 100"}') + 1
    where = re.compile(rf"^(.*)architecture\.yaml:{line}:\d+: error AC202")
    runs = {
        "shop/": autocoder("check", "shop", cwd=tmp_path),
        "shop/ ": autocoder("check", str(shop), cwd=tmp_path),  # absolute, inside the current directory
        "shop/  ": autocoder("build", "shop", "gen", cwd=tmp_path),  # the check task, inside doit
        "": autocoder("check", ".", cwd=shop),
        " ": doit(shop, "gen"),
        "../shop/": autocoder("check", "../shop", cwd=elsewhere),
    }
    for expected, run in runs.items():
        assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
        (found,) = error_lines(run) or [expected + run.stdout + run.stderr]
        match = where.match(found)
        assert match and match[1] == expected.strip(), (expected, found)
    arch.write_text(good.replace("name: orders", "name: [orders"))  # malformed: compiled up front
    broken = autocoder("build", "shop", cwd=tmp_path)
    assert broken.returncode == 2 and broken.stderr.startswith("shop/architecture.yaml:"), broken.stderr


def test_a_second_build_waits_for_the_first_naming_its_pid(orders, tmp_path):
    ready = tmp_path / "paused"
    first = subprocess.Popen(
        [sys.executable, "-m", "autocoder.cli", "build", ".", "gen"],
        cwd=orders,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AUTOCODER_PAUSE_AT": "ir", "AUTOCODER_PAUSE_READY": str(ready)},
    )
    log = tmp_path / "second.err"
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and first.poll() is None, "the first build never paused"
            time.sleep(0.01)
        with log.open("w") as err:
            second = subprocess.Popen(
                [sys.executable, "-m", "autocoder.cli", "build", ".", "gen"],
                cwd=orders,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            while "waiting for it" not in log.read_text():
                assert time.monotonic() < deadline and second.poll() is None, log.read_text()
                time.sleep(0.01)
            assert f"another build of this project is running (pid {first.pid})" in log.read_text()
            assert "generated/.lock is locked" in log.read_text()
            first.send_signal(signal.SIGKILL)  # the kernel releases its lock
            out, _ = second.communicate(timeout=300)
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 0, out + log.read_text()
    assert ".  gen:pricer" in out.splitlines() and "Traceback" not in log.read_text()


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` refuses new files: chmod for a user, the immutable flag for root (whom modes do
    not stop); skips the test where neither is possible."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0:
        undo = ["chattr", "-i", str(folder)]
    else:
        pytest.skip("cannot make a folder read-only here (root without chattr)")
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


def test_a_read_only_project_gives_one_line_naming_the_path(orders, tmp_path):
    with read_only(orders):  # nothing built yet: generated/ cannot be created
        fresh = autocoder("build", "orders", "gen", cwd=tmp_path)
    assert fresh.returncode == 3 and "Traceback" not in fresh.stderr, fresh.stderr
    assert fresh.stderr.startswith("autocoder: cannot write orders/generated: "), fresh.stderr
    assert len(fresh.stderr.splitlines()) == 1 and "fix: make the project folder writable" in fresh.stderr
    assert autocoder("build", "orders", "gen", cwd=tmp_path).returncode == 0
    arch = orders / "architecture.yaml"
    arch.write_text(arch.read_text().replace('"quantity * unit_price"', '"quantity * unit_price * 3"'))
    with read_only(orders):  # generated/ is writable, doit's database beside it is not
        built = autocoder("build", "orders", "gen", cwd=tmp_path)
    assert built.returncode == 3 and "Traceback" not in built.stderr, built.stderr
    assert built.stderr.splitlines() == [
        "autocoder: cannot write orders/.doit.db: unable to open database file; fix: make the project "
        "folder writable (and free disk space), then build again"
    ]


def test_init_writes_a_schema_modeline_that_resolves_offline(tmp_path):
    """The editor modeline names the packaged schema (a path from the blueprint's folder, or an
    absolute one when they share nothing but the root), not a URL."""
    import importlib.resources

    project = tmp_path / "nested" / "my project"
    assert autocoder("init", str(project), cwd=tmp_path).returncode == 0
    for name in ("architecture", "deployment"):
        first = (project / f"{name}.yaml").read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), first
        target = project / first.split("$schema=", 1)[1]  # relative to the file, or absolute
        packaged = importlib.resources.files("autocoder.schemas") / f"{name}.v1.schema.json"
        assert target.read_bytes() == packaged.read_bytes()


ROOT_CACHES = {".hypothesis", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


def test_tool_caches_stay_under_generated_and_clean_removes_all_the_build_made(orders):
    built = autocoder("build", ".", "gen", cwd=orders)  # generation runs ruff and hypothesis
    assert built.returncode == 0, built.stdout + built.stderr
    src = orders / "generated" / "src"  # where a user runs the tools by hand
    env = {**os.environ, "DATA_DIR": str(orders / "data")}
    for tool in (["ruff", "check", "."], ["pytest", "-q", "tests/test_pricer.py"]):
        by_hand = subprocess.run(
            [sys.executable, "-m", *tool], cwd=src, capture_output=True, text=True, env=env
        )
        assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    assert not ROOT_CACHES & {p.name for p in orders.iterdir()}
    assert not (ROOT_CACHES | {".benchmarks"}) & {p.name for p in src.iterdir()}
    assert {"hypothesis", "ruff"} <= {p.name for p in (orders / "generated" / ".cache").iterdir()}
    assert (orders / "generated" / ".outline.json").exists()
    cleaned = autocoder("build", ".", "clean", cwd=orders)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert [p.name for p in (orders / "generated").iterdir()] == [".lock"]  # a build may hold it
    assert (orders / ".doit.db").exists()
