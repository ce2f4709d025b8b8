"""Analysis findings that are the user's choice, not the model's mistake.

Some Stage 1C diagnostics have a fix that is a choice between alternatives: an aggregator on
SQLite with 3 replicas can run one replica or keep its windows in PostgreSQL; an ingress with
no auth under a policy that demands it can take an API key or be declared public. Which one
is right is the user's decision. Sending such a finding to the model as a "repair" lets the
model decide silently, so `CHOICES` (diagnostic code -> question and options, as data) turns
it into a question instead, naming the requirements the draft says the parts serve:

- the user's own text (description, context files, earlier answers) may settle it: an option
  it states (`stated`) is taken, an option it rules out (`ruled_out`) is dropped; when it rules
  out every option the requirements contradict each other, an impossible topology;
- an option with `edits` is applied to the draft by Autocoder (no model call); an answer in
  the user's own words, or an option without edits, goes to the model as an answer.

A throughput no path can meet (AC112) is judged by the numbers: when the user stated both the
demanded rate and the rate limit that caps it, no repair can help (impossible, fail fast);
when the model chose the limit or the target, the finding is the model's mistake (a repair).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autocoder.nl.draft import Ambiguity, Draft
from autocoder.nl.render import serving

NUMBER_WORDS = {
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
}
AUTH_WORDS = r"api[ _-]?keys?\b|authenticat|\bauth\b|\btokens?\b|credential"
PUBLIC_WORDS = r"\bpublic(?:ly)?\b|anonymous|unauthenticated|without (?:auth|a key|keys|login)|\bno auth"


class Edit(BaseModel):
    """A change to the draft: `set` the value at `path`, or `append` it to the list there.
    Path steps and string values are templates ({component}, {port}... from the finding); a
    step into a list selects the item whose `name` is that step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["set", "append"]
    file: Literal["architecture", "deployment"]
    path: tuple[str, ...]
    value: Any


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str  # a template
    stated: str | None = None  # a regex (template) over the user's text that chooses this option
    ruled_out: str | None = None  # a regex (template) over the user's text that excludes it
    edits: tuple[Edit, ...] = ()  # none: the model applies the answer


