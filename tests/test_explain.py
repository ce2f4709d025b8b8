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
from autocoder.runcache import explain as explain_mod
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


def test_a_changed_strict_setting_is_named_as_such(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compile stage's fingerprint holds the strict setting: after a build without it, a
    strict one re-runs `check`, and explain says that the setting changed, not the code."""
    fingerprint = built / "generated" / ".autocoder" / "compile.fingerprint"
    before = fingerprint.read_bytes()
    monkeypatch.setenv("AUTOCODER_STRICT", "1")
    try:
        result = explain(built, ["ir"])
    finally:
        fingerprint.write_bytes(before)
    reasons = result.tasks["check"]
    assert reasons == [
        "the strict setting changed: the last run was not strict, this one is strict "
        "(`--strict` or AUTOCODER_STRICT=1 makes blueprint warnings fail the build)"
    ], reasons
    monkeypatch.delenv("AUTOCODER_STRICT")
    assert explain(built, ["ir"]).render().startswith("nothing to do")


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


# ------------------------------------------------- the blueprint record: sha256 + a kept copy


def _check_values(project: Path, values: dict | None = None) -> dict:
    """check's values in the project's .doit.db; with `values`, replace them first."""
    from doit.dependency import Dependency, SqliteDB

    deps = Dependency(SqliteDB, str(project / ".doit.db"))
    try:
        recorded = deps.get_values("check")  # loads the task's whole record: a set keeps the rest
        if values is not None:
            deps._set("check", "_values_:", values)
            recorded = deps.get_values("check")
        return recorded
    finally:
        deps.close()


def _edited(project: Path) -> bytes:
    """Rewrite trans_0's logic in architecture.yaml; the bytes before."""
    arch = project / "architecture.yaml"
    before = arch.read_bytes()
    arch.write_text(before.decode().replace("value * 1 + 0.5", "value * 1 + 0.75"))
    return before


def test_check_records_file_digests_and_keeps_a_copy(built: Path) -> None:
    record = _check_values(built)[tasks.BLUEPRINT_RECORD]
    assert "blueprint" not in _check_values(built)  # no digest per key at build time any more
    for name in ("architecture.yaml", "deployment.yaml"):
        data = (built / name).read_bytes()
        assert record[name] == hashlib.sha256(data).hexdigest()
        assert (built / explain_mod.COPIES / record[name]).read_bytes() == data


def test_a_missing_or_corrupt_copy_says_the_file_changed_without_key_detail(built: Path) -> None:
    record = _check_values(built)[tasks.BLUEPRINT_RECORD]
    copy = built / explain_mod.COPIES / record["architecture.yaml"]
    kept = copy.read_bytes()
    before = _edited(built)
    try:
        copy.unlink()
        gone = explain(built, ["ir"])
        copy.write_bytes(kept.replace(b"value", b"VALUE"))  # not the recorded bytes any more
        corrupt = explain(built, ["ir"])
    finally:
        (built / "architecture.yaml").write_bytes(before)
        copy.write_bytes(kept)
    for result in (gone, corrupt):
        assert result.blueprint == [
            "architecture.yaml changed (no copy of the version `check` last read is left in "
            "generated/.cache/blueprint: no key detail)"
        ], result.blueprint
        assert result.tasks["check"][0].startswith("architecture.yaml changed (md5 ")
        assert "gen:runtime" in result.tasks or "gen:runtime" in result.maybe or "ir" in result.tasks
    assert explain(built, ["ir"]).render().startswith("nothing to do")


def test_an_old_record_with_a_digest_per_key_is_still_understood(built: Path) -> None:
    values = _check_values(built)
    record = values[tasks.BLUEPRINT_RECORD]
    old_format = {k: v for k, v in values.items() if k != tasks.BLUEPRINT_RECORD}
    old_format["blueprint"] = explain_mod.blueprint_digests(built)
    before = _edited(built)
    try:
        _check_values(built, old_format)
        result = explain(built, ["ir", "gen"])
        _check_values(built, {**old_format, "blueprint": "garbage"})
        no_detail = explain(built, ["ir"])
        _check_values(built, {**values, tasks.BLUEPRINT_RECORD: {**record, "architecture.yaml": "../../x"}})
        unreadable = explain(built, ["ir"])
    finally:
        (built / "architecture.yaml").write_bytes(before)
        _check_values(built, values)
    assert result.blueprint[0].startswith(
        "architecture.yaml: components[trans_0].logic changed → generated/ir/trans_0.json → gen:trans_0, "
    ), result.blueprint
    assert no_detail.blueprint == [], no_detail.blueprint
    assert any(r.startswith("architecture.yaml changed (md5 ") for r in no_detail.tasks["check"]), (
        no_detail.tasks
    )
    assert unreadable.blueprint == [
        "architecture.yaml changed (its record in .doit.db is unreadable: no key detail)"
    ]


def test_the_recorded_copy_gives_the_same_changes_as_digests_per_key(tmp_path: Path) -> None:
    """Edits to a component, a new and a removed component, a deployment key: the changes read
    from the copy are exactly those the digest per key (the former record) gave."""
    write_synthetic(tmp_path, 3)
    old = explain_mod.blueprint_digests(tmp_path)
    record = explain_mod.record_blueprint(tmp_path)
    arch = yaml.safe_load((tmp_path / "architecture.yaml").read_text())
    arch["components"][0]["outputs"] = {"out": "Scored"}
    arch["components"].append({**arch["components"][1], "name": "added_0"})
    del arch["components"][2]
    (tmp_path / "architecture.yaml").write_text(yaml.safe_dump(arch))
    deploy = yaml.safe_load((tmp_path / "deployment.yaml").read_text())
    deploy["extra_key"] = 1
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deploy))
    expected = explain_mod._blueprint_changes(old, explain_mod.blueprint_digests(tmp_path))
    assert {how for _, how in expected} == {"changed", "added", "removed"}
    assert any(key.startswith("deployment.yaml") for key, _ in expected)
    assert explain_mod.recorded_changes(tmp_path, record) == expected
    (tmp_path / "deployment.yaml").unlink()
    removed = [k for k, how in explain_mod.recorded_changes(tmp_path, record) if how == "removed"]
    assert set(removed) >= {k for k in old if k.startswith("deployment.yaml")}


