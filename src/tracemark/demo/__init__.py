"""A small, realistic LLM experiment, logged by `tracemark demo` to show what tracemark records.

The demo compares prompt templates and models for a customer-support bot on a fixed FAQ set.
One parent run ("prompt-sweep") holds one nested run per configuration; each nested run logs
params, metric histories over evaluation batches, a prediction table, the prompt template
and the evaluation config. The last configuration fails halfway, as real sweeps do.

Content is deterministic (seeded), nothing touches the network. Running the demo again reuses
the experiment and adds a new sweep beside the previous ones, so each run of the demo is
kept and can be compared with the others.

Example:
    from tracemark.demo import run_demo

    result = run_demo("sqlite:///demo.db")
    print(result.experiment.name, [r.run_name for r in result.runs])
"""

# One module per part of the demo: _dataset holds the inputs, _sweep logs the runs; later parts
# (demo traces, evaluations) get a module of their own and a call in run_demo.
from tracemark.demo._dataset import CONFIGS, DEMO_EXPERIMENT, DemoConfig
from tracemark.demo._sweep import DemoResult, SimulatedProviderError, run_demo

__all__ = [
    "CONFIGS",
    "DEMO_EXPERIMENT",
    "DemoConfig",
    "DemoResult",
    "SimulatedProviderError",
    "run_demo",
]
