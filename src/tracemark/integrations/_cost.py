"""The cost in USD of one LLM call, from its token usage and the `genai-prices` table.

`genai-prices` is the maintained price table (install `tracemark[cost]`). It is imported
lazily, on a background thread when an integration is enabled, because loading the table
takes about half a second. A model the table does not know gets no cost: never a guess.

One `genai_prices.calc_price` call takes about half a millisecond, too much for every LLM
call. For a model whose price is linear in the token counts (no tiers, no time-of-day
prices) the price per token of each kind is measured once with `calc_price` itself and
then applied by multiplication; everything else goes through `calc_price` each time. A
test checks that both paths agree over the whole table.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from decimal import Decimal
from typing import Any

__all__ = ["COST_KEY", "UsageCounts", "cost_usd", "provider_for_url", "warm_up"]

logger = logging.getLogger("tracemark.integrations")

COST_KEY = "gen_ai.usage.cost"
"""The span attribute holding the call's cost in USD; summed into `TraceInfo.cost`."""

UsageCounts = dict[str, int]
"""genai-prices usage keys (`input_tokens` including cached ones, `output_tokens`,
`cache_read_tokens`, `cache_write_tokens`, ...) mapped to counts."""

# Usage keys the linear fast path handles, each with the keys it is a part of.
_PARENTS: dict[str, tuple[str, ...]] = {
    "input_tokens": (),
    "output_tokens": (),
    "cache_read_tokens": ("input_tokens",),
    "cache_write_tokens": ("input_tokens",),
    "cache_write_1h_tokens": ("input_tokens", "cache_write_tokens"),
}
_PROBE = 1_000_000
_CACHE_TTL_S = 3600.0  # prices can change on a date: re-measure now and then
_UNKNOWN = object()
_SLOW = object()

_ready = threading.Event()
_start_lock = threading.Lock()
_started = False
_warned = False
_prices: Any = None  # the genai_prices module, once imported; False when not installed
_entries: dict[tuple[str, str, str | None], tuple[float, Any]] = {}
_providers_by_url: dict[str, str | None] = {}


def _load() -> None:
    global _prices
    try:
        import genai_prices
        from genai_prices.data_snapshot import get_snapshot

        get_snapshot()  # builds the table: the slow part
        _prices = genai_prices
    except ImportError:
        _prices = False
    except Exception:
        logger.warning("tracemark: loading genai-prices failed; costs are off", exc_info=True)
        _prices = False
    finally:
        _ready.set()


def warm_up(*, silent: bool = True) -> None:
    """Start loading the price table on a background thread (once).

    Args:
        silent: False logs a warning (once) when genai-prices is not installed.
    """
    global _started, _warned
    if not silent and not _warned and not available():
        _warned = True
        logger.warning(
            "tracemark: genai-prices is not installed, so LLM spans carry tokens but no "
            "cost; pip install 'tracemark[cost]'"
        )
    with _start_lock:
        if _started:
            return
        _started = True
    # The module is imported here, on the caller's thread (a few ms); only the table loads
    # in the background. genai-prices imports `httpx2`, which the OpenAI SDK looks up in
    # `sys.modules` without importing it: imported on the loader thread, it could be seen
    # half-initialized by a client the application creates meanwhile.
    with contextlib.suppress(ImportError):
        import genai_prices  # noqa: F401
    threading.Thread(target=_load, name="tracemark-prices", daemon=True).start()


