"""What a 202 is worth, with real processes: a generated system (tests/fixtures/durability)
with a backlog is killed (SIGKILL) or stopped (SIGTERM, 1 s drain deadline) part-way, started
again on the same data, and every accepted message must end up stored or dead-lettered. On
SQLite and on a real PostgreSQL server; and two replicas of one system sharing a PostgreSQL
inbox store every accepted message, both doing part of the work.

benchmarks/durability_bench.py repeats the crash scenarios (tests/live.py) five times each.
"""

from __future__ import annotations

import signal
import time
import uuid

import live
import pytest
from autocoder_runtime.testing import Server, time_limit

COUNT = 80  # 4 s of work for the rate-limited transformer, posted in about 1 s
STOP_AFTER_S = 0.5


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The fixture system generated for SQLite and for PostgreSQL (side by side)."""
    return live.build_variants(tmp_path_factory.mktemp("durability"), ["sqlite", "postgres"])


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path) -> live.Target:
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    return live.Target(request.param, tmp_path / "data", dsn)


def test_sigkill_mid_backlog_loses_nothing(sources, target, tmp_path):
    with time_limit(90):
        outcome = live.interrupted(sources[target.backend], target, "kill", COUNT, tmp_path, STOP_AFTER_S)
    assert outcome["accepted"] == COUNT, outcome
    assert outcome["exit_code"] == -signal.SIGKILL
    assert 0 < outcome["inbox_after_stop"], outcome  # it really died with work to do
    assert outcome["stored_before_stop"] < COUNT, outcome
    assert outcome["lost"] == 0 and outcome["unexpected"] == 0, outcome
    assert outcome["stored"] + outcome["dead_lettered"] == COUNT, outcome
    assert outcome["final_undrained"] == 0, outcome


def test_sigterm_reports_what_it_leaves_and_loses_nothing(sources, target, tmp_path):
    with time_limit(90):
        outcome = live.interrupted(sources[target.backend], target, "term", COUNT, tmp_path, STOP_AFTER_S)
    assert outcome["accepted"] == COUNT, outcome
    assert outcome["exit_code"] in (0, -signal.SIGTERM), outcome
    assert outcome["inbox_after_stop"] > 0, outcome  # the 1 s deadline cut the backlog short
    assert outcome["undrained_logged"] == outcome["inbox_after_stop"], outcome
    assert outcome["lost"] == 0 and outcome["unexpected"] == 0, outcome
    assert outcome["stored"] + outcome["dead_lettered"] == COUNT, outcome
    assert outcome["final_undrained"] == 0, outcome


def test_two_replicas_share_one_postgres_inbox(sources, postgres_dsn, tmp_path):
    """Two processes of the same system on one database, messages posted to each in turn:
    every accepted message is stored (once: the store is keyed), none is lost, and both
    processes delivered some (each one's transformer received messages)."""
    target = live.Target("postgres", tmp_path / "data", postgres_dsn)
    ids = [f"scale-{uuid.uuid4().hex[:12]}-{n}" for n in range(COUNT)]
    env = {**target.env(), "INBOX_LEASE_S": "5"}
    with (
        time_limit(90),
        Server(live.SYSTEM, sources["postgres"], tmp_path / "a", live.KEY, tmp_path / "a.log", env) as a,
        Server(live.SYSTEM, sources["postgres"], tmp_path / "b", live.KEY, tmp_path / "b.log", env) as b,
    ):
        a.start()
        b.start()
        accepted, statuses = live.post_events([a.url, b.url], ids)
        assert len(accepted) == COUNT, statuses
        live.wait_until_empty(target, timeout_s=COUNT / live.RATE + 30)
        scorer = 'durable_messages_received_total{component="scorer"}'
        delivered = [live.scraped(server.url, scorer) for server in (a, b)]
        for server in (a, b):
            assert server.terminate() in (0, -signal.SIGTERM)
            assert server.events("stopped")[-1]["undrained"] == 0
    assert all(n > 0 for n in delivered), delivered  # both replicas claimed entries
    assert sum(delivered) >= COUNT  # at least once: a redelivery may add some
    stored = target.stored()
    assert stored == set(accepted)
    rows = target.query(f"SELECT COUNT(*) FROM records WHERE store = '{live.STORE}'")
    assert rows[0][0] == COUNT  # one record each: exactly once in the store
    assert target.dead() == set()


def test_postgres_connections_cut_mid_backlog(sources, postgres_dsn, tmp_path):
    """The server ends every connection of the system (pg_terminate_backend: what a restart or
    a failover does to clients) while it has a backlog: it reconnects, keeps accepting (a 503
    at worst while it cannot write, never a 202 it did not commit), and loses nothing."""
    import psycopg

    target = live.Target("postgres", tmp_path / "data", postgres_dsn)
    env = {**target.env(), "INBOX_LEASE_S": "2", "DRAIN_TIMEOUT_S": "1"}
    first = [f"cut-a-{n}" for n in range(COUNT // 2)]
    second = [f"cut-b-{n}" for n in range(COUNT // 2)]
    with (
        time_limit(90),
        Server(
            live.SYSTEM, sources["postgres"], tmp_path / "data", live.KEY, tmp_path / "s.log", env
        ) as server,
    ):
        server.start()
        accepted, _ = live.post_events([server.url], first)
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert len(cut) >= 2  # the writer and at least one reader
        deadline = time.monotonic() + 30
        pending = list(second)
        while pending and time.monotonic() < deadline:  # a client retries what got a 503
            got, _ = live.post_events([server.url], pending)
            pending = [i for i in pending if i not in set(got)]
            accepted += got
            time.sleep(0.2)
        assert not pending
        live.wait_until_empty(target, timeout_s=COUNT / live.RATE + 30)
        assert server.terminate() in (0, -signal.SIGTERM)
        assert server.events("stopped")[-1]["undrained"] == 0
    assert set(accepted) <= target.stored() | target.dead()
    assert len(target.stored()) == COUNT
