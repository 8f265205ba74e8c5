"""RegistryClient: the versioning half of `TracemarkClient` (prompts, models)."""

from __future__ import annotations

from tracemark.registry.models import ModelsClient
from tracemark.registry.prompts import PromptsClient
from tracemark.registry.webhooks import WebhooksClient


class RegistryClient(PromptsClient, ModelsClient, WebhooksClient):
    """Prompt registry, logged models, the model registry and webhooks."""
