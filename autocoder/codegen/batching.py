"""Batching the gen:<component> tasks of a build from scratch (issue 13, full builds).

Why: a gen task loads its IR slice, renders two templates (~1 ms) and starts `ruff format` on
the two files it made; starting ruff (a process, its threads) is most of the task's CPU
(~12 of ~18 ms). In a build from scratch, one task renders up to eight pending components and
formats all their files in ONE ruff run; their own tasks then write their files from its record
without loading, rendering or formatting anything.

The protocol is the lint and bench tiers' (validate/siblings.py `run_batched`): a task claims
pending siblings (their IR slices written, never generated in this project), and each one's
record is keyed by the sha256 of its task's exact inputs (its file_dep: the IR slice, the
generator fingerprint, the lock file, the templates); its own task uses the record only when
its inputs still hash the same, else generates it alone. What a batch cannot generate (an
LLM-written component, a generation error, a batch whose ruff run failed) gets no record: its
own task generates it alone and fails, if it does, with the message it always gave. Rendering
and ruff are deterministic and `--isolated`, so a component's files are the same bytes in a
batch and alone (tests/test_gen_batching.py).

Each component's format cache (generated/.cache/gen-format/<c>.json: format_python's cache of
its last formatted files, derived data) is written by its own task, from a batch's record or
alone: it is the "its task has run" mark the sibling search looks for, and a rerun whose rendered
text did not change (a new generator fingerprint) takes its formatted text without ruff.
Batching is offered only to a build that starts with no generated component modules
(`batching_wanted`): an edit's one gen task runs alone, exactly as before.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder.layout import GENERATED

if TYPE_CHECKING:
    from autocoder.validate.siblings import Siblings

FORMATTED = f"{GENERATED}/.cache/gen-format"  # <component>.json: its format cache and mark
TIER = "gen"
RECORDS = f"{GENERATED}/.cache/{TIER}-batch"  # where validate/siblings.py keeps a tier's records


def batching_wanted(directory: Path, components_dir: str) -> bool:
    """True when no component module was generated yet (a build from scratch, or after its
    generated sources were deleted): only then are there pending siblings worth a batch."""
    return not (directory / components_dir).is_dir()


def forget_batches(directory: Path) -> None:
    """Delete the records the last build from scratch left (generated/.cache/gen-batch): a
    build that does not batch reads none of them."""
    records = directory / RECORDS
    if records.is_dir():
        shutil.rmtree(records, ignore_errors=True)


def gen_siblings(build: str, members: tuple[tuple[str, tuple[str, ...]], ...]) -> Siblings:
    """The gen:<component> tasks of one build (`members`: each one's name and file_dep)."""
    from autocoder.validate.siblings import Siblings

    return Siblings(TIER, build, members, FORMATTED, rewritten=False)


def format_cache(directory: Path, name: str) -> Path | None:
    """Component `name`'s format cache; None (no cache) when its folder leads out of the project."""
    from autocoder.fsutil import OutsideProjectError, confined

    try:
        return confined(directory, Path(FORMATTED) / f"{name}.json")
    except OutsideProjectError:
        return None


def component_files(directory: Path, name: str, group: Siblings | None = None) -> dict[str, str]:
    """{path under generated/src: formatted text} of component `name`: from another task's
    batch, from a batch this task runs (with up to seven pending siblings: `group`), or
    generated alone; its format cache written either way. Raises GenerationError as a lone
    generation does."""
    from autocoder.codegen.render import write_format_cache
    from autocoder.validate.siblings import run_batched

    cache = format_cache(directory, name)

    def alone() -> dict[str, Any]:
        from autocoder.ir.models import load_slice
        from autocoder.llm.provider import generate_files

        slice_ = load_slice(directory / GENERATED / "ir" / f"{name}.json")
        return {"files": generate_files(directory, slice_, cache)}  # writes the cache

    if group is None:
        files: dict[str, str] = alone()["files"]
        return files
    batch = functools.partial(generate_batch, directory)
    payload = run_batched(directory, group, name, batch, alone)
    if "digests" in payload and cache is not None:  # from a batch
        write_format_cache(cache, {payload["digests"][path]: text for path, text in payload["files"].items()})
    files = payload["files"]
    return files


def generate_batch(directory: Path, names: list[str]) -> dict[str, Any]:
    """{component: {"files": its files, "digests": each file's source_digest}} for each of
    `names` a batch can generate: all rendered, then formatted in one ruff run. A component it
    cannot generate is left out (its task generates it alone); any other failure raises, and
    the whole batch falls back to lone runs. Each component's own task writes its format cache
    (the sibling search takes one as the mark of a component whose task has run)."""
    from autocoder.codegen.component import render_component
    from autocoder.codegen.render import GenerationError, format_python, source_digest
    from autocoder.ir.models import load_slice
    from autocoder.llm.provider import provider_for

    provider = provider_for(directory)  # invalid settings raise: every task then says why, alone
    owner: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name in names:
        slice_ = load_slice(directory / GENERATED / "ir" / f"{name}.json")
        if slice_.component.logic_source == "llm":  # asks the lock or a model, with checks: alone
            continue
        try:
            rendered = render_component(slice_, provider)
        except GenerationError:  # its own task reports it, with the same message
            continue
        for path, text in rendered.items():
            owner[path] = name
            sources[path] = text
    produced: dict[str, dict[str, dict[str, str]]] = {}
    for path, text in format_python(sources).items():
        member = produced.setdefault(owner[path], {"files": {}, "digests": {}})
        member["files"][path] = text
        member["digests"][path] = source_digest(sources[path])
    return produced
