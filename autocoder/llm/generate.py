"""A component's free-form logic: from the lock, else from the cache or a model, always checked.

The order, for one component:
1. the lock file: an entry whose prompt hash matches is used as it is (no model, no network);
   one whose prompt changed is reported by name and then asked again (or refused: --frozen);
2. the conversation with the model, each request looked up in the completion cache first;
   each answer is extracted and checked (autocoder.llm.check); failures go back to the model
   as a repair request, up to `repair_attempts` times;
3. an accepted body is recorded for `autocoder lock`, and every answer of its conversation
   enters the cache; a conversation that ends in failure caches nothing, and its last attempt
   is saved under generated/reports/llm/ for reading.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autocoder.codegen.component import Function
from autocoder.codegen.render import GenerationError
from autocoder.ir.models import Slice
from autocoder.layout import GENERATED
from autocoder.llm import check, prompt
from autocoder.llm.lock import LockEntry, read_lock, record_accepted
from autocoder.llm.settings import LLMSettings
from autocoder.llm.usage import BUILD_ENV, Usage

REPORTS = f"{GENERATED}/reports/llm"


# a candidate logic method -> what is wrong with its module ([]: accepted); from the gen task
Checker = Callable[[Function], list[str]]


def llm_logic(directory: Path, slice_: Slice, settings: LLMSettings, checker: Checker) -> Function:
    """The checked logic method of an LLM component, or a GenerationError naming it."""
    comp = slice_.component
    name = comp.name
    function = prompt.signature(comp)
    messages = prompt.messages(slice_)
    digest = prompt.prompt_hash(slice_)
    usage = Usage()
    try:
        entry = read_lock(directory).components.get(name)
        if entry is not None and entry.prompt_hash == digest:
            usage.locked = 1
            locked = _locked(function, entry, name)
            record_accepted(directory, name, entry)
            return locked
        _may_ask(name, settings, stale=entry is not None)
        body = _converse(directory, name, function, messages, settings, checker, usage)
        record_accepted(directory, name, LockEntry(prompt_hash=digest, model=settings.model, completion=body))
        return check.with_body(function, body)
    finally:
        _write_usage(directory, name, usage, settings)


def _locked(function: Function, entry: LockEntry, name: str) -> Function:
    """The locked body. A lock is data anyone can edit: its body passes the same language
    checks as an answer here; the lint and test tiers then judge the module as always."""
    problems = check.body_problems(function, entry.completion)
    if problems:
        raise GenerationError(
            f"component '{name}': its completion in autocoder.lock fails validation: "
            f"{'; '.join(problems[:5])}; fix: rebuild with an LLM and run `autocoder lock` again"
        )
    return check.with_body(function, entry.completion)


def _may_ask(name: str, settings: LLMSettings, *, stale: bool) -> None:
    why = (
        f"component '{name}': its entry in autocoder.lock was written for a different prompt "
        f"(the component's specification or the prompt version changed)"
        if stale
        else f"component '{name}' needs free-form logic and autocoder.lock has no entry for it"
    )
    if settings.frozen:
        raise GenerationError(
            f"{why}; --frozen never asks a model; fix: build once without --frozen and run `autocoder lock`"
        )
    if settings.provider == "offline" or not settings.model:
        raise GenerationError(
            f"{why}, and no LLM is configured; fix: give it declarative `logic` in architecture.yaml, "
            f"or configure an OpenAI-compatible model (`autocoder build DIR --llm-base-url URL "
            f"--llm-model NAME`, the AUTOCODER_LLM_* variables, or the `llm:` block of "
            f"deployment.yaml), or commit a lock file that has it (`autocoder lock`)"
        )


def _converse(
    directory: Path,
    name: str,
    function: Function,
    messages: list[dict[str, str]],
    settings: LLMSettings,
    checker: Checker,
    usage: Usage,
) -> str:
    from autocoder.llm.cache import CompletionCache, ask
    from autocoder.llm.client import ChatClient, ModelUnavailable

    client = ChatClient(settings)
    cache = CompletionCache(_cache_dir(directory, settings))
    answers: list[tuple[str, dict[str, Any]]] = []  # cached only once a body is accepted
    problems: list[str] = []
    content = ""
    try:
        for _ in range(1 + settings.repair_attempts):
            try:
                key, stored = ask(client, cache, messages, prompt.PROMPT_VERSION, usage)
            except ModelUnavailable as exc:
                raise GenerationError(f"component '{name}': the LLM failed: {exc}") from None
            content = stored.get("content") or ""
            try:
                body = prompt.extract_body(content, function)
            except prompt.Malformed as exc:
                stored = {"malformed": str(exc)}
            if "malformed" in stored:  # never cached: the next request asks again
                problems = [f"malformed answer: {stored['malformed']}"]
                messages = [*messages, prompt.repair_message(problems)]
                continue
            problems = _problems(function, body, stored, checker)
            answers.append((key, {**stored, "problems": problems}))
            if not problems:
                for answer_key, value in answers:
                    cache.put(answer_key, value)
                return body
            messages = [*messages, {"role": "assistant", "content": content}, prompt.repair_message(problems)]
    finally:
        cache.close()
    saved = _save_failure(directory, name, content, problems)
    raise GenerationError(
        f"component '{name}': the LLM's logic failed validation after {1 + settings.repair_attempts} "
        f"attempt(s): {'; '.join(problems[:5])}; the last attempt is in {saved}; fix: make the "
        f"description clearer, raise `repair_attempts`, or give it declarative `logic`"
    )


def _problems(function: Function, body: str, stored: dict[str, Any], checker: Checker) -> list[str]:
    """What is wrong with a body. An answer from the cache carries the verdict of the checks it
    had when it was asked (the cache key holds the whole specification it was checked
    against): only the cheap language checks run again; the build's own lint and test tiers
    still judge the module."""
    problems = check.body_problems(function, body)
    if problems:
        return problems
    cached = stored.get("problems")
    if isinstance(cached, list) and all(isinstance(p, str) for p in cached):
        return list(cached)
    return checker(check.with_body(function, body))


def _cache_dir(directory: Path, settings: LLMSettings) -> Path:
    path = Path(settings.cache_dir)
    return path if path.is_absolute() else directory / path


def _save_failure(directory: Path, name: str, content: str, problems: list[str]) -> str:
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed

    relative = f"{REPORTS}/{name}.failed.json"
    write_if_changed(
        confined(directory, directory / relative),
        canonical_json({"component": name, "last_answer": content, "problems": problems}),
    )
    return relative


def _write_usage(directory: Path, name: str, usage: Usage, settings: LLMSettings) -> None:
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed

    data = {
        "build": os.environ.get(BUILD_ENV),
        "component": name,
        **usage.figures(),
        "cost": settings.cost(usage.tokens_in, usage.tokens_out),
    }
    write_if_changed(confined(directory, directory / REPORTS / f"{name}.usage.json"), canonical_json(data))
