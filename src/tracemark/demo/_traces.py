"""Log realistic agent traces for the demo: a support agent answering customers in sessions.

Each turn is one trace: the agent (AGENT) plans with a chat model that calls tools
(CHAT_MODEL with OpenAI-style tool calls), looks an order up (TOOL), retrieves policy
documents (RETRIEVER, with an EMBEDDING step), answers (CHAT_MODEL with token usage) and
checks the answer (GUARDRAIL). Turns share a `session_id`, so they read as conversations;
one turn fails with a tool timeout; some turns get human feedback, a judge score and an
expectation.

Nothing sleeps or touches the network: a simulated clock gives every step a realistic
latency, and turns are spread over the last hours so the overview charts have a shape.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import tracemark as tm
from tracemark.tracing.fluent import DEFAULT_TRACER

__all__ = ["DemoTraces", "log_demo_traces"]

MODEL = "gpt-4o-mini"
PROVIDER = "openai"
SYSTEM_PROMPT = (
    "You are the support assistant of Acme Outdoor. Answer from the policy documents and "
    "the order data; say so when you do not know."
)

DOCUMENTS = {
    "returns": (
        "doc-returns-01",
        "Items can be returned within 30 days of delivery for a full refund. Worn or used "
        "items are refunded at 50% if returned within 60 days.",
    ),
    "shipping": (
        "doc-shipping-02",
        "Standard shipping takes 3-5 business days; express ships next business day. "
        "Orders over $75 ship free.",
    ),
    "warranty": (
        "doc-warranty-03",
        "Tents and backpacks carry a 2-year warranty against manufacturing defects. Damage "
        "from misuse is not covered.",
    ),
    "exchange": (
        "doc-exchange-04",
        "Sizes can be exchanged for free within 30 days; we ship the new size once the "
        "original is scanned by the carrier.",
    ),
}

ORDERS = {
    "A-1042": {"status": "delivered", "delivered": "2026-10-28", "items": ["Trail tent 2P"]},
    "A-1077": {"status": "in transit", "eta": "2026-11-03", "items": ["Down jacket M"]},
    "A-1103": {"status": "processing", "items": ["Hiking boots 43", "Wool socks"]},
}


@dataclass(frozen=True, slots=True)
class Turn:
    """One user message and what the agent does with it."""

    question: str
    answer: str
    topic: str | None = None  # the policy document to retrieve
    order_id: str | None = None  # the order to look up
    fails: bool = False  # the order lookup times out


SESSIONS: dict[str, tuple[str, list[Turn]]] = {
    "sess-returns-ana": (
        "u-ana",
        [
            Turn(
                "Hi! Can I still return the tent from order A-1042?",
                "Yes: order A-1042 was delivered on 2026-10-28, so you are within the 30-day "
                "window for a full refund.",
                topic="returns",
                order_id="A-1042",
            ),
            Turn(
                "I used it once, does that matter?",
                "A used item is refunded at 50% if returned within 60 days; unused items get a "
                "full refund.",
                topic="returns",
            ),
            Turn(
                "OK, how do I send it back?",
                "Start the return from your order page; we email you a prepaid label.",
                topic="returns",
            ),
        ],
    ),
    "sess-shipping-ben": (
        "u-ben",
        [
            Turn(
                "Where is my jacket? Order A-1077.",
                "Order A-1077 is in transit and should arrive by 2026-11-03.",
                order_id="A-1077",
            ),
            Turn(
                "Would express shipping have been faster?",
                "Express ships the next business day; standard takes 3-5 business days.",
                topic="shipping",
            ),
        ],
    ),
    "sess-warranty-chen": (
        "u-chen",
        [
            Turn(
                "The zipper of my backpack broke after a year. Is that covered?",
                "Backpacks have a 2-year warranty against manufacturing defects, so a broken "
                "zipper after one year is covered.",
                topic="warranty",
            ),
            Turn(
                "What about order A-1103, when does it ship?",
                "",
                order_id="A-1103",
                fails=True,
            ),
            Turn(
                "Can you try again for A-1103?",
                "Order A-1103 is still being processed; it ships within 2 business days.",
                order_id="A-1103",
            ),
        ],
    ),
    "sess-exchange-dana": (
        "u-dana",
        [
            Turn(
                "The boots are too small, can I get a 44 instead?",
                "Yes, size exchanges are free within 30 days; we ship the 44 as soon as the "
                "carrier scans your return.",
                topic="exchange",
            ),
            Turn(
                "Do I pay for shipping the new pair?",
                "No, exchanges ship free.",
                topic="exchange",
            ),
        ],
    ),
}

# Single questions outside any session (no session_id).
SINGLE_TURNS = [
    ("u-eve", Turn("Do you ship to Canada?", "I don't know; our documents only cover the US.")),
    (
        "u-finn",
        Turn(
            "What is your return policy?",
            "Items can be returned within 30 days of delivery for a full refund.",
            topic="returns",
        ),
    ),
]


class SimulatedClock:
    """A nanosecond clock that only moves when told to, so demo latencies are realistic."""

    def __init__(self, start_ns: int) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, ms: float) -> None:
        """Move the clock forward by `ms` milliseconds."""
        self.now_ns += int(ms * 1_000_000)


class OrderServiceTimeout(TimeoutError):
    """The simulated order service did not answer in time."""


@dataclass(slots=True)
class DemoTraces:
    """What `log_demo_traces` logged: trace ids by session, and the failed trace."""

    trace_ids: list[str] = field(default_factory=list)
    sessions: dict[str, list[str]] = field(default_factory=dict)
    error_trace_id: str | None = None


def log_demo_traces(*, seed: int = 0, now_ns: int | None = None) -> DemoTraces:
    """Log the demo agent's traces and feedback into the active experiment.

    Example:
        tm.set_experiment("support-agent")
        logged = log_demo_traces()
        tm.get_trace(logged.error_trace_id).info.status  # "ERROR"

    Args:
        seed: Seeds latencies and token counts.
        now_ns: The time the last turn ends near; now by default.
    """
    rng = random.Random(seed)
    now_ns = time.time_ns() if now_ns is None else now_ns
    clock = SimulatedClock(now_ns - 6 * 3600 * 1_000_000_000)
    previous_clock = DEFAULT_TRACER.clock
    tm.tracing.configure(clock=clock)
    logged = DemoTraces()
    try:
        for session_id, (user_id, turns) in SESSIONS.items():
            history: list[dict[str, Any]] = []
            ids = logged.sessions.setdefault(session_id, [])
            for turn in turns:
                trace_id = _run_turn(rng, clock, turn, history, session_id, user_id)
                ids.append(trace_id)
                logged.trace_ids.append(trace_id)
                if turn.fails:
                    logged.error_trace_id = trace_id
                clock.advance(rng.uniform(20_000, 90_000))  # the user reads and types
            clock.advance(rng.uniform(20, 60) * 60_000)  # the next conversation starts later
        for user_id, turn in SINGLE_TURNS:
            logged.trace_ids.append(_run_turn(rng, clock, turn, [], None, user_id))
            clock.advance(rng.uniform(5, 20) * 60_000)
    finally:
        tm.tracing.configure(clock=previous_clock)
    tm.flush()
    _log_assessments(logged)
    return logged


def _run_turn(
    rng: random.Random,
    clock: SimulatedClock,
    turn: Turn,
    history: list[dict[str, Any]],
    session_id: str | None,
    user_id: str,
) -> str:
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        *history,
        {"role": "user", "content": turn.question},
    ]
    try:
        with tm.start_span("support_agent", span_type="AGENT") as root:
            root.set_inputs({"messages": messages})
            tm.update_current_trace(
                session_id=session_id,
                user_id=user_id,
                tags={"env": "prod", "agent": "support", "app_version": "1.4.2"},
            )
            answer = _agent_steps(rng, clock, turn, messages)
            reply = {"role": "assistant", "content": answer}
            root.set_outputs(reply)
            clock.advance(rng.uniform(2, 6))
    except OrderServiceTimeout:
        answer = "Sorry, I could not reach the order system. Please try again."
    history.extend(
        [{"role": "user", "content": turn.question}, {"role": "assistant", "content": answer}]
    )
    trace_id = tm.get_last_active_trace_id()
    assert trace_id is not None
    return trace_id


def _agent_steps(
    rng: random.Random, clock: SimulatedClock, turn: Turn, messages: list[dict[str, Any]]
) -> str:
    context: list[dict[str, Any]] = list(messages)
    with tm.start_span("input_guardrail", span_type="GUARDRAIL") as span:
        span.set_inputs({"text": turn.question})
        clock.advance(rng.uniform(8, 25))
        span.set_outputs({"allowed": True, "categories": []})
    tool_calls = _plan(rng, clock, turn, context)
    if tool_calls:
        context.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
    if turn.order_id is not None:
        order = _lookup_order(rng, clock, turn)
        context.append({"role": "tool", "tool_call_id": "call_order", "content": _json_text(order)})
    if turn.topic is not None:
        docs = _retrieve(rng, clock, turn)
        context.append(
            {
                "role": "tool",
                "tool_call_id": "call_docs",
                "content": "\n\n".join(d["page_content"] for d in docs),
            }
        )
    return _answer(rng, clock, turn, context)


def _usage(span: Any, rng: random.Random, prompt_tokens: int, completion_tokens: int) -> None:
    span.set_attributes(
        {
            "gen_ai.request.model": MODEL,
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.usage.input_tokens": prompt_tokens + rng.randint(0, 40),
            "gen_ai.usage.output_tokens": completion_tokens + rng.randint(0, 15),
        }
    )


def _plan(
    rng: random.Random, clock: SimulatedClock, turn: Turn, context: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    calls = []
    if turn.order_id is not None:
        calls.append(_tool_call("call_order", "lookup_order", {"order_id": turn.order_id}))
    if turn.topic is not None:
        calls.append(_tool_call("call_docs", "search_policies", {"query": turn.question}))
    with tm.start_span("plan", span_type="CHAT_MODEL") as span:
        span.set_inputs({"model": MODEL, "messages": context, "tool_choice": "auto"})
        span.set_chat_tools([_tool_schema("lookup_order"), _tool_schema("search_policies")])
        clock.advance(rng.uniform(350, 900))
        _usage(span, rng, 180 + 25 * len(context), 20 + 15 * len(calls))
        span.set_outputs(
            {
                "id": f"chatcmpl-plan-{rng.randrange(10**8)}",
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "tool_calls": calls}
                        if calls
                        else {"role": "assistant", "content": "No tool needed."},
                        "finish_reason": "tool_calls" if calls else "stop",
                    }
                ],
            }
        )
    return calls


def _lookup_order(rng: random.Random, clock: SimulatedClock, turn: Turn) -> dict[str, Any]:
    with tm.start_span("lookup_order", span_type="TOOL") as span:
        span.set_inputs({"order_id": turn.order_id})
        if turn.fails:
            clock.advance(5000)
            raise OrderServiceTimeout(f"order service did not answer for {turn.order_id} in 5 s")
        clock.advance(rng.uniform(40, 220))
        order = {"order_id": turn.order_id, **ORDERS[turn.order_id or ""]}
        span.set_outputs(order)
        return order


def _retrieve(rng: random.Random, clock: SimulatedClock, turn: Turn) -> list[dict[str, Any]]:
    with tm.start_span("search_policies", span_type="RETRIEVER") as span:
        span.set_inputs({"query": turn.question, "top_k": 3})
        with tm.start_span("embed_query", span_type="EMBEDDING") as embed:
            embed.set_inputs({"input": turn.question, "model": "text-embedding-3-small"})
            clock.advance(rng.uniform(30, 90))
            embed.set_attributes(
                {
                    "gen_ai.request.model": "text-embedding-3-small",
                    "gen_ai.usage.input_tokens": len(turn.question.split()) + 4,
                }
            )
            embed.set_outputs({"dimensions": 1536})
        clock.advance(rng.uniform(20, 120))
        ranked = [turn.topic] + [t for t in DOCUMENTS if t != turn.topic]
        docs = []
        for rank, topic in enumerate(ranked[:3]):
            doc_id, text = DOCUMENTS[topic or ""]
            score = round(0.92 - rank * 0.17 + rng.uniform(-0.03, 0.03), 3)
            docs.append(
                {
                    "id": doc_id,
                    "page_content": text,
                    "metadata": {"source": f"policies/{topic}.md", "score": score},
                }
            )
        span.set_outputs(docs)
    return docs


def _answer(
    rng: random.Random, clock: SimulatedClock, turn: Turn, context: list[dict[str, Any]]
) -> str:
    with tm.start_span("answer", span_type="CHAT_MODEL") as span:
        span.set_inputs({"model": MODEL, "messages": context, "temperature": 0.2})
        clock.advance(rng.uniform(600, 2400))
        _usage(span, rng, 250 + 40 * len(context), 18 + len(turn.answer.split()) * 2)
        span.set_outputs(
            {
                "id": f"chatcmpl-{rng.randrange(10**8)}",
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": turn.answer},
                        "finish_reason": "stop",
                    }
                ],
            }
        )
    return turn.answer


def _tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": _json_text(arguments)},
    }


def _tool_schema(name: str) -> dict[str, Any]:
    parameter = "order_id" if name == "lookup_order" else "query"
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {
                "type": "object",
                "properties": {parameter: {"type": "string"}},
                "required": [parameter],
            },
        },
    }


def _json_text(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _log_assessments(logged: DemoTraces) -> None:
    """Human thumbs, an LLM judge's scores, a correction and an expectation."""
    ana = logged.sessions["sess-returns-ana"]
    ben = logged.sessions["sess-shipping-ben"]
    chen = logged.sessions["sess-warranty-chen"]
    human = tm.AssessmentSource("HUMAN", "support-lead")
    judge = tm.AssessmentSource("LLM_JUDGE", "gpt-4o-judge")
    tm.log_feedback(trace_id=ana[0], name="helpful", value=True, source=human)
    tm.log_feedback(
        trace_id=ana[1],
        name="helpful",
        value=False,
        source=tm.AssessmentSource("HUMAN", "u-ana"),
        rationale="I wanted to know how much I get back, not the policy text.",
    )
    tm.log_feedback(trace_id=ben[0], name="helpful", value=True, source=human)
    for trace_id, score in zip(
        ana + ben + chen, (0.95, 0.6, 0.9, 0.92, 0.85, 0.97, 0.1, 0.88), strict=True
    ):
        tm.log_feedback(
            trace_id=trace_id,
            name="groundedness",
            value=score,
            source=judge,
            rationale="Every claim is supported by the retrieved documents."
            if score > 0.8
            else "Part of the answer is not in the retrieved documents.",
        )
    tm.log_expectation(
        trace_id=ana[1],
        name="expected_answer",
        value="You get 50% of the price back for a used tent returned within 60 days.",
        source=human,
    )
    if logged.error_trace_id is not None:
        wrong = tm.log_feedback(
            trace_id=logged.error_trace_id, name="resolved", value=True, source=judge
        )
        tm.override_feedback(
            trace_id=logged.error_trace_id,
            assessment_id=wrong.assessment_id,
            value=False,
            rationale="The order lookup timed out; the customer got no answer.",
            source=human,
        )
