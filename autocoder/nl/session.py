"""One description's conversation with the model, bounded: a draft, at most MAX_ROUNDS rounds
of answers, at most `repair_attempts` repairs; every answer looked up in the completion cache.

Each draft is rendered and compiled with the full Stage 1C analysis (the same diagnostics as
`autocoder check`); its errors, and a capacity estimate no path meets (AC112), go back to the
model as a repair request that quotes them. Answers enter the cache only when the conversation
ends in an outcome (blueprints, questions, or a declared impossibility): a failed one asks
afresh next time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from autocoder.llm.client import ChatClient
from autocoder.llm.settings import LLMSettings
from autocoder.llm.usage import Usage
from autocoder.nl import prompt
from autocoder.nl.draft import Ambiguity, Draft, response_schema
from autocoder.nl.render import render_architecture, render_deployment, target_problems

MIN_TOKENS = 8192  # a whole blueprint pair does not fit the 1024 tokens of a method body
MAX_ROUNDS = 3  # rounds of questions in one conversation; then the draft is judged as it is
BLOCKING_WARNINGS = ("AC112",)  # a demanded throughput no path meets: an impossible topology

# (a round's ambiguities, the number of its first question: Q<n>) -> the user's answers, one
# per question, or None: ask later (questions.yaml)
Answerer = Callable[[list[Ambiguity], int], list[str] | None]


class NlError(RuntimeError):
    """The conversation cannot go on (the model cannot be reached)."""


@dataclass
class Outcome:
    kind: Literal["blueprints", "questions", "impossible", "invalid"]
    draft: Draft | None = None
    files: dict[str, str] = field(default_factory=dict)  # rendered blueprints
    problems: list[str] = field(default_factory=list)  # what the last draft fails
    schema_errors: bool = False  # the problems include shape errors (AC0xx, the draft's own)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""
    # every question of the conversation so far, in order (Q1, Q2...), with its answer
    answered: list[tuple[Ambiguity, str]] = field(default_factory=list)
    # (file, line, as rendered, as corrected) where an error's fix names the replacement
    corrections: list[tuple[str, int, str, str]] = field(default_factory=list)


class DraftClient(ChatClient):
    """The provider's client, asking for a blueprint draft instead of a method body."""

    def parameters(self) -> dict[str, Any]:
        params = super().parameters()
        if self.structured:
            params["response_format"] = {"type": "json_schema", "json_schema": response_schema()}
        return params


def nl_settings(settings: LLMSettings) -> LLMSettings:
    """The settings of code generation with room for a blueprint pair: a max_tokens the user
    set (AUTOCODER_LLM_MAX_TOKENS, the `llm:` block) holds; the default is raised to MIN_TOKENS."""
    if "max_tokens" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"max_tokens": max(settings.max_tokens, MIN_TOKENS)})


class Conversation:
    def __init__(self, settings: LLMSettings, cache: Any) -> None:
        self.settings = nl_settings(settings)
        self.client = DraftClient(self.settings)
        self.cache = cache
        self.usage = Usage()
        self.pending: list[tuple[str, dict[str, Any]]] = []  # answers to cache on an outcome

    def run(self, description: str, context: list[tuple[str, str]], answerer: Answerer) -> Outcome:
        messages = prompt.first_messages(description, context)
        answered: list[tuple[Ambiguity, str]] = []
        rounds = 0
        while True:  # bounded: MAX_ROUNDS rounds of answers, then each turn is a repair or an outcome
            content = self._ask(messages)
            draft, problems = parse_draft(content)
            outcome: Outcome | None = None
            if draft is not None and draft.impossible:
                outcome = Outcome("impossible", draft, reason=draft.impossible)
            elif draft is not None and draft.ambiguities and rounds < MAX_ROUNDS:
                answers = answerer(list(draft.ambiguities), len(answered) + 1)
                if answers is None:
                    outcome = Outcome("questions", draft)
                else:
                    rounds += 1
                    answered += zip(draft.ambiguities, answers, strict=True)
                    questions = [a.question for a in draft.ambiguities]
                    messages = [*messages, _assistant(content), prompt.answers_message(questions, answers)]
                    continue
            elif draft is not None:
                outcome = check_draft(draft)
            else:
                outcome = Outcome("invalid", problems=problems, schema_errors=True)
            outcome.answered = answered
            if outcome.kind != "invalid":
                self._remember()
                return outcome
            if self.usage.repairs >= self.settings.repair_attempts:
                return outcome
            self.usage.repairs += 1
            messages = [
                *messages,
                _assistant(content),
                prompt.repair_message(outcome.problems, outcome.files),
            ]

    def _ask(self, messages: list[dict[str, str]]) -> str:
        from autocoder.llm.cache import ask
        from autocoder.llm.client import ModelUnavailable

        try:
            key, stored = ask(self.client, self.cache, messages, prompt.PROMPT_VERSION, self.usage)
        except ModelUnavailable as exc:
            raise NlError(f"the LLM failed: {exc}") from None
        if "malformed" in stored:  # a failed attempt, never cached
            return json.dumps({"malformed": stored["malformed"]})
        self.pending.append((key, stored))
        return str(stored["content"])

    def _remember(self) -> None:
        for key, value in self.pending:
            self.cache.put(key, value)


