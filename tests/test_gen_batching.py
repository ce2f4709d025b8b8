"""Batching the gen tasks of a build from scratch (codegen/batching.py): a batch gives every
component the bytes its lone generation gives (every example, every hostile blueprint), each
task writes its own files, a record is used only for the exact inputs it was made from, a
generation error fails its own task with the message it always gave, and an edit's task runs
alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from test_hostile_codegen import HOSTILE, hostile_blueprints

from autocoder.codegen import render
from autocoder.codegen.batching import RECORDS, generate_batch
from autocoder.ir.models import load_slice
from autocoder.llm.provider import generate_files
from autocoder.synthetic import synthetic_architecture, synthetic_deployment
from autocoder.tasks import gen_tasks
from autocoder.tasks.compile_tasks import ir_in_process

EXAMPLES = sorted(p.name for p in (REPO / "examples").iterdir() if (p / "architecture.yaml").is_file())


def project(tmp_path: Path, arch: bytes, deploy: bytes, lock: bytes | None = None) -> Path:
    """A project whose `ir` ran (its slices written), nothing generated yet."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "architecture.yaml").write_bytes(arch)
    (directory / "deployment.yaml").write_bytes(deploy)
    if lock is not None:
        (directory / "autocoder.lock").write_bytes(lock)
    assert ir_in_process(directory, False) is None
    return directory


def example(tmp_path: Path, name: str, *, lock: bool = True) -> Path:
    source = REPO / "examples" / name
    locked = source / "autocoder.lock"
    return project(
        tmp_path,
        (source / "architecture.yaml").read_bytes(),
        (source / "deployment.yaml").read_bytes(),
        locked.read_bytes() if lock and locked.is_file() else None,
    )


def synthetic_bytes(components: int) -> tuple[bytes, bytes]:
    return (
        yaml.safe_dump(synthetic_architecture(components), sort_keys=False).encode(),
        yaml.safe_dump(synthetic_deployment(), sort_keys=False).encode(),
    )


def names(directory: Path) -> list[str]:
    return sorted(p.stem for p in (directory / "generated" / "ir").glob("*.json"))


def lone(directory: Path, name: str) -> dict[str, str]:
    """What gen:<name> generated before batching: its slice, rendered, formatted alone."""
    return generate_files(directory, load_slice(directory / "generated" / "ir" / f"{name}.json"))


class Ruff:
    """The real formatter, counting its runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[int] = []
        real = render._format_python

        def counted(files: dict[str, str]) -> dict[str, str]:
            self.runs.append(len(files))
            return real(files)

        monkeypatch.setattr(render, "_format_python", counted)


def gen_actions(directory: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    """The gen:<component> tasks' actions, as doit loads them in `directory`."""
    monkeypatch.chdir(directory)
    tasks = [t for t in gen_tasks.task_gen() if t["name"] != "runtime"]
    return {t["name"]: t["actions"][0] for t in tasks}


def run(action: tuple) -> object:
    function, args = action
    return function(*args)


@pytest.mark.parametrize("blueprint", [*EXAMPLES, *(f"hostile-{i}" for i in range(len(HOSTILE)))])
def test_a_batch_generates_the_lone_bytes(blueprint, tmp_path):
    if blueprint.startswith("hostile-"):
        directory = project(tmp_path, *hostile_blueprints(int(blueprint.split("-")[1])))
    else:
        directory = example(tmp_path, blueprint)
    components = names(directory)
    batched = generate_batch(directory, components)
    llm = {
        n
        for n in components
        if load_slice(directory / "generated" / "ir" / f"{n}.json").component.logic_source == "llm"
    }
    assert set(batched) == set(components) - llm  # an LLM-written one is left to its own task
    for name in sorted(batched):
        assert batched[name] == lone(directory, name), name


