"""`autocoder new` when the analysis of a draft finds a choice that is the user's to make, or a
request no system can meet: questions (not repairs), settled choices, fail-fast impossibility,
against the scripted OpenAI-protocol server on 127.0.0.1 (the calls it received are counted)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from llm_server import completion, serving
from test_nl import ARCH, DEPLOY, REQUIREMENTS, SERVES, draft, new

from autocoder.cli import main
from autocoder.nl.choices import stated_latencies, stated_rates
from autocoder.nl.command import run_new

PLAIN = "An HTTP API that accepts events and stores each by its id."  # says nothing of auth


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith(("AUTOCODER_LLM_", "OPENAI_"))]:
        monkeypatch.delenv(name)


def without_auth() -> dict:
    arch = copy.deepcopy(ARCH)
    del arch["components"][0]["security"]
    return arch


def test_an_ingress_without_auth_is_asked_about_not_repaired_and_the_answer_applies(tmp_path, capsys):
    with serving(lambda request: completion(draft(architecture=without_auth()))) as server:
        assert new(tmp_path, server.url, description=PLAIN) == 3
        assert server.calls == 1  # no repair request: the analysis found a choice
        written = yaml.safe_load((tmp_path / "questions.yaml").read_text())["questions"]
        assert len(written) == 1 and written[0]["id"] == "Q1" and written[0]["answer"] is None
        question = written[0]["question"]
        assert "'events_api'" in question and 'R1: "accept events over HTTP"' in question  # the requirement
        assert [o.split(":")[0] for o in written[0]["options"]] == ["yes", "no"]
        assert "1 question(s) to answer" in capsys.readouterr().out

        written[0]["answer"] = written[0]["options"][0]  # the API key
        answers = tmp_path / "answers.yaml"
        answers.write_text(yaml.safe_dump({"questions": written}))
        assert new(tmp_path, server.url, "--answers", str(answers), description=PLAIN) == 0
        assert server.calls == 1  # the draft from the cache, the answer applied by Autocoder
        assert "LLM: 0 call(s), 1 cache hit(s)" in capsys.readouterr().out
    arch = yaml.safe_load((tmp_path / "architecture.yaml").read_text())
    assert arch["components"][0]["security"] == {"auth": "api_key"}
    assert main(["check", str(tmp_path)]) == 0
    locked = yaml.safe_load((tmp_path / "autocoder.lock").read_text())["blueprint"]["answers"]
    assert locked == [{"id": "Q1", "question": question, "answer": written[0]["options"][0]}]


def test_the_description_settles_a_choice_without_a_question(tmp_path, capsys):
    public = "A public HTTP API, open to anonymous clients, that accepts events and stores each by id."
    with serving(lambda request: completion(draft(architecture=without_auth()))) as server:
        assert new(tmp_path, server.url, description=public) == 0
        assert server.calls == 1
    assert "decided from the description" in capsys.readouterr().err
    arch = yaml.safe_load((tmp_path / "architecture.yaml").read_text())
    assert arch["policy"]["security"]["require_auth_on_ingress"] is False
    assert main(["check", str(tmp_path)]) == 0


COUNTED = {
    **copy.deepcopy(ARCH),
    "schemas": {
        **ARCH["schemas"],
        "Total": {
            "fields": {
                "event_id": {"type": "string"},
                "events": {"type": "integer"},
                "total": {"type": "number"},
            }
        },
    },
    "components": [
        ARCH["components"][0],
        {
            "name": "counter",
            "kind": "aggregator",
            "inputs": {"in": "Event"},
            "outputs": {"out": "Total"},
            "config": {"window_s": 10},
            "logic": {"key": "event_id", "aggregate": {"events": "count()", "total": "sum(value)"}},
        },
        {"name": "totals", "kind": "store", "inputs": {"in": "Total"}, "config": {"key": "event_id"}},
    ],
    "bindings": [
        {"from": "events_api.events", "to": "counter.in"},
        {"from": "counter.out", "to": "totals.in"},
    ],
}
SCALED = {**DEPLOY, "replicas": {"counter": 3}}
COUNTING = [*REQUIREMENTS, {"id": "R4", "text": "count events per id with 3 replicas", "kind": "scalability"}]
COUNTING_SERVES = {"events_api": ["R1", "R3"], "counter": ["R4"], "totals": ["R2"], "policy.security": ["R3"]}


def counted(**changes: object) -> str:
    return draft(
        architecture=COUNTED, deployment=SCALED, requirements=COUNTING, serves=COUNTING_SERVES, **changes
    )


def test_an_aggregator_on_sqlite_with_replicas_is_a_question_answered_on_the_terminal(tmp_path):
    from autocoder.llm.settings import LLMSettings

    description = "Authenticated clients post events; count them per id in windows and keep the totals."
    shown: list[str] = []
    with serving(lambda request: completion(counted())) as server:
        settings = LLMSettings(provider="openai", base_url=server.url, model="scripted")
        assert (
            run_new(
                description, [], tmp_path, settings, interactive=True, ask=lambda p: shown.append(p) or "b"
            )
            == 0
        )
        assert server.calls == 1 and len(shown) == 1
    deployment = yaml.safe_load((tmp_path / "deployment.yaml").read_text())
    assert deployment["store"] == {
        "backend": "postgres",
        "dsn_secret": {"name": "database", "key": "DATABASE_URL"},
    }
    assert deployment["replicas"] == {"counter": 3}
    assert main(["check", str(tmp_path)]) == 0
    question = yaml.safe_load((tmp_path / "autocoder.lock").read_text())["blueprint"]["answers"][0][
        "question"
    ]
    assert "'counter' would run 3 replicas" in question and "R4" in question


def test_contradictory_requirements_fail_fast_with_the_reason(tmp_path, capsys):
    description = (
        "Authenticated clients post events; count them per id with 3 replicas of the counter, and keep "
        "everything in SQLite."
    )
    with serving(lambda request: completion(counted())) as server:
        assert new(tmp_path, server.url, description=description) == 2
        assert server.calls == 1  # no repair was asked for
    err = capsys.readouterr().err
    assert "no system can meet this request" in err and "rules out every way" in err and "R4" in err
    assert not any(tmp_path.glob("*.yaml"))


def demanding(rate: int, target: int, store_rate: int | None = None) -> dict:
    arch = copy.deepcopy(ARCH)
    arch["policy"]["performance"] = {"throughput_rps": target}
    arch["components"][0]["capabilities"] = {"rate_limit": {"rate": rate, "burst": rate}}
    if store_rate:
        arch["components"][1]["capabilities"] = {"rate_limit": {"rate": store_rate, "burst": store_rate}}
    return arch


def test_a_throughput_the_users_own_limit_caps_fails_fast_naming_the_requirements(tmp_path, capsys):
    description = (
        "An HTTP API that accepts 100,000 events per second from authenticated clients and stores "
        "each event by id; the API as a whole must be rate-limited to 10 requests/s."
    )
    requirements = [
        *REQUIREMENTS,
        {"id": "R4", "text": "accept 100,000 events per second", "kind": "quality"},
        {"id": "R5", "text": "limit clients to 10 requests/s", "kind": "security"},
    ]
    serves = {**SERVES, "events_api": ["R1", "R3", "R5"], "policy.performance": ["R4"]}
    arch = demanding(10, 100000)
    with serving(
        lambda request: completion(draft(architecture=arch, requirements=requirements, serves=serves))
    ) as server:
        assert new(tmp_path, server.url, "--llm-repair-attempts", "2", description=description) == 2
        assert server.calls == 1  # failed fast: no repair rounds spent
    err = capsys.readouterr().err
    assert (
        "no system can meet this request" in err and "100000 messages/s" in err and "to 10 messages/s" in err
    )
    assert 'R4: "accept 100,000 events per second"' in err and "R5" in err
    assert not any(tmp_path.glob("*.yaml"))


def test_a_rate_limit_the_model_chose_is_its_mistake_and_a_repair_fixes_it(tmp_path, capsys):
    description = (
        "An HTTP API that accepts 5,000 events per second from authenticated clients and stores each."
    )
    replies = [
        completion(draft(architecture=demanding(10, 5000))),
        completion(draft(architecture=demanding(5000, 5000, store_rate=5000))),
    ]
    with serving(lambda request: replies.pop(0)) as server:
        assert new(tmp_path, server.url, description=description) == 0
        assert server.calls == 2  # the draft and one repair
    repair = server.requests[1]["messages"][-1]["content"]
    assert "AC112" in repair and "keep throughput_rps" in repair
    assert "1 repair(s)" in capsys.readouterr().out
    assert main(["check", str(tmp_path)]) == 0


def test_an_input_two_parts_could_feed_is_asked_about(tmp_path):
    from autocoder.llm.settings import LLMSettings

    arch = copy.deepcopy(ARCH)
    second = {**copy.deepcopy(arch["components"][0]), "name": "batch_api"}
    second["config"] = {"routes": [{"method": "POST", "path": "/batch", "emit": "events"}]}
    arch["components"].insert(1, second)
    arch["bindings"] = []
    shown: list[str] = []
    with serving(lambda request: completion(draft(architecture=arch))) as server:
        settings = LLMSettings(provider="openai", base_url=server.url, model="scripted")
        assert (
            run_new(PLAIN, [], tmp_path, settings, interactive=True, ask=lambda p: shown.append(p) or "b")
            == 0
        )
        assert server.calls == 1
    written = yaml.safe_load((tmp_path / "architecture.yaml").read_text())
    assert written["bindings"] == [{"from": "batch_api.events", "to": "event_store.in"}]
    assert main(["check", str(tmp_path)]) == 0


def test_an_answer_in_the_users_own_words_goes_to_the_model(tmp_path):
    fixed = draft(architecture={**without_auth(), "policy": {"security": {"require_auth_on_ingress": False}}})
    replies = [completion(draft(architecture=without_auth())), completion(fixed)]
    answers = tmp_path / "answers.yaml"
    answers.write_text("Q1: only requests from the office network\n")
    with serving(lambda request: replies.pop(0)) as server:
        assert new(tmp_path, server.url, "--answers", str(answers), description=PLAIN) == 0
        assert server.calls == 2
    sent = json.dumps(server.requests[1]["messages"][-1]["content"])
    assert "office network" in sent and "'events_api'" in sent


@pytest.mark.parametrize(
    ("text", "rates", "latencies"),
    [
        ("100,000 events per second, p95 under 200 ms", [100000.0], [200.0]),
        ("clients are limited to 10 requests/s; 5k rps overall", [10.0, 5000.0], []),
        ("600 orders a minute within 2 s", [10.0], [2000.0]),
        ("10 messages/s and 3 replicas", [10.0], []),
    ],
)
def test_the_numbers_a_user_states(text, rates, latencies):
    assert stated_rates(text) == rates and stated_latencies(text) == latencies


def test_a_limit_per_client_does_not_cap_the_system():
    text = "100,000 events per second in all; each client is limited to 10 requests/s. At most 50/s."
    assert stated_rates(text) == [100000.0, 10.0, 50.0]
    assert stated_rates(text, shared=True) == [100000.0, 50.0]


def test_a_latency_target_the_user_stated_is_asked_about_one_the_model_chose_is_repaired(tmp_path):
    from autocoder.llm.settings import LLMSettings

    tight = copy.deepcopy(ARCH)
    tight["policy"]["performance"] = {"p95_ms": 5}  # api_endpoint 10 ms + store 10 ms by default
    stated = "Authenticated clients post events, stored by id; p95 under 5 ms."
    replies = [
        completion(draft(architecture=tight)),
        completion(draft(architecture=tight)),
        completion(draft()),
    ]
    with serving(lambda request: replies.pop(0)) as server:
        settings = LLMSettings(provider="openai", base_url=server.url, model="scripted")
        assert run_new(stated, [], tmp_path / "asked", settings, interactive=True, ask=lambda p: "a") == 0
        assert server.calls == 1  # the user's number: a question, answered (relax), no repair
        arch = yaml.safe_load((tmp_path / "asked" / "architecture.yaml").read_text())
        assert arch["policy"]["performance"] == {"p95_ms": 20}  # 10 ms + 10 ms
        assert run_new(DESCRIPTION_OF_NO_NUMBERS, [], tmp_path / "repaired", settings, interactive=True) == 0
        assert server.calls == 3  # the model's own number: a repair
    assert "AC112" in server.requests[2]["messages"][-1]["content"]


DESCRIPTION_OF_NO_NUMBERS = "Authenticated clients post events, stored by id."
