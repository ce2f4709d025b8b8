"""The run-cache on local directories: keys, verified restore, dropped corrupt entries, HMAC,
the remote's failure, and a real build restored into a second clone (autocoder/runcache)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autocoder.runcache.cache import RunCache, blob_name, manifest_name
from autocoder.runcache.keys import task_key
from autocoder.runcache.store import DirectoryStore, open_store

TARGETS = ["generated/out/a.txt", "generated/out/b.txt"]


def _project(root: Path, text: str = "input") -> Path:
    (root / "generated" / "out").mkdir(parents=True)
    (root / "in.txt").write_text(text)
    return root


def _make_targets(project: Path) -> None:
    (project / TARGETS[0]).write_text("alpha\n")
    (project / TARGETS[1]).write_text("alpha\n")  # the same bytes: one blob


def _cache(tmp: Path, **kw: object) -> RunCache:
    return RunCache(local=DirectoryStore(tmp / "local"), **kw)  # type: ignore[arg-type]


def test_key_is_the_same_in_two_clones_and_follows_content(tmp_path: Path) -> None:
    a, b = _project(tmp_path / "a"), _project(tmp_path / "b")
    key = task_key(a, "gen:x", ["in.txt"], TARGETS)
    assert key == task_key(b, "gen:x", ["in.txt"], TARGETS)
    (b / "in.txt").write_text("changed")
    assert task_key(b, "gen:x", ["in.txt"], TARGETS) != key
    assert task_key(a, "gen:y", ["in.txt"], TARGETS) != key


def test_bench_keys_include_the_machine_class() -> None:
    from autocoder.runcache.keys import task_fields

    assert "machine.cpu" in task_fields("bench:x") and "machine.cpus" in task_fields("bench:x")
    assert not any(k.startswith("machine.") for k in task_fields("lint:x"))
    assert {"ruff", "bandit", "pytest", "hypothesis", "provider", "autocoder"} <= set(task_fields("lint:x"))


def test_save_then_restore_into_another_clone_with_one_blob_per_content(tmp_path: Path) -> None:
    a, b = _project(tmp_path / "a"), _project(tmp_path / "b")
    _make_targets(a)
    os.chmod(a / TARGETS[1], 0o755)
    cache = _cache(tmp_path)
    key = task_key(a, "gen:x", ["in.txt"], TARGETS)
    assert cache.save(a, "gen:x", key, TARGETS, {"ruff": "1"})
    blobs = list((tmp_path / "local" / "v1" / "blobs").rglob("*"))
    assert len([p for p in blobs if p.is_file()]) == 1
    entry = cache.lookup("gen:x", task_key(b, "gen:x", ["in.txt"], TARGETS), TARGETS)
    assert entry is not None and entry.origin == "local"
    cache.restore(b, entry)
    assert (b / TARGETS[0]).read_bytes() == (a / TARGETS[0]).read_bytes()
    assert os.stat(b / TARGETS[1]).st_mode & 0o777 == 0o755


def test_restoring_files_as_they_are_leaves_them_untouched(tmp_path: Path) -> None:
    """No write and no chmod of a target already holding the entry's bytes and mode: a new
    ctime would make the digest memos (runcache/digests.py) and the report's cache read it again."""
    a = _project(tmp_path / "a")
    _make_targets(a)
    cache = _cache(tmp_path)
    key = task_key(a, "gen:x", ["in.txt"], TARGETS)
    assert cache.save(a, "gen:x", key, TARGETS, {})
    entry = cache.lookup("gen:x", key, TARGETS)
    assert entry is not None
    before = [os.stat(a / target) for target in TARGETS]
    time.sleep(0.01)
    cache.restore(a, entry)
    after = [os.stat(a / target) for target in TARGETS]
    assert [(s.st_ino, s.st_mtime_ns, s.st_ctime_ns) for s in after] == [
        (s.st_ino, s.st_mtime_ns, s.st_ctime_ns) for s in before
    ]
    os.chmod(a / TARGETS[0], 0o600)  # a mode that differs is still set
    cache.restore(a, entry)
    assert os.stat(a / TARGETS[0]).st_mode & 0o777 == before[0].st_mode & 0o777


