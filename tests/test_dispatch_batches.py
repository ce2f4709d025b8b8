"""The dispatch order around batches (autocoder/tasks/dispatch.py): a task whose batch record is
written goes first, one a running batch has claimed waits until nothing else is ready, the
component tests go before the path tests and those before the short bench and lint batches,
and one path test starts the path tests' server before the others are handed out. Only the
order changes: the same tasks run, with the same results."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from autocoder.tasks import dispatch
from autocoder.tasks.dispatch import ReadyQueue, Records, batch_meta


def _node(name: str, records: Path | None = None, member: str | None = None) -> Any:
    meta = batch_meta(records, member or name.split(":", 1)[1]) if records is not None else None
    return SimpleNamespace(task=SimpleNamespace(name=name, meta=meta))


def _drain(queue: ReadyQueue) -> list[str]:
    names = []
    while queue:
        names.append(queue.popleft().task.name)
    return names


def test_ranks_first_gen_component_tests_paths_bench_lint_then_first_come(tmp_path):
    queue = ReadyQueue()
    for name in ("lint:a", "bench:a", "test:path.x", "report", "test:a", "gen:b", "lint:b", "typecheck"):
        tier = name.split(":")[0]
        batched = tier in ("lint", "bench", "test") and name != "typecheck"
        queue.append(_node(name, tmp_path / tier if batched else None))
    assert len(queue) == 8
    assert _drain(queue) == [
        "typecheck",
        "gen:b",
        "report",  # no rank of its own: with the component tests, first come
        "test:a",
        "test:path.x",
        "bench:a",
        "lint:a",
        "lint:b",
    ]
    with pytest.raises(IndexError):
        queue.popleft()


def test_within_a_rank_the_definition_order_then_first_come(tmp_path):
    """doit queues a component's tasks when its generator ends (in no useful order); they are
    taken in the order they were defined (the component order, whose end the batches take
    their siblings from), a task the order lacks after them."""
    order = ["test:c", "test:a", "lint:a", "test:b"]
    queue = ReadyQueue(order=order)
    for name in ("test:b", "test:x", "lint:a", "test:a", "test:c", "test:y"):
        queue.append(_node(name, tmp_path / name.split(":")[0]))
    assert _drain(queue) == ["test:c", "test:a", "test:b", "test:x", "test:y", "lint:a"]


def test_a_recorded_task_goes_first_and_a_claimed_one_last(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    queue = ReadyQueue()
    for name in ("test:a", "test:b", "test:c", "lint:d"):
        queue.append(_node(name, records))
    (records / "b.claim").write_text("1")  # a running batch tests b
    (records / "c.claim").write_text("1")
    (records / "c.json").write_text("{}")  # c's batch is done
    (records / "d.claim").write_text("1")
    (records / "d.json").write_text("{}")
    # recorded c and d (first come first), then a; b only when nothing else is left
    assert _drain(queue) == ["test:c", "lint:d", "test:a", "test:b"]


def test_a_claimed_task_is_handed_out_once_its_record_is_written(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    queue = ReadyQueue([_node("test:a", records), _node("test:b", records), _node("test:c", records)])
    (records / "a.claim").write_text("1")
    assert queue.popleft().task.name == "test:b"
    (records / "a.json").write_text("{}")  # within the directory's mtime tick too
    time.sleep(dispatch.RELIST_NS / 1e9)  # the listing is at most this old
    assert queue.popleft().task.name == "test:a"
    assert queue.popleft().task.name == "test:c"


def test_a_claim_newer_than_the_listing_is_seen_on_the_spot(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    queue = ReadyQueue([_node(f"test:{n}", records) for n in "abc"])
    assert queue.popleft().task.name == "test:a"  # listed: nothing claimed
    (records / "b.claim").write_text("1")  # a batch starts, within RELIST_NS of that listing
    assert queue.popleft().task.name == "test:c"
    assert queue.popleft().task.name == "test:b"


def test_records_follow_the_directory_and_its_absence(tmp_path):
    found = Records(str(tmp_path / "later"))
    found.refresh()
    assert found.recorded == found.running == frozenset()
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "x.claim").write_text("1")
    time.sleep(dispatch.RELIST_NS / 1e9)
    found.refresh()
    assert found.running == {"x"} and not found.recorded
    (tmp_path / "later" / "x.json").write_text("{}")
    (tmp_path / "later" / "y.claim").write_text("1")
    time.sleep(dispatch.RELIST_NS / 1e9)
    found.refresh()
    assert found.recorded == {"x"} and found.running == {"y"}


def test_one_path_test_at_a_time_until_the_first_one_ends(tmp_path):
    records = tmp_path / "records"
    queue = ReadyQueue()
    for name in ("test:path.1", "test:path.2", "bench:a", "test:path.3"):
        queue.append(_node(name, records))
    first = queue.popleft()
    assert first.task.name == "test:path.1"
    queue.started(first)  # it starts the server: the other path tests would wait for it
    assert queue.popleft().task.name == "bench:a"
    assert queue.popleft().task.name == "test:path.2"  # nothing else is ready
    queue.ended(first)
    assert queue.popleft().task.name == "test:path.3"


# A toy build of batches, run by doit -n 2: when the tasks are loaded, t:1 and t:2 are claimed
# by a "batch" (a process that records them 0.5 s later). A task that finds its claim taken
# waits for its record, as validate/batch.py does; the others take 0.4 s each. Each task logs
# how it ran. doit's own order hands out t:0 and t:1 first: t:1 then waits for the batch.
TOY = """
import os, subprocess, sys, time
from pathlib import Path
from autocoder.tasks import dispatch
from autocoder.tasks.dispatch import batch_meta

