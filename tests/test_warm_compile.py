"""`check` and `ir` in a child of the project's warm worker (tasks/warm_compile.py) give the
in-process actions' results: the same failure message or pass, the same stdout and stderr and
the same bytes of every file under generated/ they write, for a clean blueprint, one with a
warning (passing, and failing under strict), a semantic error and a YAML error; `ir` takes
`check`'s plan only for the very bytes it was planned for; a killed worker, or one whose key
no longer matches Autocoder's files (stale code), is not served from: the actions then run in
process and give the same results.

Which process compiled is read from the worker's side: `Worker.run` is wrapped to record what
it returned (the real call still happens), and `_PLANNED` holds a plan only after a child's
answer."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import autocoder
from autocoder.layout import CHECK_REPORT, GENERATED
from autocoder.tasks import compile_tasks, warm_compile
from autocoder.validate import background, warm_worker

EXAMPLE = Path(__file__).parent.parent / "examples" / "orders"
OVERRIDE = "component_overrides:\n  orders_api: {capabilities: {rate_limit: {rate: 1000, burst: 2000}}}\n"
ARCH = (EXAMPLE / "architecture.yaml").read_text()
DEPLOY = (EXAMPLE / "deployment.yaml").read_text()
assert OVERRIDE in DEPLOY
CASES = {
    "clean": (ARCH, DEPLOY),
    "warning": (ARCH, DEPLOY.replace(OVERRIDE, "")),  # AC112
    "semantic error": (ARCH.replace("to: pricer.in}", "to: nowhere.in}", 1), DEPLOY),
    "yaml error": (ARCH.replace("bindings:", "bindings: [", 1), DEPLOY),
}


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Iterator[Path]:
    """One project for the module (its warm worker is keyed by the environment, so the tests
    share it); every worker it started is stopped at the end."""
    project = tmp_path_factory.mktemp("warmcompile") / "project"
    project.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warm_worker.ENV, "60")
        patch.delenv(compile_tasks.STRICT_ENV, raising=False)
        yield project
    folder = project / GENERATED / ".cache" / "warm"
    for status in folder.glob("*.json") if folder.is_dir() else []:
        warm_worker.Worker(folder, project, status.stem, (), 0, False).stop()


@pytest.fixture
def answers(directory, monkeypatch) -> list[bytes | None]:
    """The kind of each answer the worker gave (b"R": a child's result; None: not served)."""
    monkeypatch.setenv(warm_worker.ENV, "60")
    seen: list[bytes | None] = []
    real = warm_worker.Worker.run

    def recording(self, *args):
        frame = real(self, *args)
        seen.append(None if frame is None else frame[0])
        return frame

    monkeypatch.setattr(warm_worker.Worker, "run", recording)
    return seen


def _blueprint(directory: Path, case: str) -> None:
    arch, deploy = CASES[case]
    (directory / "architecture.yaml").write_text(arch)
    (directory / "deployment.yaml").write_text(deploy)


def _clear_outputs(directory: Path) -> None:
    """Everything check and ir write (the worker's folder stays); the check report is left
    empty, as from an earlier run: each build is a rebuild (which starts a worker)."""
    generated = directory / GENERATED
    shutil.rmtree(generated / "ir", ignore_errors=True)
    for path in [*generated.glob("*.json"), generated / ".cache" / "ir-written.json"]:
        path.unlink(missing_ok=True)
    (generated / CHECK_REPORT).parent.mkdir(parents=True, exist_ok=True)
    (generated / CHECK_REPORT).write_bytes(b"")
    compile_tasks._COMPILED.clear()
    warm_compile._PLANNED.clear()


def _outputs(directory: Path) -> dict[str, bytes]:
    generated = directory / GENERATED
    files = [*generated.glob("*.json"), *generated.glob("ir/*.json"), generated / CHECK_REPORT]
    files.append(generated / ".cache" / "ir-written.json")
    return {str(p.relative_to(generated)): p.read_bytes() for p in sorted(files) if p.is_file()}


def _build(directory: Path, strict: bool, capsys) -> tuple:
    """check, then ir when check passed (as doit runs them): each one's failure message (None:
    passed) and output, then the files."""
    _clear_outputs(directory)
    capsys.readouterr()
    results = []
    for action in (compile_tasks.run_check, compile_tasks.run_ir):
        failed = action(directory, strict)
        out, err = capsys.readouterr()
        results.append((None if failed is None else failed.message, out, err))
        if failed is not None:
            break
    return tuple(results), _outputs(directory)


def _in_process(directory: Path, strict: bool, capsys, monkeypatch) -> tuple:
    with monkeypatch.context() as off:
        off.setenv(warm_worker.ENV, "off")
        return _build(directory, strict, capsys)


def _ready(directory: Path) -> warm_worker.Worker:
    worker = warm_compile._worker(directory)
    assert worker is not None
    worker.start()
    deadline = time.monotonic() + 120
    while not worker.ready.is_file():
        assert worker.status.is_file(), "the warm worker stopped while warming up"
        assert time.monotonic() < deadline, "the warm worker did not warm up in 120 s"
        time.sleep(0.1)
    return worker


def test_warm_check_and_ir_give_the_in_process_results(directory, answers, capsys, monkeypatch):
    _blueprint(directory, "clean")
    _ready(directory)
    for case in CASES:
        _blueprint(directory, case)
        for strict in (False, True):
            reference = _in_process(directory, strict, capsys, monkeypatch)
            answers.clear()
            assert _build(directory, strict, capsys) == reference, (case, strict)
            passed = reference[0][0][0] is None
            # check came from the worker's child; ir used check's plan (no second request)
            assert answers == [b"R"], (case, strict, answers)
            if case == "clean":
                assert len(reference[1]) > 5 and reference[0][1][0] is None
            if case == "warning":
                assert "AC112" in (reference[0][0][0] if strict else reference[0][0][2])
                assert passed is not strict
            if case in ("semantic error", "yaml error"):
                assert not passed and reference[0][0][0]


def test_ir_takes_the_plan_only_for_the_bytes_it_was_planned_for(directory, answers, capsys, monkeypatch):
    _blueprint(directory, "warning")
    _ready(directory)
    _clear_outputs(directory)
    assert compile_tasks.run_check(directory, False) is None
    assert warm_compile._PLANNED and answers == [b"R"]
    _blueprint(directory, "clean")  # changed between check and ir
    compile_tasks.run_ir(directory, False)
    assert answers == [b"R", b"R"]  # ir asked a child of its own
    assert not warm_compile._PLANNED
    capsys.readouterr()
    warm = _outputs(directory)
    reference = _in_process(directory, False, capsys, monkeypatch)[1]
    ir_files = {k: v for k, v in reference.items() if k != CHECK_REPORT}
    assert {k: v for k, v in warm.items() if k != CHECK_REPORT} == ir_files


def test_a_killed_worker_costs_a_fallback_with_the_same_results(directory, answers, capsys, monkeypatch):
    _blueprint(directory, "warning")
    reference = _in_process(directory, False, capsys, monkeypatch)
    worker = _ready(directory)
    pid = background.identify(worker.status)[0]
    os.kill(pid, signal.SIGKILL)
    answers.clear()
    assert _build(directory, False, capsys) == reference
    assert answers == [None, None]  # neither check nor ir was served
    assert not background.alive(pid)


def test_a_worker_of_older_autocoder_code_is_not_asked(directory, answers, capsys, monkeypatch):
    _blueprint(directory, "clean")
    reference = _in_process(directory, False, capsys, monkeypatch)
    worker = _ready(directory)
    old = background.identify(worker.status)[0]
    touched = Path(autocoder.__file__).parent / "ir" / "build.py"
    stat = touched.stat()
    try:
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        answers.clear()
        assert _build(directory, False, capsys) == reference
        assert answers == [None, None]  # the new key has no ready worker: in process
        assert not background.alive(old)  # stopped: its code is not the current code
        assert not worker.status.exists()
        fresh = warm_compile._worker(directory)
        assert fresh is not None and fresh.key != worker.key
        fresh.stop()
    finally:
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))


