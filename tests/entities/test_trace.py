from tracemark.entities.trace import Span, Trace, TraceInfo


def _trace() -> Trace:
    info = TraceInfo("a" * 32, "0", 1, 5, "OK", name="agent")
    spans = [
        Span("a" * 32, "1" * 16, None, "agent", "AGENT", 0, 5_000_000, "OK"),
        Span("a" * 32, "2" * 16, "1" * 16, "<tool>", "TOOL", 1, 2_000_000, "OK"),
        Span("a" * 32, "3" * 16, "1" * 16, "llm", "CHAT_MODEL", 2, 4_000_000, "OK"),
    ]
    return Trace(info, spans)


def test_tree_navigation_and_json_round_trip():
    trace = _trace()
    assert trace.root.name == "agent"
    assert [c.name for c in trace.root.children] == ["<tool>", "llm"]
    assert [(d, s.name) for d, s in trace.walk()] == [(0, "agent"), (1, "<tool>"), (1, "llm")]
    assert [s.name for s in trace.search_spans(span_type="TOOL")] == ["<tool>"]
    again = Trace.from_json(trace.to_json())
    assert again.to_dict() == trace.to_dict()


def test_notebook_rendering_is_a_readable_escaped_tree():
    page = _trace()._repr_html_()
    assert "agent" in page and "&lt;tool&gt;" in page and "<tool>" not in page
    assert "5.0 ms" in page


def test_notebook_rendering_embeds_the_server_view_when_read_from_a_server():
    trace = _trace()
    trace.ui_url = "http://127.0.0.1:5000/experiments/0/traces/" + "a" * 32
    page = trace._repr_html_()
    assert page.startswith("<iframe") and trace.ui_url in page


def test_expectations_are_the_valid_trace_level_ones_newest_winning():
    from tracemark.entities.trace import Assessment, AssessmentSource

    def expectation(name, value, created, *, span_id=None, valid=True):
        return Assessment(
            f"a-{name}-{created}",
            "a" * 32,
            name,
            Assessment.EXPECTATION,
            value,
            AssessmentSource("HUMAN"),
            created,
            created,
            span_id=span_id,
            valid=valid,
        )

    trace = _trace()
    trace.info.assessments = [
        expectation("answer", "new", 2),
        expectation("answer", "old", 1),
        expectation("facts", ["x"], 1, valid=False),
        expectation("tool_result", 42, 3, span_id="2" * 16),
        Assessment(
            "a-f", "a" * 32, "helpful", Assessment.FEEDBACK, True, AssessmentSource("HUMAN"), 1, 1
        ),
    ]
    assert trace.expectations == {"answer": "new"}
