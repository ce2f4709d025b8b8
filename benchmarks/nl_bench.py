"""Benchmark of `autocoder new`: LLM calls, tokens and repairs for three descriptions of
different size, each ending in blueprints that `autocoder check` passes and `autocoder build
DIR gen` turns into code (`--full`: `autocoder build DIR`, every tier green).

The model is the test suite's scripted OpenAI-protocol server on 127.0.0.1 (tests/llm_server.py),
so what is measured is the pipeline, not a model's skill: the scripted drafts are the
repository's own examples (events = the `autocoder init` starter, examples/orders,
examples/webhooks), and the scripts decide how many repairs and questions each needs:
- small: one sentence, a good first draft (expected: 1 call, 0 repairs);
- medium: a paragraph; the first draft binds a port that does not exist, the repair fixes it
  (2 calls, 1 repair);
- large: a paragraph plus a context file; the first draft asks a question (exit 3 and
  questions.yaml), the answered run gets a draft with a schema error, the repair fixes it
  (3 calls over two runs, 1 repair).
Then an identical rerun (--force) of each takes the draft recorded in autocoder.lock (0 calls),
and one without the lock is served by the completion cache (0 calls).
Tokens are the server's estimate, 4 characters per token of the request (messages and response
schema) and of the answer, since the scripted server has no tokenizer.

With --real-model URL, only the small description goes to that server (a real model, e.g. the
README's llama.cpp one with SmolLM2-135M), and its figures and ending are kept in the results
file under `real_model` (a later scripted run keeps them).

Usage: python benchmarks/nl_bench.py [--full] [--out FILE] [--real-model URL]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import REPO, machine, write_results

sys.path.insert(0, str(REPO / "tests"))
from llm_server import completion, serving  # noqa: E402

from autocoder.starter import ARCHITECTURE_TEMPLATE, DEPLOYMENT_TEMPLATE  # noqa: E402

USAGE = re.compile(
    r"LLM: (\d+) call\(s\), (\d+) cache hit\(s\), (?:(\d+) from the lock, )?(\d+) tokens in, "
    r"(\d+) tokens out, (\d+) repair"
)
DESCRIPTIONS = {
    "small": "An HTTP API that accepts events from authenticated clients and stores each by its id.",
    "medium": (
        "An order intake service. Clients post orders (id, customer, quantity, unit price) over HTTP "
        "with an API key. Orders with a non-positive quantity are dropped; the total is computed; "
        "large orders go to a review queue and the rest are stored by order id; every order is "
        "logged. The service must keep up with 50 orders per second with a p95 under 200 ms."
    ),
    "large": (
        "Webhook fan-out. Producers post events (created, updated, deleted; a subject and a "
        "priority 0-9) over HTTP with an API key. Each event is normalised: urgent when its "
        "priority is 8 or more or it is a deletion, and labelled. Every event is kept by id for "
        "audit. Urgent events are delivered to the on-call subscriber, all events to the "
        "analytics subscriber, each with retries, a circuit breaker and a timeout, and failed "
        "deliveries land in a dead-letter store that operators can read. Subscribers are slow: "
        "deliveries must never block intake. See the attached subscriber notes."
    ),
}
CONTEXT = (
    "Subscriber notes: on-call accepts at most 5 requests/s; analytics at most 50. Both answer "
    "within 2 s or are considered down. Payloads are the event fields plus `urgent` and `label`.\n"
)


def example(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if name == "small":
        arch = yaml.safe_load(ARCHITECTURE_TEMPLATE.format(name="events", schemas=""))
        deploy = yaml.safe_load(DEPLOYMENT_TEMPLATE.format(schemas=""))
        return arch, deploy
    folder = REPO / "examples" / {"medium": "orders", "large": "webhooks"}[name]
    arch = yaml.safe_load((folder / "architecture.yaml").read_text())
    deploy = yaml.safe_load((folder / "deployment.yaml").read_text())
    deploy.pop("llm", None)
    return arch, deploy


def draft(arch: dict[str, Any], deploy: dict[str, Any], **changes: Any) -> str:
    """A draft as a model would write it: a requirement per component, plus one for security."""
    names = [c["name"] for c in arch["components"]]
    requirements = [
        {"id": f"R{n}", "text": c.get("description") or f"the {c['kind']} {c['name']}", "kind": "functional"}
        for n, c in enumerate(arch["components"], start=1)
    ]
    security = f"R{len(names) + 1}"
    requirements.append(
        {"id": security, "text": "only authenticated clients may call in", "kind": "security"}
    )
    serves = {name: [f"R{n}"] for n, name in enumerate(names, start=1)}
    serves["policy.security"] = [security]
    data = {
        "requirements": requirements,
        "ambiguities": [],
        "impossible": None,
        "serves": serves,
        "architecture": arch,
        "deployment": deploy,
    }
    return json.dumps({**data, **changes})


def replies(name: str) -> list[str]:
    arch, deploy = example(name)
    good = draft(arch, deploy)
    if name == "small":
        return [good]
    if name == "medium":
        broken = copy.deepcopy(arch)
        broken["bindings"][0]["to"] = broken["bindings"][0]["to"] + "_typo"
        return [draft(broken, deploy), good]
    question = {"question": "Should deliveries be retried forever?", "options": ["no, dead-letter", "yes"]}
    asking = draft(arch, deploy, ambiguities=[question], architecture=None, deployment=None)
    wrong = copy.deepcopy(arch)
    wrong["components"][0]["kind"] = "http_api"
    return [asking, draft(wrong, deploy), good]


def estimate(request: dict[str, Any], content: str) -> tuple[int, int]:
    sent = json.dumps(request.get("messages", [])) + json.dumps(request.get("response_format", {}))
    return len(sent) // 4, len(content) // 4


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        env=env,
    )
    return done, time.perf_counter() - start


def usage(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    found = USAGE.search(done.stdout)
    if found is None:
        raise SystemExit(f"no usage line:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    keys = ("calls", "cache_hits", "locked", "tokens_in", "tokens_out", "repairs")
    return dict(zip(keys, (int(g or 0) for g in found.groups()), strict=True))


def add(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {k: total.get(k, 0) + v for k, v in more.items()}


def measure(name: str, workdir: Path, full: bool) -> dict[str, Any]:
    queue = replies(name)

    def script(request: dict[str, Any]) -> Any:
        content = queue.pop(0) if len(queue) > 1 else queue[0]
        tokens_in, tokens_out = estimate(request, content)
        return completion(content, tokens_in, tokens_out)

    out = workdir / name
    out.mkdir()
    context = workdir / f"{name}-notes.txt"
    context.write_text(CONTEXT)
    with serving(script) as server:
        llm = ["--llm-base-url", server.url, "--llm-model", "scripted"]
        command = ["new", DESCRIPTIONS[name], "-o", str(out), *llm]
        if name == "large":
            command += ["--context", str(context)]
        done, seconds = run(command)
        totals = usage(done)
        runs = 1
        if done.returncode == 3:  # questions: answer them as a user would, then resume
            questions = yaml.safe_load((out / "questions.yaml").read_text())
            for question in questions["questions"]:
                question["answer"] = question["options"][0]
            answers = workdir / f"{name}-answers.yaml"
            answers.write_text(yaml.safe_dump(questions))
            done, more = run([*command, "--answers", str(answers)])
            totals, seconds, runs = add(totals, usage(done)), seconds + more, 2
            command += ["--answers", str(answers)]
        if done.returncode != 0:
            raise SystemExit(f"{name}: autocoder new failed:\n{done.stdout}\n{done.stderr}")
        again, _ = run([*command, "--force"])  # the draft recorded in autocoder.lock
        rerun = usage(again)
        (out / "autocoder.lock").unlink()
        uncached, _ = run([*command, "--force"])  # without the lock: the completion cache
        recached = usage(uncached)
        if again.returncode or uncached.returncode:
            raise SystemExit(f"{name}: a rerun failed:\n{again.stderr}\n{uncached.stderr}")
    check, _ = run(["check", str(out)])
    build, build_seconds = run(["build", str(out)] if full else ["build", str(out), "gen"])
    arch = yaml.safe_load((out / "architecture.yaml").read_text())
    return {
        "description_chars": len(DESCRIPTIONS[name]),
        "components": len(arch["components"]),
        "runs": runs,
        **totals,
        "seconds": round(seconds, 3),
        "rerun_calls": rerun["calls"],
        "rerun_locked": rerun["locked"],
        "rerun_without_lock_calls": recached["calls"],
        "rerun_without_lock_cache_hits": recached["cache_hits"],
        "check_ok": check.returncode == 0,
        "build": "every tier" if full else "gen",
        "build_ok": build.returncode == 0,
        "build_seconds": round(build_seconds, 3),
    }


# a real small model on a shared CPU: one long request at a time, each bounded
REAL_MODEL_ENV = {
    "AUTOCODER_LLM_TIMEOUT": "1200",
    "AUTOCODER_LLM_RETRIES": "0",
    "AUTOCODER_LLM_MAX_TOKENS": "1536",
}


def real_model(url: str, workdir: Path) -> dict[str, Any]:
    """The small description against a real OpenAI-compatible server (the README's llama.cpp
    one with SmolLM2-135M): its figures and how it ended, whatever the model's skill."""
    out = workdir / "real"
    out.mkdir()
    llm = ["--llm-base-url", url, "--llm-model", "smollm2", "--llm-repair-attempts", "2"]
    command = ["new", DESCRIPTIONS["small"], "-o", str(out), *llm]
    done, seconds = run(command, {**os.environ, **REAL_MODEL_ENV})
    print(done.stdout[-3000:], done.stderr[-3000:])
    check = run(["check", str(out)])[0].returncode == 0 if done.returncode == 0 else None
    return {
        "server": url,
        "settings": REAL_MODEL_ENV,
        "exit": done.returncode,
        **usage(done),
        "seconds": round(seconds, 1),
        "first_error_lines": done.stderr.strip().splitlines()[:4],
        "check_ok": check,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "nl.json")
    parser.add_argument("--full", action="store_true", help="build every tier (minutes), not only `gen`")
    parser.add_argument(
        "--real-model", metavar="URL", help="only: the small description against this server (kept in --out)"
    )
    args = parser.parse_args()
    if args.real_model:
        results = json.loads(args.out.read_text()) if args.out.is_file() else {"machine": machine()}
        with tempfile.TemporaryDirectory() as tmp:
            results["real_model"] = real_model(args.real_model, Path(tmp))
        write_results(args.out, results)
        return
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {name: measure(name, Path(tmp), args.full) for name in DESCRIPTIONS}
    results = {"machine": machine(), "tokens": "estimated: 4 characters per token", "cases": cases}
    if "real_model" in previous:  # measured separately (--real-model), kept
        results["real_model"] = previous["real_model"]
    write_results(args.out, results)


if __name__ == "__main__":
    main()
