"""`autocoder explain` and `build --explain`: why a task would run, from doit's DB and the
values the run-cache records; and the `autocoder cache` commands on directory stores."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autocoder.cli import main
from autocoder.ir.models import dump as ir_dump
from autocoder.runcache import cache as runcache
from autocoder.runcache import keys, tasks
from autocoder.runcache.cache import RunCache
from autocoder.runcache.explain import explain
from autocoder.runcache.store import DirectoryStore
from autocoder.synthetic import write_synthetic


def _build(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "AUTOCODER_CACHE": "off"},
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("explain") / "project"
    project.mkdir()
    write_synthetic(project, 5)
    _build(project, "gen")
    return project


def test_a_first_build_has_no_record(tmp_path: Path) -> None:
    write_synthetic(tmp_path, 2)
    text = explain(tmp_path, ["ir"]).render()
    assert "check: no record of a previous run (no .doit.db: a first build)" in text
    assert not (tmp_path / ".doit.db").exists()


def test_nothing_to_do_says_so_and_why(built: Path) -> None:
    text = explain(built, ["ir"]).render()
    assert text.startswith("nothing to do: all 2 task(s) are up to date"), text


def test_a_blueprint_change_names_the_key_the_digests_and_the_chain(built: Path) -> None:
    arch = built / "architecture.yaml"
    before = arch.read_bytes()
    try:
        arch.write_text(before.decode().replace("value * 1 + 0.5", "value * 1 + 0.75"))
        result = explain(built, ["ir", "gen"])
    finally:
        arch.write_bytes(before)
    old, new = (hashlib.md5(b, usedforsecurity=False).hexdigest()[:8] for b in (before, arch.read_bytes()))
    assert result.blueprint[0].startswith(
        "architecture.yaml: components[trans_0].logic changed → generated/ir/trans_0.json → gen:trans_0, "
    ), result.blueprint
    assert "lint:trans_0" in result.blueprint[0] and "report" in result.blueprint[0]
    assert result.tasks["check"][0].startswith(f"architecture.yaml changed (md5 {old} → ")
    assert "generated/ir/trans_0.json will change (ir rewrites it)" in result.tasks["gen:trans_0"]
    assert "gen:filte_0" not in result.tasks  # its slice keeps its content
    # gen:runtime reads generated/ir.runtime.json, which a component's edit may or may not change
    assert "gen:runtime" not in result.tasks and "gen:runtime" in result.maybe
    del new


def test_a_tool_upgrade_is_named_with_both_versions(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    current = keys.fingerprint_fields()
    upgraded = {**current, "ruff": "99.0.0"}
    monkeypatch.setattr(keys, "fingerprint_fields", lambda: upgraded)
    monkeypatch.setattr(tasks, "fingerprint_fields", lambda: upgraded)
    fingerprint = built / "generated" / ".autocoder" / "tools.fingerprint"
    before = fingerprint.read_bytes()
    try:
        result = explain(built, ["ir"])
    finally:
        fingerprint.write_bytes(before)
    assert f"ruff {current['ruff']} → 99.0.0" in result.tasks["check"], result.tasks


def test_a_missing_target_is_named(built: Path) -> None:
    target = built / "generated" / "ir" / "ingress.json"
    before = target.read_bytes()
    target.unlink()
    try:
        result = explain(built, ["ir"])
    finally:
        target.write_bytes(before)
    assert result.tasks["ir"] == ["target missing: generated/ir/ingress.json"]


def test_build_explain_prints_the_reason_under_each_task(tmp_path: Path) -> None:
    write_synthetic(tmp_path, 2)
    ran = _build(tmp_path, "--explain", "ir")
    lines = ran.stdout.splitlines()
    assert (
        lines[lines.index(".  check") + 1]
        == "     why: no record of a previous run (no .doit.db: a first build)"
    )


def test_cache_push_pull_and_gc_between_directory_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "p"
    (project / "generated").mkdir(parents=True)
    (project / "generated" / "a.txt").write_text("a")
    local, remote = tmp_path / "local", tmp_path / "remote"
    RunCache(local=DirectoryStore(local)).save(project, "gen:a", "ab" * 32, ["generated/a.txt"], {})
    monkeypatch.setenv("AUTOCODER_CACHE_DIR", str(local))
    monkeypatch.setenv("AUTOCODER_CACHE_URL", str(remote))
    runcache._configured.cache_clear()
    assert main(["cache", "push", str(project)]) == 0
    assert "pushed 1 entries" in capsys.readouterr().out
    monkeypatch.setenv("AUTOCODER_CACHE_DIR", str(tmp_path / "other"))
    runcache._configured.cache_clear()
    assert main(["cache", "pull", str(project)]) == 0
    assert main(["cache", "status", str(project)]) == 0
    out = capsys.readouterr().out
    assert "pulled 1 entries" in out and "1 entries, 1 blobs" in out
    assert main(["cache", "gc", str(project), "--max-size", "0"]) == 0
    assert "dropped 1 entries" in capsys.readouterr().out
    assert not list((tmp_path / "other").rglob("*.json"))
    assert main(["cache", "gc", str(project), "--max-size", "lots"]) == 2
    runcache._configured.cache_clear()


def test_the_remote_url_comes_from_deployment_yaml_unless_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import compile_text, orders_deploy

    from autocoder.layout import ARCHITECTURE

    deploy = {**orders_deploy(), "build": {"cache": {"url": "s3://ci-cache/orders"}}}
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deploy))
    monkeypatch.delenv("AUTOCODER_CACHE_URL", raising=False)
    assert runcache.remote_url(tmp_path) == ("s3://ci-cache/orders", "deployment.yaml build.cache.url")
    monkeypatch.setenv("AUTOCODER_CACHE_URL", "/shared/cache")
    assert runcache.remote_url(tmp_path)[0] == "/shared/cache"
    arch = (Path(__file__).parent.parent / "examples" / "orders" / ARCHITECTURE).read_text()
    result = compile_text(arch, yaml.safe_dump(deploy))
    assert result.ok(strict=True), result.diagnostics
    assert result.ir is not None and "build" not in ir_dump(result.ir)["deployment"]


def test_a_folder_given_relative_to_the_current_directory(built: Path, monkeypatch) -> None:
    """`autocoder explain examples/orders` from the repository root: the blueprints are read
    from that folder, not from the current directory (everything would read as removed)."""
    monkeypatch.chdir(built.parent)
    text = explain(Path(built.name), ["ir"]).render()
    assert text.startswith("nothing to do"), text
