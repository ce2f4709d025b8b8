"""`autocoder new "DESCRIPTION"`: the blueprints of a description, its questions, or why not.

Exit codes: 0 blueprints written (requirements nothing addresses are a printed warning, not a
failure); 2 the request is impossible, the draft stays invalid after the repairs, or the
command line, an input file or the output folder is wrong; 3 questions to answer were written
to questions.yaml (stdin is not a terminal; answer them and rerun with --answers); 1 the model
could not be reached.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from autocoder.layout import ARCHITECTURE, DEPLOYMENT
from autocoder.nl.draft import Ambiguity
from autocoder.nl.session import Answerer, Conversation, NlError, Outcome, Usage

QUESTIONS = "questions.yaml"
REQUIREMENTS = "requirements.json"
EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_QUESTIONS = 0, 1, 2, 3
MAX_DESCRIPTION = 100_000  # characters of description, and of each context file
EXAMPLE_HINT = (
    "a valid pair to start from: `autocoder init DIR` writes one, and examples/orders in the "
    "Autocoder repository is a complete system; docs/blueprint.md is the reference"
)


class InputError(ValueError):
    """A description, context file, answers file or output folder that cannot be used."""


def run_new(
    description: str,
    context_files: list[Path],
    out: Path,
    settings: Any,
    *,
    force: bool = False,
    answers_file: Path | None = None,
    interactive: bool = False,
    ask: Callable[[str], str] = input,
) -> int:
    """The command's work once the settings are known; prints what it did, returns the exit code."""
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
        answerer = _answerer(answers_file, interactive, ask)
    except InputError as exc:
        print(f"autocoder new: {exc}", file=sys.stderr)
        return EXIT_INVALID
    from autocoder.llm.cache import CompletionCache

    cache_dir = Path(settings.cache_dir)
    cache = CompletionCache(cache_dir if cache_dir.is_absolute() else out / cache_dir)
    conversation = Conversation(settings, cache)
    try:
        outcome = conversation.run(description, context, answerer)
    except NlError as exc:
        print(f"autocoder new: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except InputError as exc:
        print(f"autocoder new: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        cache.close()
        print(format_usage(conversation.usage))
    return _finish(outcome, out)


def format_usage(usage: Usage) -> str:
    return (
        f"LLM: {usage.calls} call(s), {usage.cache_hits} cache hit(s), {usage.tokens_in} tokens in, "
        f"{usage.tokens_out} tokens out, {usage.repairs} repair(s)"
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


def _answerer(answers_file: Path | None, interactive: bool, ask: Callable[[str], str]) -> Answerer:
    if answers_file is not None:
        given = read_answers(answers_file)

        def from_file(ambiguities: list[Ambiguity]) -> list[str]:
            missing = [f"Q{n}" for n in range(1, len(ambiguities) + 1) if not given.get(f"Q{n}")]
            if missing:
                raise InputError(
                    f"{answers_file}: no answer to {', '.join(missing)}; fix: fill in every `answer:` "
                    f"of {QUESTIONS} and pass it again"
                )
            return [given[f"Q{n}"] for n in range(1, len(ambiguities) + 1)]

        return from_file
    if interactive:
        return lambda ambiguities: [_ask_one(n, a, ask) for n, a in enumerate(ambiguities, start=1)]
    return lambda ambiguities: None


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


def read_answers(path: Path) -> dict[str, str]:
    """Q<n> -> answer, from questions.yaml with its `answer:` fields filled in, or from a plain
    mapping `Q1: answer`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"--answers {path}: cannot be read: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = {q.get("id"): q.get("answer") for q in data["questions"] if isinstance(q, dict)}
    if not isinstance(data, dict):
        raise InputError(f"--answers {path}: expected the {QUESTIONS} written by `autocoder new`, answered")
    answers = {str(k): str(v)[:2000] for k, v in data.items() if isinstance(v, (str, int, float)) and str(v)}
    return answers


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
    from autocoder.fsutil import atomic_write

    assert outcome.draft is not None
    questions = [
        {"id": f"Q{n}", "question": a.question, "options": list(a.options), "answer": None}
        for n, a in enumerate(outcome.draft.ambiguities, start=1)
    ]
    text = (
        "# The description leaves these choices open. Fill in each `answer:` (one of the options,\n"
        "# or your own words), then rerun the same `autocoder new` command with --answers FILE.\n"
        + yaml.safe_dump({"questions": questions}, sort_keys=False, allow_unicode=True, width=100)
    )
    path = out / QUESTIONS
    atomic_write(path, text.encode())
    print(
        f"autocoder new: {len(questions)} question(s) to answer in {path}; then rerun with --answers {path}"
    )
    return EXIT_QUESTIONS


def _invalid(outcome: Outcome) -> int:
    print("autocoder new: the draft is still invalid after the repairs:", file=sys.stderr)
    for problem in outcome.problems[:30]:
        print(f"  {printable(problem)}", file=sys.stderr)
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
