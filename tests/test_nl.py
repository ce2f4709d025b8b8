"""`autocoder new`: a description -> blueprints through a real OpenAI-protocol server on
127.0.0.1, scripted: a good draft, a repaired one, questions and answers, an impossible
request, no model configured, the completion cache, and hostile text in the draft."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from llm_server import completion, serving

from autocoder.cli import main
from autocoder.nl.command import run_new
from autocoder.nl.session import Conversation

ARCH = {
    "schema_version": "1.0.0",
    "system": {"name": "events", "version": "0.1.0", "description": "Accept events over HTTP and store them"},
    "schemas": {
        "Event": {
            "fields": {
                "event_id": {"type": "string", "pattern": "^[a-z0-9-]{4,64}$"},
                "value": {"type": "number"},
            }
        }
    },
    "components": [
        {
            "kind": "api_endpoint",
            "name": "events_api",
            "outputs": {"events": "Event"},
            "config": {"routes": [{"method": "POST", "path": "/events", "emit": "events"}]},
            "security": {"auth": "api_key"},
        },
        {"name": "event_store", "kind": "store", "inputs": {"in": "Event"}, "config": {"key": "event_id"}},
    ],
    "bindings": [{"from": "events_api.events", "to": "event_store.in"}],
    "policy": {"security": {"require_auth_on_ingress": True}},
}
DEPLOY = {"schema_version": "1.0.0", "environment": "development", "store": {"backend": "sqlite"}}
REQUIREMENTS = [
    {"id": "R1", "text": "accept events over HTTP", "kind": "functional"},
    {"id": "R2", "text": "store every event by its id", "kind": "functional"},
    {"id": "R3", "text": "only authenticated clients may send events", "kind": "security"},
]
SERVES = {"events_api": ["R1", "R3"], "event_store": ["R2"], "policy.security": ["R3"]}
DESCRIPTION = "An HTTP API that accepts events from authenticated clients and stores each by id."


def draft(**changes: object) -> str:
    data = {
        "requirements": REQUIREMENTS,
        "ambiguities": [],
        "impossible": None,
        "serves": SERVES,
        "architecture": ARCH,
        "deployment": DEPLOY,
    }
    return json.dumps({**copy.deepcopy(data), **changes})


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith(("AUTOCODER_LLM_", "OPENAI_"))]:
        monkeypatch.delenv(name)


def new(out: Path, url: str | None, *args: str, description: str = DESCRIPTION) -> int:
    llm = ["--llm-base-url", url, "--llm-model", "scripted"] if url else []
    return main(["new", description, "-o", str(out), *llm, *args])


def user_text(request: dict) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")


def test_a_good_draft_becomes_blueprints_that_check_clean_and_a_rerun_comes_from_the_cache(tmp_path, capsys):
    out = tmp_path / "events"
    with serving(lambda request: completion(draft(), 900, 400)) as server:
        assert new(out, server.url) == 0
        assert server.calls == 1
        request = server.requests[0]
        assert request["response_format"]["json_schema"]["name"] == "blueprint_draft"
        schema = request["response_format"]["json_schema"]["schema"]
        assert {"Architecture", "Deployment", "Requirement"} <= set(schema["$defs"])
        assert json.dumps(DESCRIPTION) in user_text(request)  # the description travels as JSON data
        assert (
            "LLM: 1 call(s), 0 cache hit(s), 900 tokens in, 400 tokens out, 0 repair(s)"
            in capsys.readouterr().out
        )
        first = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        assert sorted(first) == [
            "architecture.yaml",
            "autocoder.lock",
            "deployment.yaml",
            "requirements.json",
        ]

        assert main(["check", str(out)]) == 0
        arch = (out / "architecture.yaml").read_text()
        assert "  # serves: R1, R3\n  - name: events_api\n    kind: api_endpoint\n" in arch
        assert "  # serves: R2\n  - name: event_store\n" in arch
        assert "  # serves: R3\n  security:\n" in arch
        trace = json.loads(first["requirements.json"])
        assert [(r["id"], r["addressed_by"]) for r in trace["requirements"]] == [
            ("R1", ["events_api"]),
            ("R2", ["event_store"]),
            ("R3", ["events_api", "policy.security"]),
        ]
        assert trace["unaddressed"] == []

        assert new(out, server.url) == 2  # never overwrites without --force
        assert "never overwritten" in capsys.readouterr().err and server.calls == 1

        (out / "autocoder.lock").unlink()  # without the lock's draft: the conversation again
        assert new(out, server.url, "--force") == 0
        assert server.calls == 1  # the same request, answered from the cache
        assert "LLM: 0 call(s), 1 cache hit(s)" in capsys.readouterr().out
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == first  # deterministic


def test_diagnostics_go_back_to_the_model_and_the_repaired_draft_is_written(tmp_path, capsys):
    broken = copy.deepcopy(ARCH)
    broken["bindings"] = [{"from": "events_api.events", "to": "event_store.input"}]
    broken["components"][1]["kind"] = "stor"
    replies = [completion(draft(architecture=broken)), completion(draft())]
    with serving(lambda request: replies.pop(0)) as server:
        assert new(tmp_path, server.url) == 0
        assert server.calls == 2
    repair = server.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": draft(architecture=broken)}
    asked = repair[-1]["content"]
    assert "The draft fails these checks" in asked
    assert re.search(r"architecture\.yaml:\d+:\d+: error AC0\d\d", asked)  # the diagnostics, quoted
    assert "stor" in asked and "architecture.yaml as rendered from your draft" in asked
    assert "1 repair(s)" in capsys.readouterr().out
    assert main(["check", str(tmp_path)]) == 0


def test_an_ambiguous_request_writes_questions_then_answers_resume_it(tmp_path, capsys):
    question = {"question": "Where should events be kept?", "options": ["sqlite", "memory"]}

    def script(request: dict) -> object:
        answered = "answers to your questions" in user_text(request)
        return completion(
            draft() if answered else draft(ambiguities=[question], architecture=None, deployment=None)
        )

    with serving(script) as server:
        assert new(tmp_path, server.url) == 3
        assert server.calls == 1
        questions = yaml.safe_load((tmp_path / "questions.yaml").read_text())
        assert questions == {"questions": [{"id": "Q1", **question, "answer": None}]}
        assert not (tmp_path / "architecture.yaml").exists()
        assert "--answers" in capsys.readouterr().out

        incomplete = tmp_path / "questions.yaml"
        assert new(tmp_path, server.url, "--answers", str(incomplete)) == 2
        assert "no answer to Q1" in capsys.readouterr().err

        questions["questions"][0]["answer"] = "sqlite"
        answers = tmp_path / "answers.yaml"
        answers.write_text(yaml.safe_dump(questions))
        assert new(tmp_path, server.url, "--answers", str(answers)) == 0
        assert server.calls == 2  # the incomplete run asked nothing new; the resumed one asked once
        resumed = server.requests[-1]
        assert '"answer": "sqlite"' in resumed["messages"][-1]["content"]
        assert "LLM: 1 call(s), 1 cache hit(s)" in capsys.readouterr().out
    assert main(["check", str(tmp_path)]) == 0


def test_a_second_round_of_questions_keeps_the_first_answers(tmp_path, capsys):
    where = {"question": "Where should events be kept?", "options": ["sqlite", "memory"]}
    how_long = {"question": "How long are events kept?", "options": ["a day", "forever"]}

    def script(request: dict) -> object:
        rounds = user_text(request).count("answers to your questions")  # one message per round
        if rounds < 2:
            return completion(
                draft(ambiguities=[[where], [how_long]][rounds], architecture=None, deployment=None)
            )
        return completion(draft())

    questions = tmp_path / "questions.yaml"
    with serving(script) as server:
        assert new(tmp_path, server.url) == 3
        first_round = yaml.safe_load(questions.read_text())
        first_round["questions"][0]["answer"] = "sqlite"
        answered = tmp_path / "answered.yaml"
        answered.write_text(yaml.safe_dump(first_round))
        capsys.readouterr()

        assert new(tmp_path, server.url, "--answers", str(answered)) == 3  # the model asks again
        assert server.calls == 2  # the first request came from the cache
        assert "1 question(s) to answer" in capsys.readouterr().out
        second_round = yaml.safe_load(questions.read_text())["questions"]
        assert second_round == [
            {"id": "Q1", **where, "answer": "sqlite"},  # the earlier answer, kept
            {"id": "Q2", **how_long, "answer": None},
        ]

        more = tmp_path / "more.yaml"
        more.write_text("Q2: forever\n")  # a second file, beside the first
        assert new(tmp_path, server.url, "--answers", str(answered), "--answers", str(more)) == 0
        assert server.calls == 3
        final = user_text(server.requests[-1])
        assert '"answer": "sqlite"' in final and '"answer": "forever"' in final
        assert "LLM: 1 call(s), 2 cache hit(s)" in capsys.readouterr().out

        questions.write_text(questions.read_text().replace("answer: null", "answer: forever"))
        (tmp_path / "autocoder.lock").unlink()
        assert new(tmp_path, server.url, "--answers", str(questions), "--force") == 0  # the file, filled in
        assert server.calls == 3 and "0 call(s), 3 cache hit(s)" in capsys.readouterr().out
    locked = yaml.safe_load((tmp_path / "autocoder.lock").read_text())["blueprint"]["answers"]
    assert locked == [
        {"id": "Q1", "question": where["question"], "answer": "sqlite"},
        {"id": "Q2", "question": how_long["question"], "answer": "forever"},
    ]
    assert main(["check", str(tmp_path)]) == 0


def test_a_terminal_is_asked_for_a_bounded_number_of_rounds(tmp_path):
    """A model that never stops asking gets MAX_ROUNDS rounds; then its draft is judged as it is."""
    from autocoder.llm.settings import LLMSettings
    from autocoder.nl.session import MAX_ROUNDS

    question = {"question": "Auth?", "options": ["api key", "none"]}
    asked: list[str] = []
    with serving(lambda request: completion(draft(ambiguities=[question]))) as server:
        settings = LLMSettings(provider="openai", base_url=server.url, model="scripted")
        assert (
            run_new(
                DESCRIPTION, [], tmp_path, settings, interactive=True, ask=lambda p: asked.append(p) or "a"
            )
            == 0
        )
        assert server.calls == 1 + MAX_ROUNDS and len(asked) == MAX_ROUNDS
    assert main(["check", str(tmp_path)]) == 0


def test_the_accepted_draft_is_locked_and_a_frozen_rerun_needs_no_model(tmp_path, capsys):
    out = tmp_path / "events"
    notes = tmp_path / "notes.txt"
    notes.write_text("Events come in bursts of 100.")
    question = {"question": "Where should events be kept?", "options": ["sqlite", "memory"]}

    def script(request: dict) -> object:
        answered = "answers to your questions" in user_text(request)
        return completion(draft() if answered else draft(ambiguities=[question], architecture=None))

    answers = tmp_path / "answers.yaml"
    answers.write_text("Q1: sqlite\n")
    with serving(script) as server:
        assert new(out, server.url, "--context", str(notes), "--answers", str(answers)) == 0
        assert server.calls == 2
    assert "recorded the accepted draft in" in capsys.readouterr().out
    written = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    entry = yaml.safe_load(written["autocoder.lock"])["blueprint"]
    assert entry["model"] == "scripted" and re.fullmatch(r"[0-9a-f]{64}", entry["description_hash"])
    assert entry["answers"] == [{"id": "Q1", "question": question["question"], "answer": "sqlite"}]
    assert json.loads(entry["draft"])["architecture"] == ARCH

    # the server is gone, and no model is configured: the lock alone reproduces every byte
    for name in ("architecture.yaml", "deployment.yaml", "requirements.json"):
        (out / name).unlink()
    assert new(out, None, "--frozen", "--context", str(notes)) == 0  # the locked answers hold
    assert "LLM: 0 call(s), 0 cache hit(s), 1 from the lock" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == written
    assert new(out, None, "--frozen", "--force", "--context", str(notes), "--answers", str(answers)) == 0

    answers.write_text("Q1: memory\n")
    changes = {
        "other answers (to Q1)": (DESCRIPTION, ["--context", str(notes), "--answers", str(answers)]),
        "different description or context files": ("Something else", ["--context", str(notes)]),
        "no such context": (DESCRIPTION, []),
    }
    for why, (description, args) in changes.items():
        capsys.readouterr()
        assert new(out, None, "--frozen", "--force", *args, description=description) == 1
        err = capsys.readouterr().err
        assert "--frozen never asks a model" in err and "fix: run the same command without --frozen" in err
        assert why in err or why == "no such context" and "different description or context" in err
    assert new(out, None, "--force", description="Something else") == 2  # not frozen: a model is needed
    err = capsys.readouterr().err
    assert (
        "no LLM is configured" in err
        and {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == written
    )

    lock = out / "autocoder.lock"  # a lock is data anyone can edit: its draft is checked again
    lock.write_text(lock.read_text().replace('"name": "event_store"', '"name": "Event Store"'))
    assert new(out, None, "--frozen", "--force", "--context", str(notes)) == 2
    err = capsys.readouterr().err
    assert (
        "its `blueprint` draft fails the checks" in err
        and "AC013" in err
        and "delete the `blueprint` entry" in err
    )
    lock.write_text("blueprint: [\n")
    assert new(out, None, "--frozen", "--force", "--context", str(notes)) == 2
    assert "autocoder.lock: cannot be read" in capsys.readouterr().err


def test_interactive_answers_come_from_the_terminal(tmp_path):
    question = {"question": "Auth?", "options": ["api key", "none"]}
    replies = [completion(draft(ambiguities=[question])), completion(draft())]
    from autocoder.llm.settings import LLMSettings

    with serving(lambda request: replies.pop(0)) as server:
        settings = LLMSettings(provider="openai", base_url=server.url, model="scripted")
        typed = iter(["a"])
        assert run_new(DESCRIPTION, [], tmp_path, settings, interactive=True, ask=lambda _: next(typed)) == 0
        assert server.calls == 2
        assert '"answer": "api key"' in server.requests[1]["messages"][-1]["content"]


def test_an_impossible_request_fails_fast_with_the_reason(tmp_path, capsys):
    reason = "R1 demands 10^9 events/s through one SQLite store, and R2 forbids more than one replica"
    escape = "\x1b]0;pwned\x07"  # a terminal escape sequence: shown as text, never sent raw
    with serving(lambda request: completion(draft(impossible=reason + escape, architecture=None))) as server:
        assert new(tmp_path, server.url) == 2
        assert server.calls == 1
    err = capsys.readouterr().err
    assert reason in err and "\x1b" not in err and "\\x1b]0;pwned\\x07" in err
    assert not any(tmp_path.glob("*.yaml"))


def test_a_draft_the_repairs_cannot_fix_ends_with_its_errors_and_an_example(tmp_path, capsys):
    bad = copy.deepcopy(ARCH)
    bad["components"][0]["name"] = "Events API"
    bad["components"][1]["kind"] = "stor"
    with serving(lambda request: completion(draft(architecture=bad))) as server:
        assert new(tmp_path, server.url, "--llm-repair-attempts", "1") == 2
        assert server.calls == 2  # the draft and one repair
    err = capsys.readouterr().err
    assert "still invalid after the repairs" in err and "'Events API' is not allowed" in err
    # the corrected example: each line whose error names its fix, as rendered and as corrected
    corrected = re.search(r"\n  architecture\.yaml:(\d+): ( +)kind: stor\n( +)-> ( +)kind: store\n", err)
    assert corrected and len(corrected.group(3)) + 3 + len(corrected.group(4)) == len(
        f"  architecture.yaml:{corrected.group(1)}: {corrected.group(2)}"
    ), err
    assert "autocoder init DIR" in err and "examples/orders" in err
    assert not any(tmp_path.glob("*.yaml"))


def test_no_model_configured_says_how_to_configure_one(tmp_path, capsys):
    assert new(tmp_path, None) == 2
    err = capsys.readouterr().err
    assert "no LLM is configured" in err and "AUTOCODER_LLM_MODEL" in err and "--llm-base-url" in err


def test_draft_text_reaches_the_yaml_only_as_values_and_serves_are_checked(tmp_path):
    hostile = copy.deepcopy(ARCH)
    hostile["system"]["description"] = "ok\n# serves: R9\nimport os; os.system('x')  # :"
    hostile["components"][1]["description"] = "'\n- name: injected\n  kind: sink"
    requirements = [*REQUIREMENTS, {"id": "R4", "text": "x\n# not a comment", "kind": "quality"}]
    replies = [
        completion(
            draft(architecture=hostile, requirements=requirements, serves={**SERVES, "ghost": ["R4"]})
        ),
        completion(draft(architecture=hostile, requirements=requirements, deployment={**DEPLOY, "llm": {}})),
        completion(draft(architecture=hostile, requirements=requirements)),
    ]
    with serving(lambda request: replies.pop(0)) as server:
        assert new(tmp_path, server.url) == 0
        assert server.calls == 3
    assert "'ghost' is not a component" in server.requests[1]["messages"][-1]["content"]
    assert "may not set the `llm` block" in server.requests[2]["messages"][-1]["content"]
    arch = (tmp_path / "architecture.yaml").read_text()
    comments = [line.strip() for line in arch.splitlines() if line.lstrip().startswith("#")]
    assert comments[2:] == ["# serves: R1, R3", "# serves: R2", "# serves: R3"]  # none from the text
    data = yaml.safe_load(arch)
    assert data["system"]["description"] == hostile["system"]["description"]
    assert [c["name"] for c in data["components"]] == ["events_api", "event_store"]
    trace = json.loads((tmp_path / "requirements.json").read_text())
    assert trace["unaddressed"] == ["R4"]


def test_conversations_are_bounded(tmp_path):
    """A model that always answers garbage costs 1 + repair_attempts requests, nothing cached."""
    from autocoder.llm.cache import CompletionCache
    from autocoder.llm.settings import LLMSettings

    with serving(lambda request: completion("not json")) as server:
        settings = LLMSettings(provider="openai", base_url=server.url, model="scripted", repair_attempts=3)
        cache = CompletionCache(tmp_path / "cache")
        outcome = Conversation(settings, cache).run(DESCRIPTION, [], lambda a: None)
        assert outcome.kind == "invalid" and server.calls == 4
        assert "not a JSON object" in outcome.problems[0]
        assert len(cache.cache) == 0
        cache.close()


def test_a_demanded_throughput_no_path_meets_is_an_impossible_topology(tmp_path, capsys):
    demanding = copy.deepcopy(ARCH)
    demanding["policy"]["performance"] = {"throughput_rps": 100000}
    demanding["components"][0]["capabilities"] = {"rate_limit": {"rate": 10, "burst": 10}}
    with serving(lambda request: completion(draft(architecture=demanding))) as server:
        assert new(tmp_path, server.url, "--llm-repair-attempts", "1") == 2
        assert server.calls == 2
    assert "AC112" in server.requests[1]["messages"][-1]["content"]  # the capacity estimate, sent back
    err = capsys.readouterr().err
    assert "limited to 10 msg/s" in err and "impossible topology" in err
    assert not any(tmp_path.glob("*.yaml"))


def build(directory: Path, *tasks: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(directory), *tasks],
        capture_output=True,
        text=True,
        timeout=1800,
    )


def test_the_blueprints_of_a_description_generate_code_with_doit(tmp_path):
    with serving(lambda request: completion(draft())) as server:
        assert new(tmp_path, server.url) == 0
    run = build(tmp_path, "gen")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "generated" / "src" / "events" / "components" / "event_store.py").is_file()
    # `autocoder lock` rewrites the lock from the build's components and keeps `new`'s draft:
    # with no LLM component here, that draft is all there is, byte for byte
    from autocoder.llm.usage import LAST_BUILD

    locked = (tmp_path / "autocoder.lock").read_bytes()
    (tmp_path / LAST_BUILD).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / LAST_BUILD).write_text('{"ok": true}')  # what a green `autocoder build` records
    assert main(["lock", str(tmp_path)]) == 0
    assert (tmp_path / "autocoder.lock").read_bytes() == locked
    assert main(["new", DESCRIPTION, "-o", str(tmp_path), "--frozen", "--force"]) == 0


@pytest.mark.slow
def test_the_blueprints_of_a_description_build_green_end_to_end(tmp_path):
    """Every tier: lint, types, tests, benchmarks, policy, deployment artifacts (minutes)."""
    with serving(lambda request: completion(draft())) as server:
        assert new(tmp_path, server.url) == 0
    run = build(tmp_path)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]


@pytest.mark.slow
def test_a_small_local_model_drafts_blueprints_or_fails_cleanly(tmp_path):
    """Opt-in (`pytest -m slow`): the README's local llama.cpp server with SmolLM2-135M
    (AUTOCODER_TEST_LLM_URL, default http://127.0.0.1:8765/v1), if it answers. A 135M model
    rarely designs a valid system; what must hold is the protocol (tokens counted), the repairs
    counted (every call after the first is one), and a clean end: blueprints that check clean,
    questions, or exit 2 naming why. Each request is bounded (1536 tokens, 20 minutes, no
    retries) so that a slow CPU ends it; `benchmarks/nl_bench.py --real-model URL` records it."""
    import os

    import httpx

    url = os.environ.get("AUTOCODER_TEST_LLM_URL", "http://127.0.0.1:8765/v1")
    try:
        reachable = httpx.get(f"{url}/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        reachable = False
    if not reachable:
        pytest.skip(f"no OpenAI-compatible server at {url}")
    bounded = {
        "AUTOCODER_LLM_TIMEOUT": "1200",
        "AUTOCODER_LLM_RETRIES": "0",
        "AUTOCODER_LLM_MAX_TOKENS": "1536",
    }
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "new", DESCRIPTION, "-o", str(tmp_path)]
        + ["--llm-base-url", url, "--llm-model", "smollm2", "--llm-repair-attempts", "2"],
        capture_output=True,
        text=True,
        timeout=4 * 1200,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **bounded},
    )
    print(run.stdout[-3000:], run.stderr[-3000:])
    usage = re.search(
        r"LLM: (\d+) call\(s\), 0 cache hit\(s\), (\d+) tokens in, \d+ tokens out, (\d+) repair", run.stdout
    )
    assert usage, run.stdout + run.stderr
    calls, tokens_in, repairs = (int(g) for g in usage.groups())
    assert calls >= 1 and tokens_in > 0 and calls == 1 + repairs <= 3
    assert "Traceback" not in run.stdout + run.stderr
    assert run.returncode in (0, 2, 3), run.stderr
    if run.returncode == 0:
        assert main(["check", str(tmp_path)]) == 0
    elif run.returncode == 2:
        assert re.search(r"still invalid after the repairs|no system can meet this request", run.stderr)
        assert not (tmp_path / "architecture.yaml").exists()
    else:
        assert (tmp_path / "questions.yaml").is_file()


def test_bad_inputs_are_named_before_any_request(tmp_path, capsys):
    unused = "http://127.0.0.1:9/v1"  # nothing listens: none of these may send a request
    assert new(tmp_path, unused, "--context", str(tmp_path / "missing.txt")) == 2
    assert "--context" in capsys.readouterr().err
    (tmp_path / "answers.yaml").write_text("questions: [\n")
    assert new(tmp_path, unused, "--answers", str(tmp_path / "answers.yaml")) == 2
    err = capsys.readouterr().err
    assert "--answers" in err and "cannot be read" in err
    assert new(tmp_path, unused, description="   ") == 2
    assert "description must be" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert new(tmp_path / "file", unused) == 2
    assert "not a directory" in capsys.readouterr().err


def test_drafts_are_held_to_the_blueprint_size_limits():
    from autocoder.blueprint.source import MAX_BYTES
    from autocoder.nl.session import check_draft, parse_draft

    assert "larger than" in parse_draft(" " * (2 * MAX_BYTES + 1))[1][0]
    huge, problems = parse_draft(draft(architecture={**ARCH, "padding": "x" * MAX_BYTES}))
    assert huge is not None and problems == []
    outcome = check_draft(huge)
    assert outcome.kind == "invalid" and outcome.schema_errors
    assert any("AC005" in p for p in outcome.problems), outcome.problems


def test_a_closed_terminal_and_duplicate_requirement_ids_are_reported(tmp_path, capsys):
    from autocoder.llm.settings import LLMSettings
    from autocoder.nl.render import target_problems
    from autocoder.nl.session import parse_draft

    def closed(_: str) -> str:
        raise EOFError

    question = {"question": "Auth?", "options": ["api key", "none"]}
    with serving(lambda request: completion(draft(ambiguities=[question]))) as server:
        settings = LLMSettings(provider="openai", base_url=server.url, model="scripted")
        assert run_new(DESCRIPTION, [], tmp_path, settings, interactive=True, ask=closed) == 2
    assert "Q1 was not answered" in capsys.readouterr().err
    twice, _ = parse_draft(draft(requirements=[*REQUIREMENTS, REQUIREMENTS[0]]))
    assert twice is not None and target_problems(twice) == ["requirements: duplicate id(s) R1"]