dispatch.install()
RECORDS = Path("records").resolve()
RECORDS.mkdir(exist_ok=True)
for name in ("1", "2"):
    (RECORDS / f"{name}.claim").write_text("batch")
WRITER = (
    "import time, pathlib, sys; time.sleep(0.5); "
    "[pathlib.Path(sys.argv[1], n + '.json').write_text('{}') for n in '12']"
)
subprocess.Popen([sys.executable, "-c", WRITER, str(RECORDS)])

def run(i):
    started = time.monotonic()
    if (RECORDS / f"{i}.claim").exists():
        while not (RECORDS / f"{i}.json").exists():
            time.sleep(0.01)
        how = "waited" if time.monotonic() - started > 0.2 else "recorded"
    else:
        time.sleep(0.4)
        how = "alone"
    with open("order.log", "a") as out:
        out.write(f"t:{i} {how}\\n")

def task_t():
    for i in range(6):
        yield {"name": str(i), "actions": [(run, [i])], "meta": batch_meta(RECORDS, str(i))}
"""


def _toy(tmp_path: Path, fifo: bool) -> list[str]:
    tmp_path.mkdir()
    (tmp_path / "dodo.py").write_text(TOY)
    run = subprocess.run(
        [sys.executable, "-m", "doit", "-f", "dodo.py", "--db-file", "db", "-n", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, dispatch.ENV: "fifo" if fifo else ""},
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return (tmp_path / "order.log").read_text().splitlines()


def test_no_process_waits_for_a_running_batch_while_other_tasks_are_ready(tmp_path):
    lines = _toy(tmp_path / "ours", fifo=False)
    assert sorted(lines) == [
        "t:0 alone",
        "t:1 recorded",
        "t:2 recorded",
        "t:3 alone",
        "t:4 alone",
        "t:5 alone",
    ]


def test_doit_s_own_order_hands_out_a_claimed_task_that_then_waits(tmp_path):
    """The control: with AUTOCODER_DISPATCH=fifo the second process gets t:1 at once, which
    the batch holds, and waits for it (the change above is real)."""
    lines = _toy(tmp_path / "fifo", fifo=True)
    assert "t:1 waited" in lines, lines


def test_popping_costs_little_with_hundreds_of_queued_batch_tasks(tmp_path):
    """The parent process pops every task of a build: with 300 queued tasks of three tiers and
    half of them recorded, a pop stays well under a millisecond."""
    queue = ReadyQueue()
    for tier in ("lint", "test", "bench"):
        folder = tmp_path / tier
        folder.mkdir()
        for i in range(100):
            queue.append(_node(f"{tier}:c{i}", folder))
            (folder / f"c{i}.claim").write_text("1")
            if i % 2:
                (folder / f"c{i}.json").write_text("{}")
    started = time.perf_counter()
    names = _drain(queue)
    per_pop = (time.perf_counter() - started) / len(names)
    assert len(names) == 300 and len(set(names)) == 300
    # the recorded ones first, first come first; then the claimed ones, in rank order
    recorded = [f"{tier}:c{i}" for tier in ("lint", "test", "bench") for i in range(1, 100, 2)]
    assert names[:150] == recorded
    assert names[150:] == [f"{tier}:c{i}" for tier in ("test", "bench", "lint") for i in range(0, 100, 2)]
    assert per_pop < 0.001, per_pop
