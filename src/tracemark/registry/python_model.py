"""What a model logged from code is: a `PythonModel`, a plain callable, or a code file.

A code file names its model with `tm.set_model(obj)` and may read the configuration it was
logged with through `tm.get_model_config()`:

    # agent.py
    import tracemark as tm

    config = tm.get_model_config()

    def answer(question):
        return f"{config.get('greeting', 'Hi')}! You asked: {question}"

    tm.set_model(answer)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# While a code file is being loaded: its configuration and the model it sets.
_LOADING_CONFIG: ContextVar[dict[str, Any] | None] = ContextVar("tracemark_model_config")
_LOADING_MODEL: ContextVar[list[Any] | None] = ContextVar("tracemark_set_model", default=None)


@dataclass(slots=True)
class PythonModelContext:
    """What `PythonModel.load_context` receives: the configuration the model was logged with."""

    model_config: dict[str, Any] = field(default_factory=dict)
    model_path: str = ""


class PythonModel:
    """Base class of a model with state: override `predict` (and `predict_stream`).

    Example:
        class Echo(tm.PythonModel):
            def load_context(self, context):
                self.prefix = context.model_config.get("prefix", "")

            def predict(self, model_input, params=None):
                return self.prefix + str(model_input)
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Prepare the model after loading (read config, open clients); a no-op by default."""

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Return the prediction for one input."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict()")

    def predict_stream(
        self, model_input: Any, params: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """Yield the prediction in chunks; by default the whole prediction as one chunk."""
        yield self.predict(model_input, params)


def set_model(model: Any) -> None:
    """Name the model a code file defines; `tm.log_model("agent.py")` loads it from here.

    Example:
        tm.set_model(answer)  # at the end of agent.py

    Args:
        model: a `PythonModel` instance or a callable taking one input.
    """
    slot = _LOADING_MODEL.get()
    if slot is not None:
        slot.append(model)


def get_model_config() -> dict[str, Any]:
    """Return the `model_config` the model being loaded was logged with (``{}`` otherwise).

    Example:
        config = tm.get_model_config()
        temperature = config.get("temperature", 0.2)
    """
    config = _LOADING_CONFIG.get(None)
    return dict(config) if config else {}