def _assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def parse_draft(content: str) -> tuple[Draft | None, list[str]]:
    """The draft in an answer (plain JSON, or a fenced ```json block), or what is wrong."""
    from autocoder.blueprint.source import MAX_BYTES

    if len(content) > 2 * MAX_BYTES:  # checked before any parsing (JSON of both blueprints)
        return None, [f"the answer is larger than {2 * MAX_BYTES} characters"]
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[-1].rsplit("```", 1)[0]
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, [f"the answer is not a JSON object: {exc}"]
    if isinstance(data, dict) and "malformed" in data and len(data) == 1:
        return None, [f"malformed answer: {data['malformed']}"]
    try:
        return Draft.model_validate(data), []
    except ValidationError as exc:
        return None, [
            f"draft.{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:30]
        ]


def check_draft(draft: Draft) -> Outcome:
    """Render the draft and compile it as `autocoder check` would; blueprints when clean."""
    from autocoder.compile import compile_sources
    from autocoder.layout import ARCHITECTURE, DEPLOYMENT

    problems: list[str] = []
    if draft.architecture is None or draft.deployment is None:
        problems.append('draft: "architecture" and "deployment" are required unless asking or impossible')
    if "llm" in (draft.deployment or {}):
        problems.append(
            "deployment: a draft may not set the `llm` block (it chooses the model of code "
            "generation); leave it out"
        )
    files = {ARCHITECTURE: render_architecture(draft), DEPLOYMENT: render_deployment(draft)}
    result = compile_sources(files[ARCHITECTURE].encode(), files[DEPLOYMENT].encode())
    blocking = [d for d in result.diagnostics if d.is_error or d.code in BLOCKING_WARNINGS]
    warnings = [_line(d) for d in result.diagnostics if d not in blocking]
    problems += [_line(d) for d in blocking]
    if not blocking:
        problems += target_problems(draft)
    schema = any(d.code.startswith("AC0") for d in blocking)
    if problems or result.ir is None:
        outcome = Outcome(
            "invalid", draft, files, problems or ["the blueprints do not compile"], schema, warnings
        )
        outcome.corrections = corrections(blocking, files)
        return outcome
    return Outcome("blueprints", draft, files, warnings=warnings)


SUGGESTED = re.compile(r"did you mean '([^']{1,200})'\?")
TOKEN = re.compile(r"[A-Za-z0-9_.\-]+")


def corrections(diagnostics: list[Any], files: dict[str, str]) -> list[tuple[str, int, str, str]]:
    """The rendered lines that an error's fix corrects ("did you mean 'store'?" for the word at
    its column), as rendered and corrected: the example a user can follow for each of them."""
    found = []
    for d in diagnostics:
        suggested = SUGGESTED.search(d.fix)
        lines = files.get(d.file, "").splitlines()
        if suggested is None or not 0 < d.line <= len(lines):
            continue
        line = lines[d.line - 1]
        token = TOKEN.match(line, max(d.col - 1, 0))
        if token is None:
            continue
        fixed = line[: token.start()] + suggested.group(1) + line[token.end() :]
        found.append((d.file, d.line, line, fixed))
    return found


def _line(d: Any) -> str:
    text = f"{d.file}:{d.line}:{d.col}: {d.severity} {d.code}: {d.message}"
    return text + (f"; expected {d.expected}" if d.expected else "") + (f"; fix: {d.fix}" if d.fix else "")