def test_a_corrupted_blob_is_dropped_with_a_warning_and_never_restored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _project(tmp_path / "a")
    _make_targets(a)
    cache = _cache(tmp_path)
    key = task_key(a, "gen:x", ["in.txt"], TARGETS)
    cache.save(a, "gen:x", key, TARGETS, {})
    digest = hashlib.sha256(b"alpha\n").hexdigest()
    blob = tmp_path / "local" / "v1" / blob_name(digest)
    blob.write_bytes(b"tampered\n")
    assert cache.lookup("gen:x", key, TARGETS) is None
    assert "corrupted" in capsys.readouterr().err
    assert not blob.exists() and not (tmp_path / "local" / "v1" / manifest_name(key)).exists()


def test_a_manifest_naming_other_targets_is_refused(tmp_path: Path) -> None:
    a = _project(tmp_path / "a")
    _make_targets(a)
    cache = _cache(tmp_path)
    key = task_key(a, "gen:x", ["in.txt"], TARGETS)
    cache.save(a, "gen:x", key, TARGETS, {})
    path = tmp_path / "local" / "v1" / manifest_name(key)
    manifest = json.loads(path.read_text())
    manifest["targets"][0]["path"] = "../outside.txt"
    path.write_text(json.dumps(manifest))
    assert cache.lookup("gen:x", key, TARGETS) is None


def test_hmac_signed_entries_are_refused_with_another_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _project(tmp_path / "a")
    _make_targets(a)
    key = task_key(a, "gen:x", ["in.txt"], TARGETS)
    _cache(tmp_path, hmac_key=b"writer").save(a, "gen:x", key, TARGETS, {})
    assert _cache(tmp_path, hmac_key=b"writer").lookup("gen:x", key, TARGETS) is not None
    assert _cache(tmp_path, hmac_key=b"someone else").lookup("gen:x", key, TARGETS) is None
    assert "not signed with AUTOCODER_CACHE_HMAC_KEY" in capsys.readouterr().err
    _cache(tmp_path).save(a, "gen:x", key, TARGETS, {})  # unsigned now
    assert _cache(tmp_path, hmac_key=b"writer").lookup("gen:x", key, TARGETS) is None


def test_remote_hit_fills_the_local_cache_and_readonly_never_writes_the_remote(tmp_path: Path) -> None:
    a = _project(tmp_path / "a")
    _make_targets(a)
    key = task_key(a, "gen:x", ["in.txt"], TARGETS)
    remote = open_store(str(tmp_path / "remote"))
    RunCache(local=DirectoryStore(tmp_path / "ci-local"), remote=remote).save(a, "gen:x", key, TARGETS, {})
    reader = RunCache(local=DirectoryStore(tmp_path / "dev-local"), remote=remote, readonly=True)
    entry = reader.lookup("gen:x", key, TARGETS)
    assert entry is not None and entry.origin == "remote"
    assert reader.lookup("gen:x", key, TARGETS).origin == "local"  # type: ignore[union-attr]
    key2 = task_key(a, "gen:y", ["in.txt"], TARGETS)
    reader.save(a, "gen:y", key2, TARGETS, {})
    assert not remote.exists(manifest_name(key2))


def test_an_unreachable_remote_degrades_to_local_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    a = _project(tmp_path / "a")
    _make_targets(a)
    cache = RunCache(local=DirectoryStore(tmp_path / "local"), remote=open_store("s3://nowhere/cache"))
    for task in ("gen:x", "gen:y", "gen:z"):
        key = task_key(a, task, ["in.txt"], TARGETS)
        assert cache.lookup(task, key, TARGETS) is None
        assert cache.save(a, task, key, TARGETS, {})
    warnings = [line for line in capsys.readouterr().err.splitlines() if "unavailable" in line]
    assert len(warnings) == 1 and "building with the local cache only" in warnings[0]
    assert cache.lookup("gen:z", key, TARGETS) is not None  # the local cache still works


def build(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "AUTOCODER_CACHE": "on", **env},
        timeout=600,
    )


