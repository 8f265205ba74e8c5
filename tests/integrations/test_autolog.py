"""`tm.autolog()`, the integration registry, patching, cost and media references."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest
from openai.resources.chat.completions import Completions

import tracemark as tm
import tracemark.integrations as integrations
from tracemark.integrations import _cost
from tracemark.integrations._media import media_reference, scrub_media
from tracemark.integrations._patch import Instrumentation
from tracemark.testing import InMemoryExporter
from tracemark.tracing import Tracer

# -- the registry --------------------------------------------------------------------------


def test_builtin_integrations_are_registered_as_entry_points() -> None:
    from importlib.metadata import entry_points

    registered = {ep.name: ep.value for ep in entry_points(group=integrations.GROUP)}
    assert registered["openai"] == "tracemark.integrations.openai"
    assert registered["anthropic"] == "tracemark.integrations.anthropic"
    assert {"openai", "anthropic"} <= set(integrations.names())


def test_tm_attribute_resolves_to_the_integration_module() -> None:
    import tracemark.integrations.anthropic
    import tracemark.integrations.openai

    assert tm.openai is tracemark.integrations.openai
    assert tm.anthropic is tracemark.integrations.anthropic
    assert tm.openai.LIBRARY == "openai"
    with pytest.raises(AttributeError):
        _ = tm.no_such_integration


def test_get_names_the_known_integrations_when_one_is_missing() -> None:
    with pytest.raises(KeyError, match="openai"):
        integrations.get("nope")


def test_autolog_enables_and_disables_every_installed_integration() -> None:
    original = Completions.__dict__["create"]
    try:
        enabled = tm.autolog()
        assert {"openai", "anthropic"} <= set(enabled)
        assert Completions.__dict__["create"] is not original
        assert tm.autolog() == enabled  # twice is harmless
    finally:
        assert tm.autolog(disable=True) == enabled
    assert Completions.__dict__["create"] is original


def test_autolog_patches_a_library_only_when_the_application_imports_it() -> None:
    code = textwrap.dedent(
        """
        import sys
        import tracemark as tm
        assert "openai" in tm.autolog()
        assert "openai" not in sys.modules, "autolog must not import the library"
        import openai
        from openai.resources.chat.completions import Completions
        assert hasattr(Completions.create, "__tracemark_wrapped__")
        tm.autolog(disable=True)
        assert not hasattr(Completions.create, "__tracemark_wrapped__")
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_explicit_autolog_of_a_missing_library_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openai" else real(name, *a)
    )
    with pytest.raises(ModuleNotFoundError, match="pip install openai"):
        tm.openai.autolog()
    assert "openai" not in tm.autolog()  # tm.autolog() skips it


# -- patching --------------------------------------------------------------------------------


class _Target:
    def method(self, x: int) -> int:
        return x + 1

    @staticmethod
    def static(x: int) -> int:
        return x * 2


class _Child(_Target):
    pass


def _doubling(original):
    def wrapper(*args, **kwargs):
        return original(*args, **kwargs) * 10

    return wrapper


def test_patches_are_idempotent_and_restore_exactly_what_was_there() -> None:
    inst = Instrumentation("test", "test")
    method, static = _Target.__dict__["method"], _Target.__dict__["static"]
    inst.wrap(_Child, "method", _doubling)  # inherited: patched on the child itself
    inst.wrap(_Target, "method", _doubling)
    inst.wrap(_Target, "method", _doubling)
    inst.wrap(_Target, "missing", _doubling)  # absent in this "version": skipped
    assert _Target().method(1) == 20
    assert _Child().method(1) == 20
    inst.unpatch()
    assert _Target.__dict__["method"] is method
    assert "method" not in _Child.__dict__
    assert _Target.__dict__["static"] is static
    assert _Child().method(1) == 2


def test_a_method_inherited_from_a_wrapped_one_is_not_wrapped_twice() -> None:
    inst = Instrumentation("test", "test")
    inst.wrap(_Target, "method", _doubling)
    inst.wrap(_Child, "method", _doubling)
    try:
        assert _Child().method(1) == 20
        assert "method" not in _Child.__dict__
    finally:
        inst.unpatch()


def test_a_wrapper_rewrapped_by_another_library_is_left_in_place() -> None:
    inst = Instrumentation("test", "test")
    original = _Target.__dict__["method"]
    inst.wrap(_Target, "method", _doubling)
    theirs = _doubling(_Target.__dict__["method"])
    _Target.method = theirs
    try:
        inst.unpatch()
        assert _Target.__dict__["method"] is theirs
    finally:
        _Target.method = original


# -- cost ------------------------------------------------------------------------------------


