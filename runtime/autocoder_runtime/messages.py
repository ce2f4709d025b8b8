"""Messages, their envelopes and the errors a component raises for one message."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from autocoder_runtime.system import Delivery

Message = dict[str, Any]


class MessageModel(BaseModel):
    """Base of every generated schema model: unknown fields, type coercion and non-finite
    numbers are all refused."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Rejected(Exception):
    """A message the component cannot handle: it goes to the dead-letter table. Permanent:
    retrying the same message would fail the same way."""


class OutputInvalid(Rejected):
    """The component's logic produced a message its output schema refuses: a bug in the logic
    for this input (the property tests look for these)."""


class Transient(Exception):
    """A failure worth retrying (a peer's 429 or 5xx, a dropped connection). `retry_after` is the
    delay the peer asked for, in seconds, when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


_UUID4_CLEAR = ~(0xF000 << 64 | 0xC000 << 48)  # the version and variant bits of a UUID
_UUID4_SET = 0x4000 << 64 | 0x8000 << 48  # version 4, RFC 4122 variant


def new_trace_id() -> str:
    """A new trace id: `uuid.uuid4().hex` (the same 122 random bits and the same text), made
    without a UUID object, whose checks of its arguments cost most of the call."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


@dataclass
class Envelope:
    """A message in flight with its trace id, the inbox entry it descends from and the span
    (of the component that emitted it in this process) its handling is a child of."""

    payload: Message
    trace_id: str = field(default_factory=new_trace_id)
    delivery: Delivery | None = None
    span_id: int | None = None


def validate(model: type[BaseModel], payload: Any, error: type[Rejected] = Rejected) -> Message:
    """Validate a message against its schema; return it normalised (defaults filled).

    What `model.model_validate(payload).model_dump(mode="json")` does, by the model's own
    validator and serializer without those methods' wrappers around them (their keyword
    arguments, all at their defaults, cost about as much as validating a small message)."""
    try:
        dumped: Message = model.__pydantic_serializer__.to_python(
            model.__pydantic_validator__.validate_python(payload), mode="json"
        )
        return dumped
    except ValidationError as exc:
        raise error(f"schema {model.__name__}: {field_errors(exc)}") from None


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


UNSERIALIZABLE_PREVIEW = 2000


def safe_json(value: Any) -> str:
    """JSON text of a message, and never an exception: a value JSON cannot hold (an int past
    Python's digit limit, a non-finite float, an object) is replaced by a description of it, so
    a dead-letter write cannot fail on the payload it records."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        try:
            preview = repr(value)[:UNSERIALIZABLE_PREVIEW]
        except (ValueError, RecursionError):
            preview = f"<{type(value).__name__}>"
        return json.dumps({"unserializable": preview, "reason": f"{type(exc).__name__}: {exc}"[:500]})


def strict_json(value: Message) -> str:
    """JSON text of a message for a store: a value JSON cannot hold is the message's fault, so
    it is rejected (dead-lettered) rather than stored altered."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise Rejected(f"message cannot be stored as JSON: {type(exc).__name__}: {exc}"[:500]) from None