class Choice(BaseModel):
    """One diagnostic whose fix is the user's choice: its message parsed by `finding` (named
    groups become template fields), the question, the parts whose requirements it names, and
    the options (`upstreams`: one option per output port that could feed the unbound input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    finding: str  # a regex over the diagnostic's message
    question: str  # a template
    targets: tuple[str, ...]  # templates of `serves` targets: component names, policy.<section>...
    options: Annotated[tuple[Option, ...], Field(max_length=10)] = ()
    options_from: Literal["upstreams"] | None = None
    user_stated: tuple[str, ...] = ()  # a choice only if the user stated these numbers (ms)


def _sqlite_options(one: Option) -> tuple[Option, ...]:
    postgres = Option(
        label="keep {replicas} replicas and move the state to PostgreSQL (store.backend: postgres, "
        "its DSN in the secret `database`, key DATABASE_URL)",
        stated=r"postgres",
        ruled_out=r"sqlite",
        edits=(
            Edit(
                op="set",
                file="deployment",
                path=("store",),
                value={"backend": "postgres", "dsn_secret": {"name": "database", "key": "DATABASE_URL"}},
            ),
        ),
    )
    return (one, postgres)


REPLICAS_STATED = r"\b(?:{replicas}|{replicas_word})\s+(?:replicas|instances|copies|nodes|pods)"
ONE_STATED = r"\b(?:one|a single|single|1)\s+(?:replica|instance|process|node|pod)\b"


def _component_replicas_choice(code: str, finding: str, question: str) -> Choice:
    """A component whose state is in SQLite would run several replicas (AC111 stores, AC129
    aggregators): one replica, or its state in PostgreSQL."""
    return Choice(
        code=code,
        finding=finding,
        question=question,
        targets=("{component}", "deployment.replicas", "deployment.store"),
        options=_sqlite_options(
            Option(
                label="run one replica of '{component}' and keep SQLite",
                stated=ONE_STATED,
                ruled_out=REPLICAS_STATED,
                edits=(Edit(op="set", file="deployment", path=("replicas", "{component}"), value=1),),
            )
        ),
    )


CHOICES: tuple[Choice, ...] = (
    _component_replicas_choice(
        "AC129",
        finding=r"^aggregator '(?P<component>[a-z0-9_]+)' keeps its windows in SQLite but would run "
        r"(?P<replicas>\d+) replicas",
        question="The aggregator '{component}' would run {replicas} replicas, but its windows are kept in "
        "SQLite, which one process owns. Which should give way?",
    ),
    _component_replicas_choice(
        "AC111",
        finding=r"^store '(?P<component>[a-z0-9_]+)' uses embedded SQLite but would run "
        r"(?P<replicas>\d+) replicas",
        question="The store '{component}' would run {replicas} replicas, but it keeps its data in SQLite, "
        "which one process owns. Which should give way?",
    ),
    Choice(
        code="AC130",
        finding=r"^environment '(?P<environment>[a-z0-9-]+)' would run (?P<replicas>\d+) replicas",
        question="The environment '{environment}' would run {replicas} replicas of the system, but its "
        "database is an SQLite file, which one process owns. Which should give way?",
        targets=("deployment.environments", "deployment.store"),
        options=_sqlite_options(
            Option(
                label="run one replica in '{environment}' and keep SQLite",
                stated=ONE_STATED,
                ruled_out=REPLICAS_STATED,
                edits=(
                    Edit(
                        op="set",
                        file="deployment",
                        path=("environments", "{environment}", "replicas"),
                        value=1,
                    ),
                ),
            )
        ),
    ),
    Choice(
        code="AC109",
        finding=r"^ingress '(?P<component>[a-z0-9_]+)' has no auth",
        question="Must clients of the ingress '{component}' authenticate? The policy requires auth on "
        "every ingress, and '{component}' has none.",
        targets=("{component}", "policy.security"),
        options=(
            Option(
                label="yes: clients send an API key (security.auth: api_key on '{component}')",
                stated=AUTH_WORDS,
                edits=(
                    Edit(
                        op="set",
                        file="architecture",
                        path=("components", "{component}", "security", "auth"),
                        value="api_key",
                    ),
                ),
            ),
            Option(
                label="no: the ingress is public (policy.security.require_auth_on_ingress: false)",
                stated=PUBLIC_WORDS,
                edits=(
                    Edit(
                        op="set",
                        file="architecture",
                        path=("policy", "security", "require_auth_on_ingress"),
                        value=False,
                    ),
                ),
            ),
        ),
    ),
    Choice(
        code="AC103",
        finding=r"^input (?P<component>[a-z0-9_]+)\.(?P<port>[a-z0-9_]+) is bound to nothing",
        question="Where should '{component}' get its {schema} messages ({component}.{port}) from? More "
        "than one part of the system sends them.",
        targets=("{component}",),
        options_from="upstreams",
    ),
    Choice(
        code="AC112",
        finding=r"^path (?P<path>.+) sums to (?P<total>[0-9.e+]+) ms of per-message budgets, above "
        r"p95_ms (?P<target>[0-9.e+]+)",
        question="The p95 asked for is {target} ms, but the components on the path {path} need "
        "{total_up} ms by their per-message budgets. Which should give way?",
        targets=("policy.performance",),
        user_stated=("target",),
        options=(
            Option(
                label="relax the target to {total_up} ms (policy.performance.p95_ms)",
                edits=(
                    Edit(
                        op="set",
                        file="architecture",
                        path=("policy", "performance", "p95_ms"),
                        value="{total_up}",
                    ),
                ),
            ),
            Option(
                label="keep {target} ms: declare tighter budgets (budget.p95_ms) on the components of "
                "that path, which the bench tier then holds each of them to",
            ),
        ),
    ),
)

THROUGHPUT = re.compile(
    r"^path (?P<path>.+) is limited to (?P<rate>[0-9.e+]+) msg/s by the rate limit of "
    r"'(?P<bottleneck>[a-z0-9_]+)', below throughput_rps (?P<target>[0-9.e+]+)"
)


@dataclass
class Judgement:
    draft: Draft  # with every decided choice's edits applied
    impossible: str | None = None
    questions: list[Ambiguity] = field(default_factory=list)  # choices the user must make
    to_model: list[tuple[str, str]] = field(default_factory=list)  # (question, answer) for the model
    notes: list[str] = field(default_factory=list)  # choices the user's text settled
    hints: dict[int, str] = field(default_factory=dict)  # diagnostic index -> what the repair must keep


def judge(draft: Draft, diagnostics: list[Any], said: str, decided: dict[str, str]) -> Judgement:
    """What to do about the draft's findings that are choices. `said`: the user's own text
    (description, context, answers); `decided`: question -> the user's answer so far."""
    said = said.lower()
    verdict = Judgement(draft)
    for index, diagnostic in enumerate(diagnostics):
        if diagnostic.code == "AC112" and (found := THROUGHPUT.match(diagnostic.message)):
            _throughput(verdict, index, found.groupdict(), said)
            if verdict.impossible:
                return verdict
            continue
        for choice in CHOICES:
            found = re.match(choice.finding, diagnostic.message) if choice.code == diagnostic.code else None
            if found is None:
                continue
            fields = _fields(found.groupdict(), verdict.draft)
            if any(not _stated(fields[k], said, latency=True) for k in choice.user_stated):
                break  # a number the model chose: its mistake, a repair
            options = _options(choice, fields, verdict.draft)
            if len(options) < 2:
                break  # nothing to choose from: a repair
            _decide(verdict, choice, fields, options, said, decided)
            if verdict.impossible:
                return verdict
            break
    return verdict