EXAMPLES = sorted(p.parent for p in (Path(__file__).parent.parent / "examples").glob("*/architecture.yaml"))
EXAMPLES.append(Path(__file__).parent / "fixtures" / "every_kind")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_a_remembered_expression_is_what_a_fresh_compile_gives(example, monkeypatch):
    """A second compile served entirely from the expression memo (compiling any expression
    again would raise here) gives the first one's diagnostics and IR, for every example."""
    from autocoder.analysis import exprmemo
    from autocoder.compile import compile_sources
    from autocoder.ir.models import dump

    raws = [(example / name).read_bytes() for name in ("architecture.yaml", "deployment.yaml")]
    monkeypatch.setattr(exprmemo, "_MEMO", {})
    fresh = compile_sources(*raws)
    assert fresh.ir is not None
    assert exprmemo._MEMO or example.name == "reviews"  # its logic is written by the LLM

    def compiled_again(*args, **kwargs):
        raise AssertionError(f"compiled again: {args}")

    monkeypatch.setattr(exprmemo, "compile_expression", compiled_again)
    again = compile_sources(*raws)
    assert [d.to_json() for d in again.diagnostics] == [d.to_json() for d in fresh.diagnostics]
    assert again.ir is not None and dump(again.ir) == dump(fresh.ir)


