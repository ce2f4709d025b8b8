"""autocoder/stackroom.py: a call through `with_room` gets its result and errors unchanged, and
the calls under it no longer map a new frame-stack chunk each time their depth crosses the end
of one (counted in page faults, which the kernel counts exactly: no timing)."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable

import pytest

from autocoder.stackroom import with_room

OSCILLATIONS = 200  # each one goes 12 frames down and back up
SCAN = range(0, 240)  # base depths: more than one 16 KB chunk's worth of these small frames


def _down(levels: int) -> int:
    return 0 if levels == 0 else 1 + _down(levels - 1)


def _oscillate() -> int:
    return sum(_down(12) for _ in range(OSCILLATIONS))


def _at_depth(depth: int, function: Callable[[], int]) -> int:
    return function() if depth == 0 else _at_depth(depth - 1, function)


def _most_faults(run: Callable[[int], int]) -> int:
    """The most page faults one oscillating run took, over base depths that cover the end of a
    chunk somewhere."""
    most = 0
    for depth in SCAN:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        assert run(depth) == 12 * OSCILLATIONS
        most = max(most, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return most


def test_result_arguments_and_errors_pass_through():
    assert with_room(lambda a, *, b: (a, b), 1, b=2) == (1, 2)
    with pytest.raises(KeyError, match="x"):
        with_room({}.__getitem__, "x")


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the chunk thrash is measured on CPython 3.11")
def test_no_chunk_is_mapped_again_and_again_under_it():
    # the problem, so that the fix below is not vacuous: at some depth every oscillation
    # crosses the end of a chunk, which is unmapped on the way up and mapped again going down
    assert _most_faults(lambda depth: _at_depth(depth, _oscillate)) >= OSCILLATIONS * 3 // 4
    # through with_room, at every depth, the oscillations stay inside one chunk
    assert _most_faults(lambda depth: _at_depth(depth, lambda: with_room(_oscillate))) < OSCILLATIONS // 4


def _worst_direct() -> int:
    return _most_faults(lambda depth: _at_depth(depth, _oscillate))


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the chunk thrash is measured on CPython 3.11")
def test_forked_children_and_task_actions_run_with_room(tmp_path, monkeypatch):
    """Where the build uses it: every child `isolated.run_forked` forks (the test, bench, check
    and ir children) and every task action the run-cache wrapper runs. The same scan as above,
    with no `with_room` of its own: it stays low only because the caller gave it room."""
    from types import SimpleNamespace

    from autocoder.runcache.tasks import run_cached
    from autocoder.validate.isolated import run_forked

    assert run_forked(_worst_direct, (), 60.0) < OSCILLATIONS // 4
    monkeypatch.setenv("AUTOCODER_CACHE", "off")
    found: list[int] = []
    task = SimpleNamespace(name="probe", file_dep=set(), targets=[])
    run_cached(tmp_path, [(lambda: found.append(_worst_direct()),)], task)
    assert found and found[0] < OSCILLATIONS // 4
