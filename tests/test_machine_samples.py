"""The machine's simplest messages (codegen/strategies.py `machine_samples`): a new project whose
samples come from the machine's copy generates the same bytes as one that searched for them
with hypothesis, without searching; an unreadable copy is searched again."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gen_batching import example

from autocoder.codegen import strategies
from autocoder.tasks import gen_tasks


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty machine cache of this test's own; hypothesis's in-process memo emptied, so
    that every search really runs."""
    monkeypatch.setenv("AUTOCODER_CACHE_DIR", str(tmp_path / "machine"))
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    strategies.machine_samples.cache_clear()
    strategies._simplest.cache_clear()
    yield tmp_path / "machine"
    strategies.machine_samples.cache_clear()


def generate(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    directory = example(tmp_path / name, "orders")
    strategies._simplest.cache_clear()
    assert gen_tasks.run_gen_runtime(directory) is None
    return directory


def test_a_project_served_by_the_machine_generates_the_bytes_a_search_gives(tmp_path, machine):
    searched = generate(tmp_path, "first")  # the machine's first project: hypothesis searches
    assert strategies._simplest.cache_info().misses > 0
    kept = sorted(machine.rglob("*.json"))
    assert kept and strategies.machine_samples() in kept[0].parents
    served = generate(tmp_path, "second")  # the next one: every sample from the machine
    assert strategies._simplest.cache_info().misses == 0
    assert tree(served / "generated" / "src") == tree(searched / "generated" / "src")
    samples = gen_tasks.SAMPLES
    assert tree(served / samples) == tree(searched / samples)
    assert sorted(p.name for p in (served / samples).iterdir()) == [p.name for p in kept]


def test_an_unreadable_machine_copy_is_searched_again(tmp_path, machine):
    searched = generate(tmp_path, "first")
    for path in machine.rglob("*.json"):
        path.write_text('["not a message"]')
    again = generate(tmp_path, "second")
    assert strategies._simplest.cache_info().misses > 0
    assert tree(again / "generated" / "src") == tree(searched / "generated" / "src")
    assert [p.read_bytes() for p in sorted(machine.rglob("*.json"))] == [
        p.read_bytes() for p in sorted((searched / gen_tasks.SAMPLES).iterdir())
    ]