def test_the_memo_keys_on_the_bounds_and_keeps_no_failure(monkeypatch):
    from autocoder.analysis import exprmemo
    from autocoder.expr.compiler import ExprError
    from autocoder.expr.types import Type

    monkeypatch.setattr(exprmemo, "_MEMO", {})
    narrow, wide = ({"v": Type("number", minimum=0, maximum=top)} for top in (1, 10))
    assert narrow == wide  # Type's equality ignores the bounds; the memo must not
    exprmemo.compiled_expression("v + 1", narrow)
    exprmemo.compiled_expression("v + 1", wide)
    assert len(exprmemo._MEMO) == 2
    for _ in range(2):
        with pytest.raises(ExprError):
            exprmemo.compiled_expression("v +", narrow)
    assert len(exprmemo._MEMO) == 2


def memo_use_in_child(directory: Path) -> tuple[int, int]:
    """In a worker's child: compile `directory` as `check` does; the compile memo's hits and
    computed entries (analysis.memo)."""
    from autocoder.analysis.memo import PROCESS_MEMO

    compile_tasks._COMPILED.clear()
    compile_tasks.compile_keyed(directory, False)
    return PROCESS_MEMO.hits, PROCESS_MEMO.computed


def test_the_workers_children_start_from_the_memo_it_filled_as_it_warmed_up(directory):
    """The worker compiled the blueprint before it served: after an edit of one component,
    its child analyses and builds that component only (5 components: 4 analyses, 4 components'
    deployment checks and 4 slices from the memo)."""
    import pickle

    worker = warm_compile._worker(directory)
    assert worker is not None
    worker.stop()  # a worker of its own, warmed up with this very blueprint
    _blueprint(directory, "clean")
    worker = _ready(directory)
    edited = ARCH.replace('"quantity * unit_price"', '"unit_price * quantity"', 1)
    assert edited != ARCH
    (directory / "architecture.yaml").write_text(edited)
    frame = worker.run(memo_use_in_child, (directory,), 120)
    assert frame is not None and frame[0] == b"R", frame
    assert pickle.loads(frame[1]) == (12, 3)  # noqa: S301 - our own worker's answer


def test_the_projections_from_remembered_components_are_the_plain_encoders_bytes(tmp_path, monkeypatch):
    """warm_compile.projections: ir.runtime.json and ir.deploy.json as encode_projection and
    encode_plan_input write them from ir.v1.json's bytes, with no remembered component, with
    every one, and after an edit (one component new, the others remembered); and a changed
    component never takes its old entry."""
    import json

    from autocoder.codegen.runtime_ir import encode_projection
    from autocoder.compile import compile_sources
    from autocoder.deploy.plan_input import encode_plan_input
    from autocoder.ir.write import plan_ir

    monkeypatch.setattr(warm_compile, "_COMPONENTS", {})
    generated = tmp_path / GENERATED
    generated.mkdir()
    edited = ARCH.replace("to: pricer.in}", "to: pricer.in, condition: 'quantity > 1'}", 1)
    assert edited != ARCH
    for arch in (ARCH, ARCH, edited, ARCH):
        result = compile_sources(arch.encode(), DEPLOY.encode())
        assert result.ir is not None
        planned = plan_ir(generated, result.ir, result.slices, root=tmp_path)
        assert planned.layout is not None and len(planned.layout.components) == len(result.slices)
        whole = json.loads(planned.ir_bytes)
        assert warm_compile.projections(planned) == (encode_projection(whole), encode_plan_input(whole))
        assert len(warm_compile._COMPONENTS) == len(result.slices)


def test_a_plan_sends_no_unchanged_projection_and_ir_checks_it_before_writing(tmp_path, capsys, monkeypatch):
    """A plan leaves out ir.runtime.json and ir.deploy.json when they already hold its bytes
    (and the layout, read only where it is made); `ir` writes such a plan only while those
    files still hold them: a file changed between `check` and `ir` is rewritten as in process."""
    monkeypatch.setenv(warm_worker.ENV, "off")
    directory = tmp_path / "project"
    shutil.copytree(EXAMPLE, directory)
    reference = _in_process(directory, False, capsys, monkeypatch)
    names = ["ir.runtime.json", "ir.deploy.json"]
    assert set(names) <= set(reference[1])
    for tampered in (None, *names):
        compile_tasks._COMPILED.clear()
        outcome, planned = warm_compile.check_child(directory, False)
        assert outcome.failure is None and planned is not None
        assert planned.plan.layout is None and not planned.plan.after
        assert sorted(path.name for path, _ in planned.kept) == sorted(names)
        warm_compile._PLANNED[planned.key] = planned
        if tampered is not None:
            (directory / GENERATED / tampered).write_bytes(b"{}\n")
        compile_tasks._COMPILED.clear()
        capsys.readouterr()
        assert warm_compile.ir(directory, False) is None
        out, _ = capsys.readouterr()
        assert out.endswith(f" component(s), {0 if tampered is None else 1} file(s) rewritten\n")
        assert not warm_compile._PLANNED
        assert _outputs(directory) == reference[1]