def _decide(
    verdict: Judgement,
    choice: Choice,
    fields: dict[str, str],
    options: list[tuple[str, Option]],
    said: str,
    decided: dict[str, str],
) -> None:
    # at most 2000 characters (an Ambiguity's): the path of a p95 finding can be long
    question = _short(choice.question.format(**fields), 900) + _requirements(
        verdict.draft, choice.targets, fields
    )
    edits = {label: _edits(option, fields) for label, option in options}
    answer = decided.get(question)
    if answer is None:
        left = [(label, o) for label, o in options if not _matches(o.ruled_out, fields, said)]
        if not left:
            ruled = "; ".join(label for label, _ in options)
            verdict.impossible = f"{question} The description rules out every way to resolve this ({ruled})"
            return
        stated = [label for label, o in left if _matches(o.stated, fields, said)]
        if len(left) == 1 or len(stated) == 1:
            answer = left[0][0] if len(left) == 1 else stated[0]
            verdict.notes.append(f"{question} -> {answer} (as the description says)")
    if answer is None:
        verdict.questions.append(Ambiguity(question=question, options=list(edits)))
        return
    chosen = next((label for label in edits if label.lower() == answer.strip().lower()), None)
    if chosen is not None and edits[chosen]:
        verdict.draft = apply(verdict.draft, edits[chosen])
    else:
        verdict.to_model.append((question, answer))


def _throughput(verdict: Judgement, index: int, fields: dict[str, str], said: str) -> None:
    """Impossible when the user stated both the demanded rate and the limit that caps it."""
    rate, target = float(fields["rate"]), float(fields["target"])
    if not _stated(target, said):
        return
    if _stated(rate, said, shared=True):
        who = _requirements(verdict.draft, ("policy.performance", fields["bottleneck"]), fields)
        verdict.impossible = (
            f"the description asks for {target:g} messages/s and also limits '{fields['bottleneck']}' to "
            f"{rate:g} messages/s; every message on the path {fields['path']} passes that limit, so no "
            f"path can carry more than {rate:g}/s{who}. Fix: raise the stated limit or lower the demanded "
            f"throughput"
        )
        return
    verdict.hints[index] = (
        f"the description states {target:g} messages/s: keep throughput_rps and raise "
        f"'{fields['bottleneck']}''s rate_limit (`capabilities: {{rate_limit: {{rate, burst}}}}`)"
    )


