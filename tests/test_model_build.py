"""blueprint.models defers its validators (defer_build): a process that only reads the IR
builds the blueprint models the IR holds, not the compiler's; a process that compiles builds
them all before it validates a blueprint (build_all). Checked in fresh interpreters, where
nothing was built before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parent.parent / "examples" / "orders"

STATE = """
import json
from autocoder.blueprint import models
built = {
    name: value.__pydantic_complete__
    for name, value in vars(models).items()
    if isinstance(value, type) and issubclass(value, models.Model) and value is not models.Model
}
"""


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_reading_the_ir_builds_only_the_blueprint_models_it_holds():
    code = (
        "import autocoder.ir.models as ir\n"
        f"{STATE}\n"
        "held = {f.__name__ for f in vars(ir).values()\n"
        "        if isinstance(f, type) and issubclass(f, models.Model)}\n"
        "print(json.dumps({'built': built, 'held': sorted(held)}))"
    )
    state = _run(code)
    built, held = state["built"], set(state["held"])
    assert held and all(built[name] for name in held)
    for name in ("Architecture", "Deployment", "Binding", "TransformerComponent"):
        assert built[name] is False, name


def test_a_compile_builds_every_blueprint_model_first():
    code = (
        "from pathlib import Path\n"
        "from autocoder.compile import compile_directory\n"
        f"result = compile_directory(Path({str(EXAMPLE)!r}))\n"
        f"{STATE}\n"
        "print(json.dumps({'built': built, 'ok': result.ok() and result.ir is not None}))"
    )
    state = _run(code)
    assert state["ok"]
    assert all(state["built"].values()), [n for n, b in state["built"].items() if not b]
