"""Jinja's compiled templates kept per machine (codegen/render.py MachineBytecode): a process
that loads them renders the bytes a process that compiled them renders, without compiling; a
file that does not load is compiled again."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from test_gen_batching import example, names

from autocoder.codegen import render
from autocoder.codegen.batching import generate_batch
from autocoder.codegen.system import generate_runtime
from autocoder.ir.models import load_ir
from autocoder.tasks.compile_tasks import RUNTIME_IR_FILE


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTOCODER_CACHE_DIR", str(tmp_path / "machine"))
    render.environment.cache_clear()  # a new build process: a new environment
    yield tmp_path / "machine"
    render.environment.cache_clear()


def everything(directory: Path) -> dict[str, str]:
    """Every component's files and the system's (rendered and formatted), in a fresh process's
    environment."""
    render.environment.cache_clear()
    batch = generate_batch(directory, names(directory))
    files = {f"{name}/{path}": text for name, made in batch.items() for path, text in made.items()}
    return {**files, **generate_runtime(load_ir(directory / RUNTIME_IR_FILE))}


def test_loaded_templates_render_the_bytes_compiled_ones_render(tmp_path, machine, monkeypatch):
    (tmp_path / "p").mkdir()
    directory = example(tmp_path / "p", "orders")
    compiled = everything(directory)
    kept = sorted(machine.rglob("*.cache"))
    assert len(kept) >= 10 and compiled

    def never(*args, **kwargs):
        raise AssertionError("compiled although its code was kept")

    with monkeypatch.context() as patch:
        patch.setattr(jinja2.Environment, "compile", never)
        assert everything(directory) == compiled
    for path in kept:
        path.write_bytes(path.read_bytes()[:40])  # cut short: does not load
    assert everything(directory) == compiled
    assert [p.stat().st_size > 40 for p in sorted(machine.rglob("*.cache"))] == [True] * len(kept)