def tree(directory: Path, folder: str = "generated") -> dict[str, bytes]:
    """Every file under `folder` except derived caches (Autocoder's, and Python's bytecode,
    which a build that imported the generated package wrote when bytecode is on: a restored
    build imports nothing), doit's bookkeeping and the build lock (which names the pid that
    held it last)."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted((directory / folder).rglob("*"))
        if p.is_file()
        and ".cache" not in p.parts
        and "__pycache__" not in p.parts
        and p.name not in (".outline.json", ".lock")
    }


def test_restoring_gen_runtime_deletes_components_no_longer_in_the_blueprint(tmp_path: Path) -> None:
    import shutil

    from autocoder.compile import compile_directory
    from autocoder.ir.write import write_ir
    from autocoder.runcache.tasks import after_restore

    project = tmp_path / "orders"
    source = Path(__file__).parent.parent / "examples" / "orders"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("generated", "deployments", ".doit.db*"))
    result = compile_directory(project)
    assert result.ir is not None
    write_ir(project / "generated", result.ir, result.slices)
    names = sorted(c.name for c in result.ir.components)
    components, tests = project / "generated/src/orders/components", project / "generated/src/tests"
    components.mkdir(parents=True)
    tests.mkdir(parents=True)
    for name in [*names, "gone"]:
        (components / f"{name}.py").write_text("")
        (tests / f"test_{name}.py").write_text("")
    after_restore(project, "gen:runtime")
    assert sorted(p.name for p in components.iterdir()) == [f"{name}.py" for name in names]
    assert sorted(p.name for p in tests.iterdir()) == [f"test_{name}.py" for name in names]


def _packed_pair(tmp_path: Path, **reader: object) -> tuple[RunCache, RunCache, list[str]]:
    """A writer that stored two entries and wrote its build pack to a directory remote that
    then lost every loose object (only the pack is left), and a reader of that remote."""
    import shutil

    a, b = _project(tmp_path / "a"), _project(tmp_path / "b")
    _make_targets(a)
    remote = open_store(str(tmp_path / "remote"))
    writer = RunCache(local=DirectoryStore(tmp_path / "ci"), remote=remote, project=a)
    keys = [task_key(a, task, ["in.txt"], TARGETS) for task in ("gen:x", "gen:y")]
    for task, key in zip(("gen:x", "gen:y"), keys, strict=True):
        writer.save(a, task, key, TARGETS, {})
    assert writer.write_pack(set(keys)) == 2
    for loose in ("manifests", "blobs"):
        shutil.rmtree(tmp_path / "remote" / "v1" / loose)
    dev = RunCache(local=DirectoryStore(tmp_path / "dev"), remote=remote, project=b, **reader)  # type: ignore[arg-type]
    return writer, dev, keys


def test_a_build_pack_restores_every_entry_with_one_remote_read(tmp_path: Path) -> None:
    _, dev, keys = _packed_pair(tmp_path)
    entry = dev.lookup("gen:x", keys[0], TARGETS)
    assert entry is not None and entry.origin == "remote" and dev.packed == set(keys)
    assert (tmp_path / "dev" / "v1" / manifest_name(keys[1])).is_file()  # unpacked, not fetched
    assert dev.lookup("gen:y", keys[1], TARGETS) is not None


def test_a_corrupted_pack_blob_is_never_unpacked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from autocoder.runcache.pack import decode, encode

    _, dev, keys = _packed_pair(tmp_path)
    [pack] = (tmp_path / "remote" / "v1" / "packs").rglob("*.pack")
    objects = decode(pack.read_bytes())
    pack.write_bytes(encode({n: b"evil\n" if n.startswith("blobs/") else d for n, d in objects.items()}))
    assert dev.lookup("gen:x", keys[0], TARGETS) is None
    assert "is corrupted; its entries are not unpacked" in capsys.readouterr().err
    assert not dev.packed and not list((tmp_path / "dev").rglob("*.json"))


def test_a_pack_signed_with_another_key_unpacks_nothing(tmp_path: Path) -> None:
    _, dev, keys = _packed_pair(tmp_path, hmac_key=b"someone else")
    assert dev.lookup("gen:x", keys[0], TARGETS) is None and not dev.packed


_PACK_HEAD = b'{"format": "autocoder-run-cache-pack", "version": 1, "objects": '


@pytest.mark.parametrize(
    "header",
    [
        _PACK_HEAD + b'[["../../outside", 1]]}\nx',
        _PACK_HEAD + b'[["blobs/ab/' + b"ab" * 32 + b'", 9]]}\nx',  # sizes do not add up
        b'{"format": "something else", "version": 1, "objects": []}\n',
        b"no header line",
    ],
)
def test_a_malformed_pack_is_refused_before_anything_is_written(header: bytes) -> None:
    from autocoder.runcache.pack import PackError, decode

    with pytest.raises(PackError):
        decode(header)


def test_a_pack_round_trips_its_objects_byte_for_byte() -> None:
    from autocoder.runcache.pack import decode, encode

    objects = {blob_name("cd" * 32): b"\x00bytes\n", manifest_name("ab" * 32): b"{}"}
    assert decode(encode(objects)) == objects
    assert encode(objects) == encode(dict(reversed(objects.items())))  # deterministic


def _group_entry(stamp: dict[str, str], files: dict[str, bytes]) -> object:
    from autocoder.runcache.cache import Entry

    raw = json.dumps(stamp).encode()
    blobs = {hashlib.sha256(d).hexdigest(): d for d in [raw, *files.values()]}
    targets = [
        {"path": "generated/deploy/k8s.files.json", "sha256": hashlib.sha256(raw).hexdigest(), "mode": 0o644}
    ]
    targets += [{"path": p, "sha256": hashlib.sha256(d).hexdigest(), "mode": 0o644} for p, d in files.items()]
    return Entry({"targets": targets}, blobs, "local")


def test_a_deploy_group_entry_must_hold_exactly_what_its_stamp_lists(tmp_path: Path) -> None:
    from autocoder.runcache.tasks import consistent, extra_filter

    digest = hashlib.sha256(b"kind: Service\n").hexdigest()
    target = ["generated/deploy/k8s.files.json"]
    good = _group_entry({"k8s/a.yaml": digest}, {"deployments/k8s/a.yaml": b"kind: Service\n"})
    assert consistent("deploy:k8s", good, target)  # type: ignore[arg-type]
    extra = _group_entry(
        {"k8s/a.yaml": digest}, {"deployments/k8s/a.yaml": b"kind: Service\n", "deployments/x": b""}
    )
    assert not consistent("deploy:k8s", extra, target)  # type: ignore[arg-type]
    filt = extra_filter("deploy:k8s")
    assert filt is not None and filt("deployments/k8s/a.yaml") and not filt("generated/src/x.py")
    assert extra_filter("gen:x") is None


def test_restoring_a_deploy_group_deletes_the_files_it_no_longer_renders(tmp_path: Path) -> None:
    from autocoder.runcache.tasks import after_restore

    (tmp_path / "generated" / "deploy").mkdir(parents=True)
    (tmp_path / "deployments" / "k8s").mkdir(parents=True)
    for name in ("kept.yaml", "gone.yaml"):
        (tmp_path / "deployments" / "k8s" / name).write_text("x")
    (tmp_path / "generated" / "deploy" / "k8s.files.json").write_text(json.dumps({"k8s/kept.yaml": "0" * 64}))
    after_restore(tmp_path, "deploy:k8s", {"k8s/kept.yaml": "0" * 64, "k8s/gone.yaml": "1" * 64})
    assert sorted(p.name for p in (tmp_path / "deployments" / "k8s").iterdir()) == ["kept.yaml"]


def test_the_summary_table_marks_the_tiers_restored_from_the_cache() -> None:
    from autocoder.validate.report import summary_table

    lint = {"ok": True, "failing": 0, "suppressed": 0, "findings": []}
    test = {"ok": True, "tests": 3, "failures": 0, "errors": 0}
    results = {"a": {"lint": lint, "test": test}, "b": {"lint": lint, "test": test}}
    table = summary_table(results, {"ok": True, "findings": []}, restored={"lint:a", "test:b", "policy"})
    rows = {line.split()[0]: line for line in table.splitlines()}
    assert "pass (0 finding(s), restored)" in rows["a"] and "pass (3/3 tests)" in rows["a"]
    assert "pass (0 finding(s))" in rows["b"] and "pass (3/3 tests, restored)" in rows["b"]
    assert rows["policy:"] == "policy: pass (0 finding(s), restored)"
    assert "restored" not in summary_table(results)


def _use_s3_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point s3:// URLs at a loopback endpoint with throwaway credentials."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


class _BrokenS3:
    """A loopback HTTP server standing in for an S3 endpoint in trouble. `silent`: every request
    waits, unanswered, until the test ends (a remote hung behind a load balancer); otherwise
    every request gets a 503. It stops by itself after the test (serve_forever in a daemon
    thread, handlers released on exit)."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent

    def __enter__(self) -> str:
        import http.server
        import threading

        done = self.done = threading.Event()
        silent = self.silent

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if silent:
                    done.wait(30)
                    return
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