def available() -> bool:
    """Return whether `genai-prices` is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("genai_prices") is not None


def _module() -> Any:
    if not _ready.is_set():
        warm_up()
        _ready.wait()
    return _prices


def provider_for_url(base_url: str, default: str) -> str:
    """Return the genai-prices provider serving `base_url`, or `default` for unknown hosts.

    A proxy or a self-hosted server keeps the client's own provider: its model names then
    either match that provider's models or get no cost.

    Args:
        base_url: The client's base URL.
        default: The provider of the client library (`"openai"`, `"anthropic"`).
    """
    provider = _providers_by_url.get(base_url, _UNKNOWN)
    if provider is _UNKNOWN:
        provider = None
        prices = _module()
        if prices:
            from genai_prices.data_snapshot import get_snapshot

            try:
                provider = get_snapshot().find_provider(None, None, base_url).id
            except LookupError:
                provider = None
        _providers_by_url[base_url] = provider
    return provider or default


def cost_usd(
    provider: str, model: str | None, usage: UsageCounts, *, service_tier: str | None = None
) -> float | None:
    """Return the cost in USD of a call, or None when the model or its price is unknown.

    Example:
        >>> cost_usd("openai", "gpt-4o-mini", {"input_tokens": 1000, "output_tokens": 100})
        0.00021

    Args:
        provider: A genai-prices provider id (`"openai"`, `"anthropic"`, ...).
        model: The model name the API reported (or was asked for).
        usage: Token counts under genai-prices usage keys.
        service_tier: The service tier the API reported; some tiers cost more or less.
    """
    if not model or not usage:
        return None
    prices = _module()
    if not prices:
        return None
    key = (provider, model, service_tier)
    now = time.monotonic()
    cached = _entries.get(key)
    if cached is None or now - cached[0] > _CACHE_TTL_S:
        cached = (now, _measure(prices, provider, model, service_tier))
        _entries[key] = cached
    entry = cached[1]
    if entry is _UNKNOWN:
        return None
    if entry is not _SLOW:
        fast = _linear_cost(entry, usage)
        if fast is not None:
            return fast
    return _calc(prices, provider, model, usage, service_tier)


def _context(service_tier: str | None) -> dict[str, str] | None:
    return {"service_tier": service_tier} if service_tier else None


def _calc(
    prices: Any, provider: str, model: str, usage: UsageCounts, service_tier: str | None
) -> float | None:
    try:
        result = prices.calc_price(
            prices.Usage(**usage),
            model,
            provider_id=provider,
            price_context=_context(service_tier),
        )
    except LookupError:
        return None
    except Exception:
        # Inconsistent counts (more cached than input tokens, ...): no cost rather than a wrong one.
        logger.debug("tracemark: no price for %s/%s %r", provider, model, usage, exc_info=True)
        return None
    return float(result.total_price)


def _measure(prices: Any, provider: str, model: str, service_tier: str | None) -> Any:
    """Return the per-token prices of a linearly priced model, `_SLOW`, or `_UNKNOWN`."""
    from genai_prices.data_snapshot import get_snapshot
    from genai_prices.types import ModelPrice, TieredPrices

    try:
        _, info = get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return _UNKNOWN
    if not isinstance(info.prices, ModelPrice):
        return _SLOW  # conditional prices (by date or time of day)
    if any(isinstance(v, TieredPrices) for v in vars(info.prices).values()):
        return _SLOW
    for variant in info.price_variants or ():
        if any(isinstance(v, TieredPrices) for v in vars(variant.prices).values()):
            return _SLOW

    def price(counts: UsageCounts) -> Decimal:
        return prices.calc_price(
            prices.Usage(**counts),
            model,
            provider_id=provider,
            price_context=_context(service_tier),
        ).total_price

    try:
        base = price({"input_tokens": 0, "output_tokens": 0})
        per_token: dict[str, Decimal] = {}
        for key, parents in _PARENTS.items():
            with_parents = {p: _PROBE for p in parents}
            before = price(with_parents) if parents else base
            per_token[key] = (price({**with_parents, key: _PROBE}) - before) / _PROBE
    except Exception:
        logger.debug("tracemark: cannot measure prices of %s/%s", provider, model, exc_info=True)
        return _SLOW
    # Floats from here: a relative error of 1e-16 on a price is far below a cent.
    return (float(base), {key: float(rate) for key, rate in per_token.items()})


def _linear_cost(entry: tuple[float, dict[str, float]], usage: UsageCounts) -> float | None:
    base, per_token = entry
    total = base
    for key, count in usage.items():
        rate = per_token.get(key)
        if rate is None:
            return None  # a kind of usage the fast path does not know
        for parent in _PARENTS[key]:
            if usage.get(parent, 0) < count:
                return None  # inconsistent counts: let calc_price decide
        total += rate * count
    return total
