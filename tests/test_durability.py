"""What a 202 is worth, with real processes: a generated system (tests/fixtures/durability)
with a backlog is killed (SIGKILL) or stopped (SIGTERM, 1 s drain deadline) part-way, started
again on the same data, and every accepted message must end up stored or dead-lettered. On
SQLite and on a real PostgreSQL server; and two replicas of one system sharing a PostgreSQL
inbox store every accepted message, both doing part of the work.

benchmarks/durability_bench.py repeats the crash scenarios (tests/live.py) five times each.
"""

from __future__ import annotations

import signal
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
