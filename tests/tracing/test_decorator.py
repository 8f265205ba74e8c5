from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from tracemark.entities.trace import SpanStatusCode
from tracemark.testing import InMemoryExporter, span_tree
from tracemark.tracing import Tracer


def test_nested_calls_make_one_trace_with_inputs_and_outputs(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace(span_type="TOOL")
    def lookup(order_id: str, verbose: bool = False) -> dict[str, str]:
        return {"order_id": order_id, "status": "shipped"}

    @tracer.trace(name="agent", span_type="AGENT", attributes={"version": 2})
    def handle(question: str) -> str:
        return lookup("o-1")["status"]

    assert handle("where is my order?") == "shipped"

    [trace] = exporter.traces
    assert span_tree(trace) == {
        "name": "agent",
        "span_type": "AGENT",
        "status": "OK",
        "inputs": {"question": "where is my order?"},
        "outputs": "shipped",
        "children": [
            {
                "name": "lookup",
                "span_type": "TOOL",
                "status": "OK",
                "inputs": {"order_id": "o-1", "verbose": False},
                "outputs": {"order_id": "o-1", "status": "shipped"},
            }
        ],
    }
    assert trace.root is not None
    assert trace.root.attributes == {"version": 2}
    assert trace.trace_id == "00000000000000000000000000000001"
    assert [s.span_id for s in trace.spans] == ["0000000000000001", "0000000000000002"]
    assert trace.spans[1].parent_id == "0000000000000001"


def test_methods_record_inputs_without_self_or_cls(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    class Agent:
        @tracer.trace
        def answer(self, question: str) -> str:
            return question.upper()

        @tracer.trace
        @classmethod
        def build(cls, name: str) -> str:
            return name

        @tracer.trace
        @staticmethod
        def helper(x: int) -> int:
            return x + 1

    assert Agent().answer("hi") == "HI"
    assert Agent.build("a") == "a"
    assert Agent.helper(1) == 2
    assert [t.root.inputs for t in exporter.traces] == [
        {"question": "hi"},
        {"name": "a"},
        {"x": 1},
    ]


def test_variadic_and_keyword_only_arguments_are_bound_by_name(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def f(a: int, *rest: int, scale: int = 2, **options: str) -> int:
        return a * scale

    @tracer.trace
    def g(a: int, *, b: int = 5) -> int:
        return a + b

    f(1, 2, 3, mode="x")
    g(1)
    assert exporter.traces[0].root.inputs == {
        "a": 1,
        "rest": [2, 3],
        "scale": 2,
        "options": {"mode": "x"},
    }
    assert exporter.traces[1].root.inputs == {"a": 1, "b": 5}


def test_exception_is_recorded_and_propagates_unchanged(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    error = ValueError("bad order id")

    @tracer.trace
    def lookup(order_id: str) -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        lookup("x")
    assert raised.value is error

    [trace] = exporter.traces
    span = trace.root
    assert span is not None
    assert span.status_code == SpanStatusCode.ERROR
    assert span.status_message == "ValueError: bad order id"
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad order id"
    assert "raise error" in event.attributes["exception.stacktrace"]
    assert trace.info.status == "ERROR"


def test_async_functions_nest(tracer: Tracer, exporter: InMemoryExporter) -> None:
    @tracer.trace
    async def fetch(i: int) -> int:
        await asyncio.sleep(0)
        return i * 10

    @tracer.trace
    async def gather() -> list[int]:
        return list(await asyncio.gather(fetch(1), fetch(2)))

    assert asyncio.run(gather()) == [10, 20]
    [trace] = exporter.traces
    tree = span_tree(trace)
    assert tree["outputs"] == [10, 20]
    assert sorted(c["outputs"] for c in tree["children"]) == [10, 20]


def test_generator_span_ends_when_generator_is_exhausted(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace(span_type="LLM")
    def stream(n: int):
        for i in range(n):
            yield f"tok{i}"

    gen = stream(3)
    assert next(gen) == "tok0"
    assert exporter.traces == []
    assert list(gen) == ["tok1", "tok2"]
    [trace] = exporter.traces
    assert trace.root.outputs == ["tok0", "tok1", "tok2"]
    assert trace.root.status_code == "OK"


def test_generator_outputs_use_the_output_reducer(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace(output_reducer="".join)
    def stream():
        yield "Hel"
        yield "lo"

    assert "".join(stream()) == "Hello"
    assert exporter.traces[0].root.outputs == "Hello"


def test_generator_closed_early_ends_its_span_with_items_so_far(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def stream():
        yield 1
        yield 2
        yield 3

    gen = stream()
    next(gen)
    gen.close()
    [trace] = exporter.traces
    assert trace.root.outputs == [1]
    assert trace.root.status_code == "OK"


def test_generator_body_sees_its_span_but_the_caller_does_not_between_yields(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def child() -> str:
        return "c"

    @tracer.trace
    def stream():
        yield child()
        yield child()

    @tracer.trace
    def consumer() -> list[str]:
        out = []
        for item in stream():
            out.append(item)
            assert tracer.get_current_active_span().name == "consumer"
        return out

    consumer()
    tree = span_tree(exporter.traces[0])
    assert tree["name"] == "consumer"
    [stream_node] = tree["children"]
    assert [c["name"] for c in stream_node["children"]] == ["child", "child"]


def test_generator_error_is_recorded_with_items_so_far(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def stream():
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        list(stream())
    root = exporter.traces[0].root
    assert root.outputs == [1]
    assert root.status_code == "ERROR"


def test_generator_send_and_throw_reach_the_wrapped_generator(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def echo():
        received = yield "ready"
        while True:
            try:
                received = yield received * 2
            except KeyError:
                received = yield "recovered"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send(2) == 4
    assert gen.throw(KeyError("k")) == "recovered"
    gen.close()
    assert exporter.traces[0].root.outputs == ["ready", 4, "recovered"]


def test_async_generator_span_lasts_until_exhausted(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    async def inner() -> str:
        return "x"

    @tracer.trace(output_reducer=lambda items: "".join(items))
    async def stream(n: int):
        for _ in range(n):
            yield await inner()

    async def main() -> list[str]:
        return [item async for item in stream(2)]

    assert asyncio.run(main()) == ["x", "x"]
    [trace] = exporter.traces
    tree = span_tree(trace)
    assert tree["outputs"] == "xx"
    assert [c["name"] for c in tree["children"]] == ["inner", "inner"]


def test_async_generator_closed_early_ends_its_span(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    async def stream():
        yield 1
        yield 2

    async def main() -> None:
        agen = stream()
        assert await agen.__anext__() == 1
        await agen.aclose()

    asyncio.run(main())
    assert exporter.traces[0].root.outputs == [1]


def test_disabled_tracing_calls_straight_through(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    tracer.configure(enabled=False)

    @tracer.trace
    def f(x: int) -> int:
        return x + 1

    @tracer.trace
    def gen():
        yield 1

    @tracer.trace
    async def coro() -> int:
        return 3

    assert f(1) == 2
    assert list(gen()) == [1]
    assert asyncio.run(coro()) == 3
    assert exporter.traces == []


def test_sampled_out_root_skips_the_whole_trace(tracer: Tracer, exporter: InMemoryExporter) -> None:
    tracer.configure(sampling_ratio=0.0)

    @tracer.trace
    def child() -> int:
        span = tracer.get_current_active_span()
        assert span is not None and not span.recording
        return 1

    @tracer.trace
    def root() -> int:
        with tracer.start_span("manual") as span:
            span.set_outputs("ignored")
        return child()

    assert root() == 1
    assert exporter.traces == []


def test_per_function_sample_ratio_overrides_the_global_ratio(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    tracer.configure(sampling_ratio=0.0)

    @tracer.trace(sample_ratio=1.0)
    def always() -> int:
        return 1

    @tracer.trace
    def default() -> int:
        return 2

    always()
    default()
    assert [t.root.name for t in exporter.traces] == ["always"]


def test_sample_ratio_out_of_range_is_rejected(tracer: Tracer) -> None:
    with pytest.raises(ValueError, match="sample_ratio"):
        tracer.trace(sample_ratio=2.0)


def test_unserializable_arguments_degrade_to_a_readable_form(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @dataclass
    class Order:
        id: str
        raw: bytes

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    @tracer.trace
    def f(order: Order, thing: Opaque, tags: set[str]) -> Opaque:
        return thing

    f(Order("o-1", b"\x00\x01"), Opaque(), {"a"})
    root = exporter.traces[0].root
    assert root.inputs == {
        "order": {"id": "o-1", "raw": "AAE="},
        "thing": "<Opaque>",
        "tags": ["a"],
    }
    assert root.outputs == "<Opaque>"


def test_functools_metadata_is_preserved(tracer: Tracer) -> None:
    @tracer.trace
    def documented(x: int) -> int:
        """Doc."""
        return x

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doc."


def test_generator_first_iterated_after_its_creator_returned_starts_its_own_trace(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    # The wrapper stays a generator function (so inspect.isgeneratorfunction holds), and
    # a generator's body, span included, only starts on its first iteration.
    @tracer.trace
    def stream():
        yield 1

    @tracer.trace
    def handler():
        return stream()

    assert list(handler()) == [1]
    assert [t.root.name for t in exporter.traces] == ["handler", "stream"]
    import inspect

    assert inspect.isgeneratorfunction(stream)
