"""Batching the gen:<component> tasks of a build from scratch (issue 13, full builds).

Why: a gen task loads its IR slice, renders two templates (~1 ms) and starts `ruff format` on
the two files it made; starting ruff (a process, its threads) is most of the task's CPU
(~12 of ~18 ms). In a build from scratch, one task renders up to eight pending components and
formats all their files in ONE ruff run; their own tasks then write their files from its record
without loading, rendering or formatting anything.

The protocol is every batching tier's (validate/siblings.py `run_batched`): a task claims
pending siblings (their IR slices written, not claimed yet), and each one's record is keyed by
the sha256 of its task's exact inputs (its file_dep: the IR slice, the generator fingerprint,
the lock file, the templates); its own task uses the record only when its inputs still hash the
same, else generates it alone. What a batch cannot generate (an LLM-written component, a
generation error, a batch whose ruff run failed) gets no record: its own task generates it
alone and fails, if it does, with the message it always gave. Rendering and ruff are
deterministic and `--isolated`, so a component's files are the same bytes in a batch and alone
(tests/test_gen_batching.py).

Batching is offered only to a build that starts with no generated component module
(`batching_wanted`): there every component is pending until a task claims it, so a gen task
leaves no result file for the sibling search to find. Any other build (an edit) generates each
component alone, exactly as before.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from autocoder.layout import GENERATED

if TYPE_CHECKING:
    from autocoder.validate.siblings import Siblings

TIER = "gen"
RECORDS = f"{GENERATED}/.cache/{TIER}-batch"  # where validate/siblings.py keeps a tier's records
# Siblings.results: a folder no gen task writes to (see above), so that every component whose
# inputs exist counts as pending; the claims keep two tasks from generating one component
NO_RESULTS = f"{RECORDS}/no-results"


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

    return Siblings(TIER, build, members, NO_RESULTS, rewritten=False)


def component_files(directory: Path, name: str, group: Siblings | None = None) -> dict[str, str]:
    """{path under generated/src: formatted text} of component `name`: from another task's
    batch, from a batch this task runs (with up to seven pending siblings: `group`), or
    generated alone. Raises GenerationError as a lone generation does."""

    def alone() -> dict[str, str]:
        from autocoder.ir.models import load_slice
        from autocoder.llm.provider import generate_files

        return generate_files(directory, load_slice(directory / GENERATED / "ir" / f"{name}.json"))

    if group is None:  # an edit: exactly the lone generation (importing nothing more)
        return alone()
    from autocoder.validate.siblings import run_batched

    batch = functools.partial(generate_batch, directory)
    files: dict[str, str] = run_batched(directory, group, name, batch, alone)
    return files


def generate_batch(directory: Path, names: list[str]) -> dict[str, dict[str, str]]:
    """{component: its files} for each of `names` a batch can generate: all rendered, then
    formatted in one ruff run. A component it cannot generate is left out (its task generates
    it alone); any other failure raises, and the whole batch falls back to lone runs."""
    from autocoder.codegen.component import render_component
    from autocoder.codegen.render import GenerationError, format_python
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
    produced: dict[str, dict[str, str]] = {}
    for path, text in format_python(sources).items():
        produced.setdefault(owner[path], {})[path] = text
    return produced
