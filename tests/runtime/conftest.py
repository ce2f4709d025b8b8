"""Fixtures of the runtime's own tests: a fresh DATA_DIR with the API key set, the app run by
Starlette's TestClient (its lifespan starts and stops the system), and a time limit per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from autocoder_runtime.testing import time_limit
from rtkit import KEY, Peer


@pytest.fixture(autouse=True)
def _limited() -> Iterator[None]:
    with time_limit(60):
        yield


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR for the system's SQLite file and files; API_KEY set; a short drain."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("API_KEY", KEY)
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "2")
    for name in ("QUEUE_SIZE", "INBOX_LIMIT", "MAX_IN_FLIGHT", "DATABASE_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


@pytest.fixture
def caplog_all(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer().running() as p:
        yield p
