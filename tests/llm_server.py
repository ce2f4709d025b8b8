"""A real OpenAI-protocol server on 127.0.0.1, scripted per test (and by benchmarks/llm_bench.py).

It speaks `POST /v1/chat/completions` over HTTP, so the openai SDK's real serialization,
retries and error mapping run. A script is a function from the request's JSON to a `Reply`
(status, body, delay, headers); every request is recorded for assertions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAST_RETRY = {"retry-after-ms": "10"}  # the SDK honours it: retries in tests take milliseconds


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list: JSON; str/bytes: sent as they are
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def completion(content: str | None, tokens_in: int = 100, tokens_out: int = 20) -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": "scripted",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
    )


def body_answer(body: str, **tokens: int) -> Reply:
    """The structured answer {"body": ...} as a completion."""
    return completion(json.dumps({"body": body}), **tokens)


def error(status: int, message: str = "scripted error") -> Reply:
    return Reply(status, {"error": {"message": message, "type": "scripted"}}, headers=dict(FAST_RETRY))


def component_of(request: dict[str, Any]) -> str | None:
    """The component a request is about (from the JSON specification in the first user message)."""
    for message in request.get("messages", []):
        if message.get("role") == "user":
            found = re.search(r'"component": "([a-z0-9_]+)"', message.get("content", ""))
            if found:
                return found.group(1)
    return None


class ScriptedLLM:
    def __init__(self, script: Callable[[dict[str, Any]], Reply]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    server.requests.append(request)
                reply = server.script(request) if self.path.endswith("/chat/completions") else Reply(404, {})
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = reply.body if isinstance(reply.body, bytes) else None
                if data is None:
                    text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                    data = text.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def start(self) -> ScriptedLLM:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(script: Callable[[dict[str, Any]], Reply]) -> Iterator[ScriptedLLM]:
    server = ScriptedLLM(script).start()
    try:
        yield server
    finally:
        server.stop()


def sequence(*replies: Reply) -> Callable[[dict[str, Any]], Reply]:
    """Replies in order; the last one repeats."""
    queue = list(replies)

    def script(_: dict[str, Any]) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return script


def per_component(bodies: dict[str, list[Reply]]) -> Callable[[dict[str, Any]], Reply]:
    """Each component's replies in order (the last repeats); others get a 500."""
    queues = {name: list(replies) for name, replies in bodies.items()}

    def script(request: dict[str, Any]) -> Reply:
        queue = queues.get(component_of(request) or "")
        if not queue:
            return error(500, "no script for this component")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return script


# the reviews example's logic, as a model would write it
REVIEWS_BODIES = {
    "scorer": (
        "out = dict(msg)\n"
        'out["words"] = len(str(msg["text"]).split())\n'
        'rating = msg["rating"]\n'
        'out["sentiment"] = "positive" if rating >= 4 else "negative" if rating <= 2 else "neutral"\n'
        'return [("out", out)]'
    ),
    "triage": (
        'sent = [("all", msg)]\n'
        'if msg["sentiment"] == "negative" and msg["rating"] == 1:\n'
        '    sent.append(("escalate", msg))\n'
        "return sent"
    ),
}
