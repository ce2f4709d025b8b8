"""The kernel path's shortcuts do what the longer way did: `validate` gives what pydantic's
model_validate/model_dump give (and refuses what they refuse), a trace id is a uuid4's hex, the
labelled series a component counts on are its registry's own (a renewed registry's after a
renew), a consumer lets the loop run between messages, and a message emitted to one, several
or no targets reaches each of them once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

import pytest
from autocoder_runtime.component import Component
from autocoder_runtime.kinds import Custom, Store
from autocoder_runtime.messages import Envelope, Message, MessageModel, Rejected, new_trace_id, validate
from autocoder_runtime.metrics import Metrics
from autocoder_runtime.system import System
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError
from rtkit import Item, make, spec


class Nested(MessageModel):
    tag: str = Field(default="t", max_length=5)
    at: float = 0.0


class Shape(MessageModel):
    id: str = Field(pattern=r"^[a-z]{1,8}$")
    n: int = Field(default=3, ge=-100, le=100)
    ratio: float = Field(default=0.5, ge=0, le=1)
    flags: list[bool] = []
    inner: Nested = Nested()
    maybe: str | None = None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-200, 200) | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.one_of(
    st.fixed_dictionaries(
        {"id": st.from_regex(r"^[a-z]{1,8}$", fullmatch=True)},
        optional={
            "n": st.integers(-150, 150),
            "ratio": st.floats(allow_nan=True),
            "flags": st.lists(st.booleans() | st.integers(0, 1), max_size=3),
            "inner": st.fixed_dictionaries({}, optional={"tag": st.text(max_size=7), "at": st.floats()}),
            "maybe": st.none() | st.text(max_size=4) | st.integers(),
            "extra": json_values,
        },
    ),
    st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    json_values,
)


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_validate_is_model_validate_then_model_dump(payload: Any) -> None:
    try:
        expected: dict[str, Any] | None = Shape.model_validate(payload).model_dump(mode="json")
        errors = None
    except ValidationError as exc:
        expected, errors = None, exc.errors(include_url=False, include_input=False)
    if errors is None:
        assert validate(Shape, payload) == expected
        return
    with pytest.raises(Rejected) as raised:
        validate(Shape, payload)
    assert raised.value.args[0].startswith("schema Shape: ")
    assert len(errors) == raised.value.args[0].count("'loc'")


def test_a_trace_id_is_the_hex_of_a_version_4_uuid() -> None:
    ids = {new_trace_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, text)
    assert all(len(Envelope({}).trace_id) == 32 for _ in range(10))


class Quiet(Custom):
    """Takes each message and emits nothing, without ever waiting."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {}
    seen: ClassVar[list[str]] = []

    def handle_message(self, port: str, msg: Message) -> list[tuple[str, Message]]:
        type(self).seen.append(msg["id"])
        return []


class Pass(Custom):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Item}

    def handle_message(self, port: str, msg: Message) -> list[tuple[str, Message]]:
        return [("out", msg)]


def sample(system: System, name: str, component: str) -> float | None:
    """A sample of the system's /metrics, as a scrape reads it."""
    return system.metrics.registry.get_sample_value(f"{system.name}_{name}", {"component": component})


def test_a_consumer_lets_the_loop_run_between_messages_that_never_wait() -> None:
    Quiet.seen = []
    system = make("yield", {"quiet": Quiet}, [])
    quiet = system.components["quiet"]

    async def run() -> list[int]:
        quiet.queues = {"in": asyncio.Queue()}
        for i in range(20):
            quiet.queues["in"].put_nowait(Envelope({"id": f"m{i}"}))
        consumer = asyncio.create_task(quiet._consume("in"))
        progress = []
        for _ in range(5):
            await asyncio.sleep(0)
            progress.append(len(Quiet.seen))
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        return progress

    progress = asyncio.run(run())
    assert progress[-1] < 20  # the consumer did not take all twenty in one turn
    assert progress == sorted(progress) and progress[-1] > progress[0]
    assert sample(system, "messages_received_total", "quiet") == len(Quiet.seen)


@pytest.mark.parametrize("targets", [0, 1, 3])
def test_an_output_reaches_each_bound_input_once_with_its_own_copy(targets: int) -> None:
    sinks = {f"q{i}": Quiet for i in range(targets)}
    system = make("fan", {"p": Pass, **sinks}, [("p", "out", name, "in") for name in sinks])
    source = system.components["p"]

    async def run() -> None:
        for name in sinks:
            system.components[name].queues = {"in": asyncio.Queue()}
        await source.handle("in", Envelope({"id": "a"}, trace_id="t" * 32))

    asyncio.run(run())
    got = [system.components[name].queues["in"].get_nowait() for name in sinks]
    assert [e.payload for e in got] == [{"id": "a", "n": 0, "ts": 0.0, "act": "ok"}] * targets
    assert len({id(e.payload) for e in got}) == targets  # each target may change its own
    assert all(e.trace_id == "t" * 32 for e in got)
    assert all(system.components[name].queues["in"].empty() for name in sinks)
    assert sample(system, "messages_emitted_total", "p") == 1
    assert sample(system, "messages_received_total", "p") == 1
    assert sample(system, "messages_dropped_total", "p") == 0
    assert sample(system, "in_flight", "p") == 0
    assert sample(system, "processing_seconds_count", "p") == 1


def test_the_series_a_component_counts_on_follow_its_systems_registry() -> None:
    system = make("series", {"quiet": Quiet}, [])
    quiet = system.components["quiet"]
    first = quiet.series()
    assert first.received is system.metrics.received.labels(component="quiet")
    assert quiet.series() is first
    old = system.metrics
    system.metrics = Metrics("series")  # what a test's reused system does between runs
    system.metrics.touch("quiet")
    asyncio.run(quiet.handle("in", Envelope({"id": "b"})))
    assert sample(system, "messages_received_total", "quiet") == 1
    assert sample(system, "processing_seconds_count", "quiet") == 1
    assert old.registry.get_sample_value("series_messages_received_total", {"component": "quiet"}) == 0


class BadKey(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    spec = spec(config={"key": "id", "unknown": 1})


def test_a_store_whose_config_fails_validation_refuses_every_message_not_only_the_first() -> None:
    store = make("bad", {"bad": BadKey}, []).components["bad"]
    assert isinstance(store, Store)
    for _ in range(2):
        with pytest.raises(ValidationError):
            store.config()


def test_a_component_without_the_input_port_rejects_the_message() -> None:
    quiet: Component = make("noport", {"quiet": Quiet}, []).components["quiet"]

    async def run() -> None:
        dead: list[BaseException] = []

        async def dead_letter(component: str, port: str, exc: BaseException, envelope: Envelope) -> None:
            dead.append(exc)

        quiet.system.dead_letter = dead_letter  # type: ignore[method-assign]
        await quiet.handle("nope", Envelope({"id": "c"}))
        assert [str(e) for e in dead] == ["no input port 'nope'"]

    asyncio.run(run())
