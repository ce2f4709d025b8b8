"""The bench tier fails a component whose measured path dead-letters its messages, however
fast it is (before, a logic that failed every message was timed as a fast component and
passed): generated in memory from examples/orders with a pricer that divides by zero, then
benchmarked by validate.bench as the bench:<component> task does."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import compile_data, component

import autocoder.validate.bench
from autocoder.codegen.component import generate_component
from autocoder.codegen.provider import get_provider
from autocoder.codegen.strategies import simplest_message
from autocoder.codegen.system import generate_runtime
from autocoder.validate.bench import bench_component

SYSTEM = "bench_dead"  # a name no other test imports: the bench imports the package in process


def bench(arch: dict, tmp_path: Path, monkeypatch) -> dict:
    # every dead letter is a commit: no fsync each, and a short warm-up, keep this test quick
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "NORMAL")
    monkeypatch.setattr(autocoder.validate.bench, "WARMUP", 20)
    arch["system"]["name"] = SYSTEM
    # hypothesis finds the simplest message of a patterned string slowly (generate_runtime and
    # the bench both ask for one): without the pattern it is "" at once
    del arch["schemas"]["Order"]["fields"]["order_id"]["pattern"]
    result = compile_data(arch)
    assert result.ir is not None, [d.format() for d in result.diagnostics]
    files = generate_runtime(result.ir)
    files.update(generate_component(result.slices["pricer"], get_provider("offline")))
    src = tmp_path / "src"
    for path, text in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
    try:
        slice_ = result.slices["pricer"]
        return bench_component(src, slice_, tmp_path / "data", simplest_message, iterations=50)
    finally:
        sys.path.remove(str(src))
        for name in [m for m in sys.modules if m == SYSTEM or m.startswith(SYSTEM + ".")]:
            del sys.modules[name]


def test_a_path_that_dead_letters_fails_the_bench(arch, tmp_path, monkeypatch):
    pricer = component(arch, "pricer")
    pricer["logic"] = {"set": {"total": "unit_price / (quantity - quantity)"}}
    pricer["examples"] = [{"in": {"order_id": "A-000001", "quantity": 2, "unit_price": 5}, "rejected": True}]
    result = bench(arch, tmp_path, monkeypatch)
    assert result["dead_letters"] > 0 and result["ok"] is False


def test_a_path_that_works_passes(arch, tmp_path, monkeypatch):
    result = bench(arch, tmp_path, monkeypatch)
    assert result["dead_letters"] == 0 and result["iterations"] == 50
