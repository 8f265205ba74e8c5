"""Fixtures for the integration tests: the fake LLM server, real SDK clients, captured traces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tracemark as tm
from tracemark.testing import InMemoryExporter, capture_traces
from tracemark.testing.llm_server import FakeLLMServer


@pytest.fixture(scope="session")
def server_session() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(server_session: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The fake OpenAI/Anthropic server, with no queued replies or recorded requests."""
    server_session.clear()
    yield server_session
    server_session.clear()


@pytest.fixture
def traces() -> Iterator[InMemoryExporter]:
    """Traces made by the default tracer during the test, exported synchronously."""
    with capture_traces() as exporter:
        yield exporter


@pytest.fixture
def autolog() -> Iterator[None]:
    """OpenAI and Anthropic autolog on for the test, off afterwards."""
    tm.openai.autolog()
    tm.anthropic.autolog()
    yield
    tm.openai.autolog(disable=True)
    tm.anthropic.autolog(disable=True)
