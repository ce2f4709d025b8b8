"""`autocoder new "DESCRIPTION"`: the blueprints of a description, its questions, or why not.

Exit codes: 0 blueprints written (requirements nothing addresses are a printed warning, not a
failure); 2 the request is impossible, the draft stays invalid after the repairs, or the
command line, an input file or the output folder is wrong; 3 questions to answer were written
to questions.yaml (stdin is not a terminal; answer them and rerun with --answers); 1 the model
could not be reached, or --frozen and autocoder.lock has no draft for this description, context
and answers.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autocoder.layout import ARCHITECTURE, DEPLOYMENT
from autocoder.llm.usage import Usage
from autocoder.nl.draft import Ambiguity
from autocoder.nl.session import Answerer, Conversation, NlError, Outcome

QUESTIONS = "questions.yaml"
REQUIREMENTS = "requirements.json"
EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_QUESTIONS = 0, 1, 2, 3
QUESTION_ID = re.compile(r"^Q[1-9][0-9]{0,2}$")
MAX_DESCRIPTION = 100_000  # characters of description, and of each context file
EXAMPLE_HINT = (
    "a valid pair to start from: `autocoder init DIR` writes one, and examples/orders in the "
    "Autocoder repository is a complete system; docs/blueprint.md is the reference"
)


class InputError(ValueError):
    """A description, context file, answers file or output folder that cannot be used."""


NO_LLM = (
    "no LLM is configured; fix: name an OpenAI-compatible server and model, with `--llm-base-url URL "
    "--llm-model NAME`, or the AUTOCODER_LLM_BASE_URL and AUTOCODER_LLM_MODEL variables "
    "(AUTOCODER_LLM_API_KEY for a key), as for code generation"
)


def run_new(
    description: str,
    context_files: list[Path],
    out: Path,
    settings: Any,
    *,
    force: bool = False,
    answers_files: Sequence[Path] = (),
    interactive: bool = False,
    ask: Callable[[str], str] = input,
) -> int:
    """The command's work once the settings are known; prints what it did, returns the exit code.

    The draft comes from autocoder.lock when its `blueprint` entry matches the description,
    context and answers; otherwise (never with --frozen) from a conversation with the model."""
    from autocoder.codegen.render import GenerationError
    from autocoder.nl import locked

    try:
        context = _context(context_files)
        if not description.strip() or len(description) > MAX_DESCRIPTION:
            raise InputError(f"the description must be 1 to {MAX_DESCRIPTION} characters")
        existing = [name for name in (ARCHITECTURE, DEPLOYMENT) if (out / name).exists()]
        if existing and not force:
            raise InputError(
                f"{out}: {', '.join(existing)} exist(s); blueprints are never overwritten; fix: "
                f"choose another -o DIR, or pass --force"
            )
        given = Answers.read(answers_files)
        entry, stale = locked.lookup(out, description, context, given.answers if answers_files else None)
    except (InputError, GenerationError) as exc:
        print(f"autocoder new: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if entry is not None:
        return _from_lock(entry, out)
    if settings.frozen:
        why = stale or f"{out / locked.LOCK_FILE} has no `blueprint` entry"
        print(
            f"autocoder new: --frozen never asks a model, and {why}; fix: run the same command without "
            f"--frozen (it records the accepted draft in {locked.LOCK_FILE}), then commit that file",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if settings.provider == "offline" or not settings.model:
        print(f"autocoder new: {NO_LLM}", file=sys.stderr)
        return EXIT_INVALID
    if stale:
        print(f"autocoder new: {stale}; asking the model")
    outcome = _converse(description, context, out, settings, given.answerer(interactive, ask))
    if isinstance(outcome, int):
        return outcome
    code = _finish(outcome, out)
    if outcome.kind == "blueprints" and outcome.draft is not None:
        path = locked.record(out, description, context, outcome.answered, settings.model, outcome.draft)
        print(f"recorded the accepted draft in {path} (commit it: `--frozen` reruns need no model)")
    return code


def _converse(
    description: str, context: list[tuple[str, str]], out: Path, settings: Any, answerer: Answerer
) -> Outcome | int:
    """The conversation's outcome, or the exit code of a conversation that could not end."""
    from autocoder.llm.cache import CompletionCache

    cache_dir = Path(settings.cache_dir)
    cache = CompletionCache(cache_dir if cache_dir.is_absolute() else out / cache_dir)
    conversation = Conversation(settings, cache)
    try:
        return conversation.run(description, context, answerer)
    except NlError as exc:
        print(f"autocoder new: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except InputError as exc:
        print(f"autocoder new: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        cache.close()
        print(format_usage(conversation.usage))


def _from_lock(entry: Any, out: Path) -> int:
    """The blueprints of the locked draft, checked again like any draft (a lock is data anyone
    can edit, and the analysis may have become stricter since)."""
    from autocoder.llm.usage import Usage
    from autocoder.nl import locked
    from autocoder.nl.session import check_draft

    where = out / locked.LOCK_FILE
    try:
        outcome = check_draft(locked.locked_draft(entry))
    except ValueError as exc:
        outcome = Outcome("invalid", problems=[str(exc)])
    print(format_usage(Usage(locked=1)))
    if outcome.kind != "blueprints":
        print(f"autocoder new: {where}: its `blueprint` draft fails the checks:", file=sys.stderr)
        for problem in outcome.problems[:30]:
            print(f"  {printable(problem)}", file=sys.stderr)
        print(
            f"autocoder new: fix: delete the `blueprint` entry of {where} and run `autocoder new` "
            f"again without --frozen",
            file=sys.stderr,
        )
        return EXIT_INVALID
    print(f"autocoder new: the draft recorded in {where} matches the description and answers")
    return _write_blueprints(outcome, out)


def format_usage(usage: Usage) -> str:
    locked = f"{usage.locked} from the lock, " if usage.locked else ""
    return (
        f"LLM: {usage.calls} call(s), {usage.cache_hits} cache hit(s), {locked}{usage.tokens_in} tokens "
        f"in, {usage.tokens_out} tokens out, {usage.repairs} repair(s)"
    )


def _context(files: list[Path]) -> list[tuple[str, str]]:
    context = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--context {path}: cannot be read as UTF-8 text: {exc}") from None
        if len(text) > MAX_DESCRIPTION:
            raise InputError(f"--context {path}: larger than {MAX_DESCRIPTION} characters; pass an excerpt")
        context.append((path.name, text))
    return context


@dataclass
class Answers:
    """The answers of the --answers files, merged (a later file wins), and which question ids
    the files list at all (answered or not): a round of questions none of them lists is a new
    round, to be asked (on a terminal) or written to questions.yaml."""

    answers: dict[str, str] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)

    @classmethod
    def read(cls, paths: Sequence[Path]) -> Answers:
        merged = cls(files=list(paths))
        for path in paths:
            answers, listed = read_answers(path)
            merged.answers.update(answers)
            merged.listed |= listed
        return merged

    def from_files(self, ambiguities: list[Ambiguity], first: int) -> list[str] | None:
        ids = [f"Q{n}" for n in range(first, first + len(ambiguities))]
        if not self.listed.intersection(ids):
            return None
        missing = [q for q in ids if not self.answers.get(q)]
        if missing:
            named = ", ".join(str(p) for p in self.files)
            raise InputError(
                f"{named}: no answer to {', '.join(missing)}; fix: fill in every `answer:` of "
                f"{QUESTIONS} and pass it again"
            )
        return [self.answers[q] for q in ids]

    def answerer(self, interactive: bool, ask: Callable[[str], str]) -> Answerer:
        """From the files; a round they do not list from the terminal, or None: ask later."""

        def answer(ambiguities: list[Ambiguity], first: int) -> list[str] | None:
            answers = self.from_files(ambiguities, first)
            if answers is None and interactive:
                return [_ask_one(n, a, ask) for n, a in enumerate(ambiguities, start=first)]
            return answers

        return answer


def printable(text: str) -> str:
    """The model's text as shown on a terminal: control characters (escape sequences that
    could rewrite the screen) as their repr, everything else as it is."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _ask_one(number: int, ambiguity: Ambiguity, ask: Callable[[str], str]) -> str:
    print(f"Q{number}: {printable(ambiguity.question)}")
    for letter, option in zip("abcdefghij", ambiguity.options, strict=False):
        print(f"  {letter}) {printable(option)}")
    for _ in range(5):
        try:
            reply = ask("> ").strip()
        except EOFError:  # the terminal closed
            break
        if reply in "abcdefghij"[: len(ambiguity.options)] and len(reply) == 1:
            return ambiguity.options["abcdefghij".index(reply)]
        if reply:
            return reply[:2000]
    raise InputError(f"Q{number} was not answered")


def read_answers(path: Path) -> tuple[dict[str, str], set[str]]:
    """(Q<n> -> answer, the Q<n> the file lists), from questions.yaml with its `answer:` fields
    filled in, or from a plain mapping `Q1: answer`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"--answers {path}: cannot be read: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = {q.get("id"): q.get("answer") for q in data["questions"] if isinstance(q, dict)}
    if not isinstance(data, dict):
        raise InputError(f"--answers {path}: expected the {QUESTIONS} written by `autocoder new`, answered")
    listed = {str(k) for k in data if QUESTION_ID.match(str(k))}
    answers = {str(k): str(v)[:2000] for k, v in data.items() if isinstance(v, str | int | float)}
    return {k: v for k, v in answers.items() if k in listed and v}, listed


def _finish(outcome: Outcome, out: Path) -> int:
    if outcome.kind == "impossible":
        print(f"autocoder new: no system can meet this request: {printable(outcome.reason)}", file=sys.stderr)
        return EXIT_INVALID
    if outcome.kind == "questions":
        return _write_questions(outcome, out)
    if outcome.kind == "invalid":
        return _invalid(outcome)
    return _write_blueprints(outcome, out)


def _write_questions(outcome: Outcome, out: Path) -> int:
    """questions.yaml: the earlier rounds' questions with their answers, then the new ones."""
    from autocoder.fsutil import atomic_write

    assert outcome.draft is not None
    asked: list[tuple[Ambiguity, str | None]] = [
        *outcome.answered,
        *((a, None) for a in outcome.draft.ambiguities),
    ]
    questions = [
        {"id": f"Q{n}", "question": a.question, "options": list(a.options), "answer": answer}
        for n, (a, answer) in enumerate(asked, start=1)
    ]
    text = (
        "# The description leaves these choices open. Fill in each `answer:` (one of the options,\n"
        "# or your own words), then rerun the same `autocoder new` command with --answers FILE.\n"
        + yaml.safe_dump({"questions": questions}, sort_keys=False, allow_unicode=True, width=100)
    )
    path = out / QUESTIONS
    atomic_write(path, text.encode())
    new = len(outcome.draft.ambiguities)
    earlier = f" (after {len(outcome.answered)} answered, kept in the file)" if outcome.answered else ""
    print(f"autocoder new: {new} question(s) to answer in {path}{earlier}; then rerun with --answers {path}")
    return EXIT_QUESTIONS


def _invalid(outcome: Outcome) -> int:
    print("autocoder new: the draft is still invalid after the repairs:", file=sys.stderr)
    for problem in outcome.problems[:30]:
        print(f"  {printable(problem)}", file=sys.stderr)
    if outcome.corrections:
        print("autocoder new: corrected, where the checks name the fix:", file=sys.stderr)
        for file, line, rendered, fixed in outcome.corrections[:30]:
            where = f"  {file}:{line}:"
            print(f"{where} {printable(rendered)}", file=sys.stderr)
            print(f"{' ' * (len(where) - 2)}-> {printable(fixed)}", file=sys.stderr)
    if outcome.schema_errors:
        print(f"autocoder new: {EXAMPLE_HINT}", file=sys.stderr)
    else:
        print(
            "autocoder new: the topology the description asks for fails the analysis above (an "
            "impossible topology); fix: relax the requirements it names, or write the blueprints by hand",
            file=sys.stderr,
        )
    return EXIT_INVALID


def _write_blueprints(outcome: Outcome, out: Path) -> int:
    from autocoder.fsutil import atomic_write
    from autocoder.nl.render import traceability, traceability_json

    assert outcome.draft is not None
    for name, text in sorted(outcome.files.items()):
        atomic_write(out / name, text.encode())
    atomic_write(out / REQUIREMENTS, traceability_json(outcome.draft))
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    trace = traceability(outcome.draft)
    print(
        f"wrote {out / ARCHITECTURE}, {out / DEPLOYMENT} and {out / REQUIREMENTS} "
        f"({len(trace['requirements'])} requirement(s)); next: `autocoder check {out}`"
    )
    if trace["unaddressed"]:
        print(
            f"warning: requirement(s) nothing in the blueprints addresses: {', '.join(trace['unaddressed'])} "
            f"(see {out / REQUIREMENTS})",
            file=sys.stderr,
        )
    return EXIT_OK
