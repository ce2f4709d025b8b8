"""What `report` reads without the IR's models (tasks/validate_tasks.py): each component's p95
budget from its slice's JSON and the tolerance from rules/budgets.yaml. They must be what the
typed reads give; tests/test_validate.py compares the whole report with a full re-read."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import EXAMPLE

from autocoder.canonical import canonical_json
from autocoder.compile import compile_directory
from autocoder.ir.models import Slice, dump
from autocoder.tasks.validate_tasks import _budget_p95


def test_the_budget_read_from_a_slice_is_the_models():
    result = compile_directory(EXAMPLE)
    assert result.slices
    for slice_ in result.slices.values():
        raw = canonical_json(dump(slice_))
        assert _budget_p95(raw) == float(Slice.model_validate_json(raw).component.budget.p95_ms)


@pytest.mark.parametrize(
    "raw",
    [b"[]", b"{}", b'{"component": {"budget": {}}}', b'{"component": {"budget": {"p95_ms": "5"}}}', b"{"],
)
def test_a_slice_without_a_budget_is_unreadable(raw):
    with pytest.raises(ValueError):
        _budget_p95(raw)


def test_the_budget_rules_load_without_the_bench_tier_or_the_ir_models():
    """`report` reads the tolerance through validate.budgets, the one reader of budgets.yaml,
    which the bench tier shares; importing it loads neither the bench tier nor the IR models."""
    code = (
        "import sys; from autocoder.validate.budgets import budget_rules; "
        "print(float(budget_rules()['tolerance']), "
        "'autocoder.validate.bench' in sys.modules, 'autocoder.ir.models' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    tolerance, bench, models = out.stdout.split()
    assert float(tolerance) >= 0 and (bench, models) == ("False", "False")
