from __future__ import annotations

import asyncio
import threading

from tracemark.testing import InMemoryExporter, span_tree
from tracemark.tracing import TracedThreadPoolExecutor, Tracer, wrap_context


def test_spans_in_asyncio_tasks_nest_under_the_creating_span(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    async def step(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def main() -> None:
        with tracer.start_span("root"):
            tasks = [asyncio.create_task(step(i)) for i in range(3)]
            await asyncio.gather(*tasks)

    asyncio.run(main())
    [trace] = exporter.traces
    assert sorted(c["outputs"] for c in span_tree(trace)["children"]) == [0, 1, 2]


def test_wrap_context_carries_the_span_into_a_thread(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def work(i: int) -> int:
        return i * 2

    with tracer.start_span("root"):
        threads = [threading.Thread(target=wrap_context(work), args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    [trace] = exporter.traces
    assert sorted(c["outputs"] for c in span_tree(trace)["children"]) == [0, 2, 4]


def test_one_wrapped_function_can_run_on_several_threads_at_once(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    barrier = threading.Barrier(2, timeout=10)

    @tracer.trace
    def work() -> None:
        barrier.wait()

    with tracer.start_span("root"):
        wrapped = wrap_context(work)
        threads = [threading.Thread(target=wrapped) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(exporter.traces[0].spans) == 3


def test_traced_executor_nests_worker_spans_under_the_submitter(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def work(i: int) -> int:
        return i + 1

    @tracer.trace
    def fan_out() -> list[int]:
        with TracedThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(work, range(4)))

    assert fan_out() == [1, 2, 3, 4]
    [trace] = exporter.traces
    tree = span_tree(trace)
    assert sorted(c["outputs"] for c in tree["children"]) == [1, 2, 3, 4]


def test_a_plain_thread_starts_its_own_trace(tracer: Tracer, exporter: InMemoryExporter) -> None:
    @tracer.trace
    def work() -> None:
        pass

    with tracer.start_span("root"):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert sorted(t.root.name for t in exporter.traces) == ["root", "work"]


def test_child_on_a_worker_thread_may_outlive_the_root(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    release = threading.Event()
    started = threading.Event()

    @tracer.trace
    def slow() -> str:
        started.set()
        assert release.wait(10)
        return "late"

    with tracer.start_span("root"):
        t = threading.Thread(target=wrap_context(slow))
        t.start()
        assert started.wait(10)
    assert exporter.traces == []  # the trace waits for its last span
    release.set()
    t.join()
    [trace] = exporter.traces
    assert [c.outputs for c in trace.root.children] == ["late"]


def test_suppress_records_nothing_inside_and_restores_the_current_span(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    from tracemark.tracing import suppress

    @tracer.trace
    def step(i: int) -> int:
        return i

    with suppress():
        step(1)  # would be a trace of its own
    with tracer.start_span("root") as root:
        step(2)
        with suppress():
            step(3)  # would nest under root
            assert tracer.get_current_active_span() is not root
        assert tracer.get_current_active_span() is root
    step(4)
    trees = [span_tree(t) for t in exporter.traces]
    assert [(t["name"], [c["outputs"] for c in t.get("children", [])]) for t in trees] == [
        ("root", [2]),
        ("step", []),
    ]
    assert trees[1]["outputs"] == 4