def _fields(found: dict[str, str], draft: Draft) -> dict[str, str]:
    fields = dict(found)
    if "replicas" in fields:
        fields["replicas_word"] = NUMBER_WORDS.get(int(fields["replicas"]), fields["replicas"])
    if "total" in fields:
        fields["total_up"] = str(math.ceil(_unclamped_p95(draft) or float(fields["total"])))
    if "port" in fields:
        fields["schema"] = str(_ports(draft, fields["component"], "inputs").get(fields["port"], "its"))
    return fields


def _options(choice: Choice, fields: dict[str, str], draft: Draft) -> list[tuple[str, Option]]:
    if choice.options_from == "upstreams":
        options = [
            Option(
                label=f"from {source}",
                edits=(
                    Edit(
                        op="append",
                        file="architecture",
                        path=("bindings",),
                        value={"from": source, "to": "{component}.{port}"},
                    ),
                ),
            )
            for source in _upstreams(draft, fields["component"], fields["port"])
        ]
    else:
        options = list(choice.options)
    return [(o.label.format(**fields), o) for o in options][:10]


def _unclamped_p95(draft: Draft) -> float | None:
    """The slowest path's p95 by the components' own budgets: policy.performance.p95_ms also
    caps each component's budget, so a target relaxed only to the capped sum would still fail."""
    from autocoder.compile import compile_sources
    from autocoder.nl.render import render_architecture, render_deployment

    loose = copy.deepcopy(draft.architecture or {})
    performance = (loose.get("policy") or {}).get("performance")
    if isinstance(performance, dict):
        performance.pop("p95_ms", None)
    unbounded = draft.model_copy(update={"architecture": loose})
    result = compile_sources(render_architecture(unbounded).encode(), render_deployment(unbounded).encode())
    if result.ir is None or not result.ir.metadata.capacity:
        return None
    return max(float(c.p95_ms) for c in result.ir.metadata.capacity)


def _ports(draft: Draft, component: str, direction: str) -> dict[str, Any]:
    for item in (draft.architecture or {}).get("components") or []:
        if isinstance(item, dict) and item.get("name") == component:
            ports = item.get(direction)
            return ports if isinstance(ports, dict) else {}
    return {}


NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # a component or port name the compiler accepts


def _upstreams(draft: Draft, component: str, port: str) -> list[str]:
    """Output ports of other components that carry the input's schema, in blueprint order
    (names the compiler would refuse are left out: they become option text and edits)."""
    schema = _ports(draft, component, "inputs").get(port)
    found = []
    for item in (draft.architecture or {}).get("components") or []:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not NAME.match(name) or name == component:
            continue
        outputs = item.get("outputs")
        for out, carried in (outputs if isinstance(outputs, dict) else {}).items():
            if schema is not None and carried == schema and NAME.match(str(out)):
                found.append(f"{name}.{out}")
    return found


def _edits(option: Option, fields: dict[str, str]) -> tuple[Edit, ...]:
    return tuple(
        Edit(
            op=e.op,
            file=e.file,
            path=tuple(step.format(**fields) for step in e.path),
            value=_filled(e.value, fields),
        )
        for e in option.edits
    )


def _filled(value: Any, fields: dict[str, str]) -> Any:
    if isinstance(value, str):
        text = value.format(**fields)
        return int(text) if text.isdigit() else text
    if isinstance(value, dict):
        return {k: _filled(v, fields) for k, v in value.items()}
    return value


def _matches(pattern: str | None, fields: dict[str, str], said: str) -> bool:
    if pattern is None:
        return False
    escaped = {k: re.escape(v) for k, v in fields.items()}
    return re.search(pattern.format(**escaped), said) is not None


def _requirements(draft: Draft, targets: tuple[str, ...], fields: dict[str, str]) -> str:
    """` (from R3: "text"; R5: "text")`: the requirements the draft says these parts serve."""
    serves = serving(draft)
    texts = {r.id: r.text for r in draft.requirements}
    ids: list[str] = []
    for target in targets:
        ids += [i for i in serves.get(target.format(**fields), []) if i not in ids and i in texts]
    if not ids:
        return ""
    shown = [f'{i}: "{_short(texts[i])}"' for i in ids[:5]]  # within the 2000 characters of a question
    return " (from " + "; ".join(shown) + ")"


