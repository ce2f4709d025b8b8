"""What `report` reads without the IR's models (tasks/validate_tasks.py): each component's p95
budget from its slice's JSON and the tolerance from rules/budgets.yaml. They must be what the
typed reads give; tests/test_validate.py compares the whole report with a full re-read."""

from __future__ import annotations

import pytest
from conftest import EXAMPLE

from autocoder.canonical import canonical_json
from autocoder.compile import compile_directory
from autocoder.ir.models import Slice, dump
from autocoder.tasks.validate_tasks import _budget_p95, _budget_tolerance
from autocoder.validate.bench import budget_rules


def test_the_budget_read_from_a_slice_is_the_models():
    result = compile_directory(EXAMPLE)
    assert result.slices
    for slice_ in result.slices.values():
        raw = canonical_json(dump(slice_))
        assert _budget_p95(raw) == float(Slice.model_validate_json(raw).component.budget.p95_ms)
    assert _budget_tolerance() == float(budget_rules()["tolerance"])


@pytest.mark.parametrize(
    "raw",
    [b"[]", b"{}", b'{"component": {"budget": {}}}', b'{"component": {"budget": {"p95_ms": "5"}}}', b"{"],
)
def test_a_slice_without_a_budget_is_unreadable(raw):
    with pytest.raises(ValueError):
        _budget_p95(raw)
