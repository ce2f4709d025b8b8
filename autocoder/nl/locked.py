"""`autocoder new` and autocoder.lock: the accepted draft, frozen beside the blueprints.

A run that ends in blueprints records its draft in the project's lock (the `blueprint` entry)
with the hashes of what it was drafted from: the description with its context files, and the
prompt (version, system prompt, response schema). The answers to its questions are kept as
they were given. A later run whose description, context, prompt and answers match takes the
draft from there and asks no model; `--frozen` accepts nothing else. A rerun without
--answers takes the locked answers: the lock holds the decisions, like the draft.
"""

from __future__ import annotations

import json
from pathlib import Path

from autocoder.canonical import content_hash
from autocoder.llm.lock import LOCK_FILE, BlueprintEntry, LockedAnswer, dump_lock, read_lock
from autocoder.nl import prompt
from autocoder.nl.draft import Ambiguity, Draft, response_schema


def description_hash(description: str, context: list[tuple[str, str]]) -> str:
    return content_hash({"description": description, "context": [list(pair) for pair in context]})


def prompt_hash() -> str:
    """What changes with Autocoder's prompt for `new`, not with the user's input."""
    return content_hash(
        {"version": prompt.PROMPT_VERSION, "system": prompt.SYSTEM_PROMPT, "schema": response_schema()}
    )


def lookup(
    directory: Path, description: str, context: list[tuple[str, str]], answers: dict[str, str] | None
) -> tuple[BlueprintEntry | None, str | None]:
    """(the matching entry, None); (None, why it does not match); (None, None): no entry.
    `answers`: those given with --answers (None: none given, the locked ones hold). A lock that
    cannot be read raises the lock's GenerationError."""
    entry = read_lock(directory).blueprint
    if entry is None:
        return None, None
    stale = f"{directory / LOCK_FILE}: its `blueprint` entry was drafted"
    if entry.description_hash != description_hash(description, context):
        return None, f"{stale} from a different description or context files"
    if entry.prompt_hash != prompt_hash():
        return None, f"{stale} with another prompt (by another Autocoder version)"
    locked = {a.id: a.answer for a in entry.answers}
    if answers is not None and answers != locked:
        changed = sorted(q for q in set(answers) | set(locked) if answers.get(q) != locked.get(q))
        return None, f"{stale} with other answers (to {', '.join(changed)})"
    return entry, None


def locked_draft(entry: BlueprintEntry) -> Draft:
    """The entry's draft (checked by the caller like any draft: a lock is data anyone can edit)."""
    from autocoder.nl.session import parse_draft

    draft, problems = parse_draft(entry.draft)
    if draft is None:
        raise ValueError(f"its `blueprint` draft is not a valid draft: {'; '.join(problems[:5])}")
    return draft


def record(
    directory: Path,
    description: str,
    context: list[tuple[str, str]],
    answered: list[tuple[Ambiguity, str]],
    model: str | None,
    draft: Draft,
) -> Path:
    """Write the accepted draft into DIR/autocoder.lock, keeping its component entries."""
    from autocoder.fsutil import confined, write_if_changed

    entry = BlueprintEntry(
        description_hash=description_hash(description, context),
        prompt_hash=prompt_hash(),
        model=model,
        answers=[
            LockedAnswer(id=f"Q{n}", question=a.question, answer=answer)
            for n, (a, answer) in enumerate(answered, start=1)
        ],
        # key order kept (it is the order of the rendered YAML); ASCII only, one key a line
        draft=json.dumps(draft.model_dump(mode="json"), indent=1, ensure_ascii=True),
    )
    lock = read_lock(directory).model_copy(update={"blueprint": entry})
    path = confined(directory, directory / LOCK_FILE)
    write_if_changed(path, dump_lock(lock).encode())
    return path
