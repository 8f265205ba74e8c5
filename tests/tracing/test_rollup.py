from __future__ import annotations

from tracemark.testing import InMemoryExporter
from tracemark.tracing import Tracer
from tracemark.tracing._rollup import PREVIEW_CHARS


def test_token_usage_is_summed_over_spans(tracer: Tracer, exporter: InMemoryExporter) -> None:
    with tracer.start_span("agent"):
        with tracer.start_span("llm-1", span_type="LLM") as s:
            s.set_attributes({"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5})
        with tracer.start_span("llm-2", span_type="LLM") as s:
            s.set_attributes({"gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 3})
        with tracer.start_span("tool", span_type="TOOL"):
            pass
    info = exporter.traces[0].info
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (17, 8, 25)
    assert info.span_count == 4


def test_traces_without_usage_have_no_token_totals(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    with tracer.start_span("s"):
        pass
    info = exporter.traces[0].info
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (None, None, None)


def test_root_gives_name_status_time_and_truncated_previews(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def answer(question: str) -> str:
        return "y" * 5000

    answer("x" * 5000)
    info = exporter.traces[0].info
    assert info.name == "answer"
    assert info.status == "OK"
    assert info.timestamp_ms == 1000  # TimeGenerator: first reading is 1 s
    assert info.execution_time_ms == 1000
    assert len(info.request_preview) == PREVIEW_CHARS
    assert info.request_preview.startswith('{"question":"xxx')
    assert info.response_preview == ('"' + "y" * 5000)[:PREVIEW_CHARS]
    assert info.experiment_id == "0"
    assert info.run_id is None
