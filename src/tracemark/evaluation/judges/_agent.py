"""The trace judge's loop: call the model, run the tools it asks for, until it answers."""

from __future__ import annotations

import json
from typing import Any

from tracemark.evaluation.judges._model import JudgeModel
from tracemark.evaluation.judges._trace_tools import TOOLS, TraceTools

__all__ = ["run_agent"]


def run_agent(
    model: JudgeModel,
    messages: list[dict[str, Any]],
    tools: TraceTools,
    *,
    json_schema: dict[str, Any] | None,
    name: str,
    max_iterations: int,
) -> str | None:
    """Return the model's final answer, or None when it kept calling tools to the end.

    Model failures raise (as `JudgeModel.chat` does); tool failures go back to the model.

    Args:
        model: The judge model.
        messages: The conversation so far (system and user messages); extended in place.
        tools: The trace's tools.
        json_schema: The answer's schema.
        name: The judge's name, for the calls' spans.
        max_iterations: Model calls allowed.
    """
    for _ in range(max_iterations):
        response = model.chat(messages, tools=TOOLS, json_schema=json_schema, name=name)
        if not response.tool_calls:
            return response.text
        messages.append(
            {
                "role": "assistant",
                "content": response.text,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments}
                    for c in response.tool_calls
                ],
            }
        )
        for call in response.tool_calls:
            if call.invalid_arguments is not None:
                error = f"the arguments must be a JSON object, got: {call.invalid_arguments[:200]}"
                result = json.dumps({"error": error})
            else:
                try:
                    result = tools.call(call.name, call.arguments)
                except Exception as exc:  # a tool bug must not lose the whole verdict
                    result = json.dumps({"error": f"the tool failed: {type(exc).__name__}"})
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return None