def test_copies_are_written_once_and_bounded(tmp_path: Path) -> None:
    write_synthetic(tmp_path, 2)
    store = tmp_path / explain_mod.COPIES
    arch = tmp_path / "architecture.yaml"
    original = arch.read_bytes()
    first = explain_mod.record_blueprint(tmp_path)
    written = {p.name: p.stat().st_ino for p in store.iterdir()}
    assert explain_mod.record_blueprint(tmp_path) == first  # the same bytes: no new copy
    assert {p.name: p.stat().st_ino for p in store.iterdir()} == written
    for n in range(explain_mod.KEEP_COPIES * 2):
        arch.write_bytes(original + f"# edit {n}\n".encode())
        last = explain_mod.record_blueprint(tmp_path)
    names = {p.name for p in store.iterdir()}
    assert len(names) == explain_mod.KEEP_COPIES, names
    assert set(last.values()) <= names  # the last record's copies are kept
    assert all((store / d).read_bytes() == (tmp_path / f).read_bytes() for f, d in last.items())


def test_a_generated_folder_outside_the_project_gets_no_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    write_synthetic(project, 2)
    (project / "generated").symlink_to(outside)
    record = explain_mod.record_blueprint(project)
    assert (
        record["architecture.yaml"]
        == hashlib.sha256((project / "architecture.yaml").read_bytes()).hexdigest()
    )
    assert not any(outside.rglob("*"))
    assert "no copy of the blueprint" in capsys.readouterr().err