def test_a_build_from_scratch_formats_in_few_ruff_runs_and_writes_the_lone_bytes(tmp_path, monkeypatch):
    arch, deploy = synthetic_bytes(30)
    directory = project(tmp_path, arch, deploy)
    expected = {name: lone(directory, name) for name in names(directory)}
    actions = gen_actions(directory, monkeypatch)
    assert all(action[1][2] is not None for action in actions.values())  # from scratch: a group
    ruff = Ruff(monkeypatch)
    for name, action in actions.items():  # in task order, as one doit process runs them
        assert run(action) is None, name
    assert len(ruff.runs) == -(-len(actions) // 8)  # eight components to a ruff run
    src = directory / "generated" / "src"
    for files in expected.values():
        for path, text in files.items():
            assert (src / path).read_text() == text, path
    # the next build has generated modules: no group, an edit's task runs alone, as before
    # batching (and the last batch's records are gone)
    again = gen_actions(directory, monkeypatch)
    assert all(action[1][2] is None for action in again.values())
    assert not (directory / RECORDS).exists()
    ruff.runs.clear()
    first = next(iter(again))
    assert run(again[first]) is None and ruff.runs == [2]
    for path, text in expected[first].items():
        assert (src / path).read_text() == text


def test_a_record_serves_only_the_inputs_it_was_made_from(tmp_path, monkeypatch):
    directory = example(tmp_path, "orders")
    actions = gen_actions(directory, monkeypatch)
    order = list(actions)
    assert run(actions[order[0]]) is None  # batches the others
    other = order[-1]
    slice_file = directory / "generated" / "ir" / f"{other}.json"
    data = json.loads(slice_file.read_text())
    data["component"]["description"] = "rewritten after the batch"
    slice_file.write_text(json.dumps(data))  # `ir` of a later build would rewrite it so
    ruff = Ruff(monkeypatch)
    assert run(actions[other]) is None
    assert ruff.runs == [2]  # generated alone, from the slice as it is now
    expected = lone(directory, other)
    for path, text in expected.items():
        assert (directory / "generated" / "src" / path).read_text() == text
    assert any("rewritten after the batch" in text for text in expected.values())


def test_a_generation_error_fails_its_own_task_with_the_lone_message(tmp_path, monkeypatch):
    """reviews without its lock, offline: its two free-form components cannot be generated."""
    directory = example(tmp_path, "reviews", lock=False)
    batched = gen_actions(directory, monkeypatch)
    failures = {name: run(action) for name, action in batched.items()}
    shutil.rmtree(directory / "generated" / "src")
    shutil.rmtree(directory / "generated" / ".cache")
    alone = {name: gen_tasks.run_gen_component(directory, name) for name in batched}
    assert {n for n, f in alone.items() if f is not None} == {"scorer", "triage"}
    assert {n: str(f) for n, f in failures.items()} == {n: str(f) for n, f in alone.items()}


def test_invalid_settings_fail_every_task_with_the_lone_message(tmp_path, monkeypatch):
    directory = example(tmp_path, "orders")
    monkeypatch.setenv("AUTOCODER_LLM_TEMPERATURE", "9")
    actions = gen_actions(directory, monkeypatch)
    failures = [str(run(action)) for action in actions.values()]
    alone = [str(gen_tasks.run_gen_component(directory, name)) for name in actions]
    assert failures == alone and all("LLM settings are invalid" in f for f in failures)


def test_the_format_cache_gives_what_ruff_gives_and_only_for_its_ruff(tmp_path, monkeypatch):
    """gen:runtime's cache (format_python's `cache`): a cached run gives what ruff gives; an
    entry another ruff release made is not used."""
    sources = {"a.py": "x  =  {'k':1}\n", "b.py": "def f( a ):\n  return a\n"}
    cache = tmp_path / "cache.json"
    ruff = Ruff(monkeypatch)
    formatted = render.format_python(sources, cache)
    assert formatted == render.format_python(sources) and ruff.runs == [2, 2]
    assert render.format_python(sources, cache) == formatted and ruff.runs == [2, 2]  # all cached
    monkeypatch.setattr("autocoder.tools.tool_versions", lambda: "ruff==0.0.0 hypothesis==0")
    assert render.format_python(sources, cache) == formatted and ruff.runs == [2, 2, 2]