def _save_twice_through(cache: RunCache, project: Path) -> str:
    """Two tasks' lookups (misses) and saves through `cache`; the last key."""
    for task in ("gen:x", "gen:y"):
        key = task_key(project, task, ["in.txt"], TARGETS)
        assert cache.lookup(task, key, TARGETS) is None
        assert cache.save(project, task, key, TARGETS, {})
    return key


def _assert_one_warning_and_local_hits(cache: RunCache, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    warnings = [line for line in capsys.readouterr().err.splitlines() if "unavailable" in line]
    assert len(warnings) == 1 and "building with the local cache only" in warnings[0], warnings
    assert cache.lookup("gen:y", key, TARGETS) is not None


def test_a_remote_answering_5xx_degrades_to_local_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    a = _project(tmp_path / "a")
    _make_targets(a)
    with _BrokenS3() as endpoint:
        _use_s3_endpoint(monkeypatch, endpoint)
        cache = RunCache(
            local=DirectoryStore(tmp_path / "local"), remote=open_store("s3://down/cache"), project=a
        )
        key = _save_twice_through(cache, a)
        assert cache.write_pack({key}) is None
    _assert_one_warning_and_local_hits(cache, key, capsys)


def test_a_remote_that_times_out_degrades_to_local_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote that never answers costs the configured timeout (retried), then the build goes
    on with the local cache only, after one warning line."""
    pytest.importorskip("s3fs")
    a = _project(tmp_path / "a")
    _make_targets(a)
    with _BrokenS3(silent=True) as endpoint:
        _use_s3_endpoint(monkeypatch, endpoint)
        monkeypatch.setenv("AUTOCODER_CACHE_TIMEOUT_S", "0.5")
        cache = RunCache(
            local=DirectoryStore(tmp_path / "local"), remote=open_store("s3://hung/cache"), project=a
        )
        key = _save_twice_through(cache, a)
    _assert_one_warning_and_local_hits(cache, key, capsys)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1e9", "nan"])
def test_a_bad_remote_timeout_setting_warns_and_keeps_the_default(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from autocoder.runcache.store import REMOTE_TIMEOUT_S, remote_timeout

    monkeypatch.setenv("AUTOCODER_CACHE_TIMEOUT_S", value)
    assert remote_timeout() == REMOTE_TIMEOUT_S
    assert "AUTOCODER_CACHE_TIMEOUT_S" in capsys.readouterr().err


def test_the_docs_state_the_trust_boundary_and_how_to_narrow_it() -> None:
    text = (Path(__file__).parent.parent / "docs" / "cache.md").read_text()
    section = text.split("## The trust boundary", 1)[1].split("\n## ", 1)[0]
    assert "anyone who can write it can change what every reader" in section
    assert "AUTOCODER_CACHE_HMAC_KEY" in section and "--cache-readonly" in section


def test_a_failed_directory_write_leaves_the_old_object_whole_and_no_temp_file(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.put("blobs/ab/x", b"old")
    with pytest.raises(TypeError):
        store.put("blobs/ab/x", "not bytes")  # type: ignore[arg-type]  # fails mid-write
    assert store.get("blobs/ab/x") == b"old"
    assert sorted(p.name for p in (tmp_path / "v1" / "blobs" / "ab").iterdir()) == ["x"]
