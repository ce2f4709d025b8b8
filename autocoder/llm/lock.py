"""autocoder.lock: the frozen completions of a green build, committed beside the blueprints.

Like poetry.lock, it is written by a command (`autocoder lock DIR`) and read by every build:
a component whose prompt hash matches its entry takes the locked body without asking any
model, so a checkout with the lock and no LLM regenerates byte-identical code. YAML with sorted
keys and bodies as literal blocks, so a change reads as a diff of code.

`autocoder new` records its accepted draft in the same file (the `blueprint` entry), so that
the blueprints of a description come back without a model (autocoder.nl.locked); `autocoder
lock` keeps that entry.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autocoder.blueprint.source import MAX_BYTES
from autocoder.codegen.render import GenerationError
from autocoder.layout import GENERATED, LOCK_FILE

ACCEPTED = f"{GENERATED}/llm"  # per component: the body the last build accepted, to lock
LOCK_VERSION = 1
HEADER = (
    "# autocoder.lock: the LLM completions of the last green build, frozen by `autocoder lock`.\n"
    "# Commit it. A build takes a component's completion from here while its prompt hash matches.\n"
    "# `blueprint`: the draft `autocoder new` accepted, reused while its description and answers match.\n"
)


class LockEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    model: str | None = None
    completion: str = Field(max_length=100_000)


class LockedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^Q[1-9][0-9]{0,2}$")
    question: str = Field(max_length=2000)
    answer: str = Field(max_length=2000)


class BlueprintEntry(BaseModel):
    """`autocoder new`'s accepted draft and what it was drafted from: the hashes of the
    description with its context files and of the prompt, and the answers to its questions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    prompt_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    model: str | None = None
    answers: list[LockedAnswer] = Field(default_factory=list, max_length=100)
    draft: str = Field(max_length=2 * MAX_BYTES)  # the accepted draft, JSON


class LockFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = LOCK_VERSION
    components: dict[str, LockEntry] = Field(default_factory=dict)
    blueprint: BlueprintEntry | None = None


def read_lock(directory: Path) -> LockFile:
    """The project's lock (empty when there is none); a bad one is an error naming the file."""
    path = directory / LOCK_FILE
    if not path.is_file():
        return LockFile()
    try:
        data = yaml.safe_load(path.read_text())
        return LockFile.model_validate(data if data is not None else {})
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GenerationError(
            f"{path}: cannot be read: {exc}; fix: regenerate it with `autocoder lock`"
        ) from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GenerationError(
            f"{path}: {where}: {first['msg']}; fix: regenerate it with `autocoder lock`"
        ) from None


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_lock(lock: LockFile) -> str:
    data = lock.model_dump(mode="json")
    if data["blueprint"] is None:
        del data["blueprint"]
    return HEADER + yaml.dump(data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=1000)


def record_accepted(directory: Path, name: str, entry: LockEntry) -> None:
    """What `autocoder lock` will freeze for this component (written by its gen task)."""
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed

    path = confined(directory, directory / ACCEPTED / f"{name}.json")
    write_if_changed(path, canonical_json(entry.model_dump(mode="json")))


def accepted_entries(directory: Path, names: list[str]) -> dict[str, LockEntry]:
    entries = {}
    for name in names:
        path = directory / ACCEPTED / f"{name}.json"
        if path.is_file():
            entries[name] = LockEntry.model_validate(json.loads(path.read_text()))
    return entries


def freeze(directory: Path) -> tuple[Path, list[str]]:
    """Write the lock from the last build, which must have been green; (path, components).

    Green: the last `autocoder build` succeeded (generated/reports/llm/last-build.json), or,
    for a build run by plain doit, the report task's summary is ok. Each LLM component of the
    current IR must have an accepted body for its current prompt."""
    from autocoder.fsutil import confined, write_if_changed
    from autocoder.ir.models import load_ir, load_slice
    from autocoder.llm.prompt import prompt_hash
    from autocoder.llm.usage import LAST_BUILD

    last, summary = directory / LAST_BUILD, directory / GENERATED / "reports" / "summary.json"
    status = last if last.is_file() else summary
    try:
        green = bool(json.loads(status.read_text()).get("ok"))
        ir = load_ir(directory / GENERATED / "ir.v1.json")
    except (OSError, ValueError):  # a pydantic ValidationError is a ValueError
        raise GenerationError(
            f"{directory}: no finished build to lock; fix: run `autocoder build {directory}` first"
        ) from None
    if not green:
        raise GenerationError(f"{status}: the last build was not green; fix the failures, rebuild, then lock")
    names = sorted(c.name for c in ir.components if c.logic_source == "llm")
    entries = accepted_entries(directory, names)
    current = {name: prompt_hash(load_slice(directory / GENERATED / "ir" / f"{name}.json")) for name in names}
    missing = [n for n in names if n not in entries or entries[n].prompt_hash != current[n]]
    if missing:
        raise GenerationError(
            f"no accepted completion for the current prompt of {', '.join(missing)}; fix: rebuild "
            f"with an LLM, then lock"
        )
    try:
        blueprint = read_lock(directory).blueprint  # `autocoder new`'s entry stays
    except GenerationError:
        blueprint = None  # an unreadable lock is replaced
    path = confined(directory, directory / LOCK_FILE)
    write_if_changed(path, dump_lock(LockFile(components=entries, blueprint=blueprint)).encode())
    return path, names