def _table_models(provider: str) -> list[str]:
    from genai_prices.data_snapshot import get_snapshot

    (found,) = [p for p in get_snapshot().providers if p.id == provider]
    return [m.id for m in found.models]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_fast_cost_path_agrees_with_genai_prices_over_the_whole_table(provider: str) -> None:
    from genai_prices import Usage, calc_price

    rng = random.Random(7)
    checked = 0
    for model in _table_models(provider):
        for _ in range(3):
            input_tokens = rng.randint(0, 300_000)
            usage = {
                "input_tokens": input_tokens,
                "output_tokens": rng.randint(0, 20_000),
                "cache_read_tokens": rng.randint(0, input_tokens // 2),
            }
            if provider == "anthropic":
                usage["cache_write_tokens"] = rng.randint(0, input_tokens // 4)
                usage["cache_write_1h_tokens"] = rng.randint(0, usage["cache_write_tokens"])
            try:
                expected = float(
                    calc_price(Usage(**usage), model, provider_id=provider).total_price
                )
            except Exception:
                expected = None
            assert _cost.cost_usd(provider, model, usage) == pytest.approx(expected), (model, usage)
            checked += 1
    assert checked > 30


def test_unknown_models_and_providers_have_no_cost() -> None:
    usage = {"input_tokens": 100, "output_tokens": 10}
    assert _cost.cost_usd("openai", "my-finetune-that-does-not-exist", usage) is None
    assert _cost.cost_usd("no-such-provider", "gpt-4o", usage) is None
    assert _cost.cost_usd("openai", None, usage) is None
    assert _cost.cost_usd("openai", "gpt-4o", {}) is None
    # More cached than input tokens makes no sense: no cost rather than a wrong one.
    assert _cost.cost_usd("openai", "gpt-4o", {**usage, "cache_read_tokens": 500}) is None


def test_service_tier_changes_the_price_as_genai_prices_says() -> None:
    from genai_prices import Usage, calc_price

    usage = {"input_tokens": 1000, "output_tokens": 100}
    for tier in ("default", "priority", "flex"):
        expected = calc_price(
            Usage(**usage),
            "gpt-4o-mini",
            provider_id="openai",
            price_context={"service_tier": tier},
        ).total_price
        assert _cost.cost_usd("openai", "gpt-4o-mini", usage, service_tier=tier) == pytest.approx(
            float(expected)
        )


def test_provider_is_taken_from_known_api_hosts_only() -> None:
    assert _cost.provider_for_url("https://api.groq.com/openai/v1", "openai") == "groq"
    assert _cost.provider_for_url("https://api.openai.com/v1", "openai") == "openai"
    assert _cost.provider_for_url("http://127.0.0.1:11434/v1", "openai") == "openai"
    assert _cost.provider_for_url("https://llm-proxy.example/v1", "anthropic") == "anthropic"


def test_span_costs_roll_up_into_the_trace(tracer: Tracer, exporter: InMemoryExporter) -> None:
    with tracer.start_span("agent"):
        for cost in (0.25, 0.5):
            with tracer.start_span("llm", span_type="CHAT_MODEL") as span:
                span.set_attributes({"gen_ai.usage.input_tokens": 1, _cost.COST_KEY: cost})
        with tracer.start_span("unpriced", span_type="CHAT_MODEL") as span:
            span.set_attributes({"gen_ai.usage.input_tokens": 1})
    assert exporter.traces[0].info.cost == 0.75

    with tracer.start_span("no-cost"):
        pass
    assert exporter.traces[1].info.cost is None


@pytest.fixture
def tracer(exporter: InMemoryExporter):
    t = Tracer(
        enabled=True,
        sampling_ratio=1.0,
        async_export=False,
        exporters=[exporter],
        experiment_resolver=lambda: ("0", None),
    )
    yield t
    t.shutdown(timeout=10)


@pytest.fixture
def exporter() -> InMemoryExporter:
    return InMemoryExporter()


# -- media -----------------------------------------------------------------------------------


def test_media_reference_names_type_size_and_hash() -> None:
    import base64
    import hashlib

    raw = b"\x89PNG..." * 100
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    digest = hashlib.sha256(raw).hexdigest()
    assert media_reference(url) == f"[image/png base64: {len(raw)} bytes, sha256:{digest}]"
    assert media_reference(base64.b64encode(raw).decode(), "audio/wav").startswith("[audio/wav")


def test_scrub_media_copies_only_what_it_changes() -> None:
    import base64

    text_only = [{"role": "user", "content": "hi"}]
    assert scrub_media(text_only) is text_only
    audio = base64.b64encode(b"RIFF" * 100).decode()
    messages = [
        {"role": "system", "content": "be nice"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "listen"},
                {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        },
    ]
    scrubbed = scrub_media(messages)
    assert scrubbed[0] is messages[0]
    parts = scrubbed[1]["content"]
    assert parts[0] is messages[1]["content"][0]
    assert parts[1]["input_audio"]["data"].startswith("[audio/wav base64: 400 bytes")
    assert parts[1]["input_audio"]["format"] == "wav"
    assert parts[2]["image_url"]["url"] == "https://example.com/cat.png"
    assert messages[1]["content"][1]["input_audio"]["data"] == audio  # the original untouched
