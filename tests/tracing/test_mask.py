from __future__ import annotations

import logging

import pytest

from tracemark.testing import InMemoryExporter
from tracemark.tracing import Tracer, redact_secrets


@pytest.mark.parametrize(
    "text",
    [
        "key sk-proj-abcdefghijklmnopqrstuvwxyz123456",
        "key sk-ant-api03-abcdefghijklmnopqrstuv",
        "aws AKIAIOSFODNN7EXAMPLE",
        "gh ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "slack xoxb-1234567890-abcdefghij",
        "Authorization: Bearer abc.def-ghi_jkl",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF",
        "mail ana.lopez+tag@example.co.uk please",
    ],
)
def test_redact_secrets_removes_common_secrets_from_text(text: str) -> None:
    redacted = redact_secrets(text)
    assert "[REDACTED]" in redacted
    assert redacted.split()[0] == text.split()[0]  # the surrounding words stay


def test_redact_secrets_masks_values_under_secret_keys_and_keeps_the_rest() -> None:
    value = {
        "api_key": "abc",
        "OPENAI_API_KEY": "def",
        "headers": {"Authorization": "xyz", "Accept": "json"},
        "password": 1234,
        "tokens": 12,  # a count, not a secret
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "flag": True,
    }
    assert redact_secrets(value) == {
        "api_key": "[REDACTED]",
        "OPENAI_API_KEY": "[REDACTED]",
        "headers": {"Authorization": "[REDACTED]", "Accept": "json"},
        "password": "[REDACTED]",
        "tokens": 12,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "flag": True,
    }


def test_configured_mask_applies_to_inputs_outputs_attributes_events_and_previews(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    tracer.configure(mask=redact_secrets)

    @tracer.trace(attributes={"api_key": "sk-proj-abcdefghijklmnopqrstuvwxyz"})
    def call(prompt: str, api_key: str) -> str:
        tracer.get_current_active_span().add_event("log", {"msg": "to bob@example.com"})
        return "reply to bob@example.com"

    call("email ana@example.com", api_key="secret-value")
    [trace] = exporter.traces
    root = trace.root
    assert root.inputs == {"prompt": "email [REDACTED]", "api_key": "[REDACTED]"}
    assert root.outputs == "reply to [REDACTED]"
    assert root.attributes == {"api_key": "[REDACTED]"}
    assert root.events[0].attributes == {"msg": "to [REDACTED]"}
    assert "ana@example.com" not in (trace.info.request_preview or "")
    assert "bob@example.com" not in (trace.info.response_preview or "")


def test_a_failing_mask_withholds_the_values_it_failed_on(
    tracer: Tracer, exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_mask(value: object) -> object:
        raise RuntimeError("mask bug")

    tracer.configure(mask=bad_mask)
    with caplog.at_level(logging.WARNING, "tracemark"), tracer.start_span("s") as span:
        span.set_inputs({"password": "hunter2"})
    root = exporter.traces[0].root
    assert root.inputs == "[MASK FAILED]"
    assert "hunter2" not in exporter.traces[0].to_json()
    assert "mask function failed" in caplog.text


def test_mask_none_turns_masking_off(tracer: Tracer, exporter: InMemoryExporter) -> None:
    tracer.configure(mask=redact_secrets)
    tracer.configure(mask=None)
    with tracer.start_span("s", inputs={"api_key": "abc"}):
        pass
    assert exporter.traces[0].root.inputs == {"api_key": "abc"}