def _short(text: str, most: int = 200) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def apply(draft: Draft, edits: tuple[Edit, ...]) -> Draft:
    """The draft with the edits made (a copy; a path that does not fit the draft is skipped,
    and the analysis then reports what is still wrong)."""
    files = {"architecture": copy.deepcopy(draft.architecture), "deployment": copy.deepcopy(draft.deployment)}
    for edit in edits:
        node = files[edit.file]
        for step in edit.path[:-1]:
            node = _step(node, step)
        last = edit.path[-1]
        if isinstance(node, dict) and edit.op == "set":
            node[last] = copy.deepcopy(edit.value)
        elif isinstance(node, dict) and isinstance(node.setdefault(last, []), list):
            node[last].append(copy.deepcopy(edit.value))
    return draft.model_copy(update=files)


def _step(node: Any, step: str) -> Any:
    if isinstance(node, list):
        return next((i for i in node if isinstance(i, dict) and i.get("name") == step), None)
    if isinstance(node, dict):
        if not isinstance(node.get(step), dict | list):
            node[step] = {}
        return node[step]
    return None


# --------------------------------------------------------------------------- numbers the user stated

_SCALE = {"": 1, "k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}
_PER = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "hour": 3600, "hr": 3600, "h": 3600}
_NUMBER = r"(?P<n>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(?P<scale>k|thousand|m|million)\b)?"
RATE = re.compile(
    _NUMBER + r"(?:\s*[a-z][a-z-]*){0,3}?\s*(?:/\s*|per\s+|an?\s+|each\s+|every\s+)"
    r"(?P<per>second|sec|s|minute|min|hour|hr|h)\b|" + _NUMBER.replace("?P<", "?P<r_") + r"\s*(?:rps|qps)\b"
)
LATENCY = re.compile(_NUMBER + r"\s*(?P<unit>ms|milliseconds?|s|sec|seconds?)\b")


PER_CALLER = re.compile(
    r"\b(?:each|per|every|a|any|one)\s+(?:client|user|customer|caller|key|ip|tenant|device)s?\b"
)


def stated_rates(text: str, *, shared: bool = False) -> list[float]:
    """Messages per second the text states ("100,000 events/s", "10 requests per second",
    "600 a minute", "5k rps"). `shared`: only rates of the whole system, not those said of
    each client ("each client at most 10 requests/s" does not cap the system's throughput)."""
    rates = []
    for m in RATE.finditer(text.lower()):
        if shared and PER_CALLER.search(_sentence(text.lower(), m.start())):
            continue  # conservative: a sentence that speaks of each client is no system-wide limit
        if m.group("n") is not None:
            per = _PER[m.group("per")]
            rates.append(_number(m.group("n"), m.group("scale")) / per)
        else:
            rates.append(_number(m.group("r_n"), m.group("r_scale")))
    return rates


def _sentence(text: str, at: int) -> str:
    start = max(text.rfind(mark, 0, at) for mark in (". ", ";", "\n", "!", "?"))
    ends = [i for i in (text.find(mark, at) for mark in (". ", ";", "\n", "!", "?")) if i >= 0]
    return text[start + 1 : min(ends, default=len(text))]


def stated_latencies(text: str) -> list[float]:
    """Milliseconds the text states ("200 ms", "2 s")."""
    return [
        _number(m.group("n"), m.group("scale")) * (1 if m.group("unit").startswith("m") else 1000)
        for m in LATENCY.finditer(text.lower())
    ]


def _number(digits: str, scale: str | None) -> float:
    return float(digits.replace(",", "")) * _SCALE[scale or ""]


def _stated(value: float | str, said: str, *, latency: bool = False, shared: bool = False) -> bool:
    number = float(value)
    found = stated_latencies(said) if latency else stated_rates(said, shared=shared)
    return any(math.isclose(number, x, rel_tol=1e-6) for x in found)
