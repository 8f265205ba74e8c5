"""Versioning: the prompt registry, models logged from code, registered models and aliases.

The public names are re-exported by `tracemark` (`tm.register_prompt`, `tm.load_prompt`,
`tm.log_model`, `tm.load_model`, ...); the modules here are implementation.
"""
