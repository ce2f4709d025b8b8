"""One chat completion from an OpenAI-compatible server, through the official `openai` SDK.

The SDK retries transient failures (connection errors, timeouts, 408/409/429, 5xx) with
exponential backoff and honours Retry-After; what it finally raises is a `ModelUnavailable`
naming the cause. Structured output (a JSON schema) is asked for first; a server that refuses
`response_format` (an error naming it) is asked again without it, and fenced code is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autocoder.llm.prompt import RESPONSE_SCHEMA
from autocoder.llm.settings import LLMSettings


class ModelUnavailable(RuntimeError):
    """The server could not give an answer, after the SDK's retries."""


class MalformedResponse(ValueError):
    """A 200 answer that is not a usable chat completion (no choices, no content, not JSON)."""


@dataclass(frozen=True)
class Answer:
    content: str
    tokens_in: int
    tokens_out: int

    def to_json(self) -> dict[str, Any]:
        return {"content": self.content, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out}


class ChatClient:
    def __init__(self, settings: LLMSettings) -> None:
        import openai

        self.settings = settings
        self.structured = True
        self.client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "no-key",  # local servers (llama.cpp, vLLM) need none
            timeout=settings.timeout,
            max_retries=settings.retries,
        )

    def parameters(self) -> dict[str, Any]:
        """The request parameters besides the messages (part of the cache key)."""
        params: dict[str, Any] = {
            "model": self.settings.model,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }
        if self.structured:
            params["response_format"] = {"type": "json_schema", "json_schema": RESPONSE_SCHEMA}
        return params

    def complete(self, messages: list[dict[str, str]]) -> Answer:
        import openai

        try:
            response = self.client.chat.completions.create(messages=messages, **self.parameters())  # type: ignore[arg-type]
        except openai.APIStatusError as exc:
            if self.structured and "response_format" in str(exc):
                # no structured output here (a 400, or llama.cpp's 500): ask in plain text
                self.structured = False
                return self.complete(messages)
            raise ModelUnavailable(
                f"the server answered {exc.status_code}: {_detail(exc)} ({self.settings.retries} retries)"
            ) from None
        except openai.APITimeoutError:
            raise ModelUnavailable(
                f"the model did not answer within {self.settings.timeout:g} s "
                f"({self.settings.retries} retries)"
            ) from None
        except openai.APIConnectionError as exc:
            raise ModelUnavailable(
                f"cannot reach {self.settings.base_url or 'the OpenAI API'}: {exc} "
                f"({self.settings.retries} retries)"
            ) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise MalformedResponse(f"the answer is not a chat completion: {exc}") from None
        return _answer(response)


def _answer(response: Any) -> Answer:
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedResponse("the answer has no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if not isinstance(content, str) or not content.strip():
        raise MalformedResponse("the answer has no content")
    usage = getattr(response, "usage", None)
    tokens_in = getattr(usage, "prompt_tokens", 0) or 0
    tokens_out = getattr(usage, "completion_tokens", 0) or 0
    return Answer(content, int(tokens_in), int(tokens_out))


def _detail(exc: Any) -> str:
    return str(getattr(exc, "message", None) or exc)[:300]
