"""The registry half of the REST store: prompts, registered models, logged models, webhooks.

`RestStore` inherits these methods; each is one request to the server's registry routes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from tracemark.entities.model import LoggedModel, ModelVersion, RegisteredModel
from tracemark.entities.prompt import Prompt, PromptVersion
from tracemark.entities.webhook import Webhook, WebhookDelivery
from tracemark.store import registry_validation as check


def _q(part: Any) -> str:
    return quote(str(part), safe="")


def _n(name: Any, kind: str = "prompt") -> str:
    """Check and quote a name for a URL path (a '/' in it would change the route)."""
    return _q(check.name(name, kind))


class RestRegistryMixin:
    """Registry methods of `RestStore` (which provides `request`)."""

    request: Callable[..., Any]

    # -- prompts --------------------------------------------------------------------

    def create_prompt_version(
        self,
        name: str,
        template: Any,
        commit_message: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        """Store a new version of a prompt on the server."""
        body = {
            "template": template,
            "commit_message": commit_message,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        data = self.request("POST", f"/api/v1/prompts/{_n(name)}/versions", json=body)
        return PromptVersion.from_dict(data)

    def get_prompt(self, name: str) -> Prompt:
        """Fetch a prompt."""
        return Prompt.from_dict(self.request("GET", f"/api/v1/prompts/{_n(name)}"))

    def get_prompt_version(self, name: str, version: int) -> PromptVersion:
        """Fetch one version of a prompt."""
        path = f"/api/v1/prompts/{_n(name)}/versions/{_q(version)}"
        return PromptVersion.from_dict(self.request("GET", path))

    def get_prompt_version_by_alias(self, name: str, alias: str) -> PromptVersion:
        """Fetch the version an alias points at."""
        path = f"/api/v1/prompts/{_n(name)}/aliases/{_q(alias)}"
        return PromptVersion.from_dict(self.request("GET", path))

    def search_prompts(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[Prompt], str | None]:
        """Search prompts on the server."""
        params: dict[str, Any] = {"max_results": max_results}
        if filter_string:
            params["filter"] = filter_string
        if page_token:
            params["page_token"] = page_token
        data = self.request("GET", "/api/v1/prompts", params=params)
        return [Prompt.from_dict(p) for p in data["prompts"]], data["next_page_token"]

    def search_prompt_versions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> tuple[list[PromptVersion], str | None]:
        """List a prompt's versions, newest first."""
        params: dict[str, Any] = {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        data = self.request("GET", f"/api/v1/prompts/{_n(name)}/versions", params=params)
        return [PromptVersion.from_dict(v) for v in data["versions"]], data["next_page_token"]

    def set_prompt_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version."""
        path = f"/api/v1/prompts/{_n(name)}/aliases/{_q(alias)}"
        self.request("PUT", path, json={"version": version})

    def delete_prompt_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self.request("DELETE", f"/api/v1/prompts/{_n(name)}/aliases/{_q(alias)}")

    def set_prompt_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a prompt."""
        self.request("PUT", f"/api/v1/prompts/{_n(name)}/tags/{_q(key)}", json={"value": value})

    def delete_prompt_tag(self, name: str, key: str) -> None:
        """Remove a tag from a prompt."""
        self.request("DELETE", f"/api/v1/prompts/{_n(name)}/tags/{_q(key)}")

    def delete_prompt_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Delete one version of a prompt."""
        path = f"/api/v1/prompts/{_n(name)}/versions/{_q(version)}"
        self.request("DELETE", path, params={"force": str(force).lower()})

    def delete_prompt(self, name: str, *, force: bool = False) -> None:
        """Delete a prompt and its versions."""
        self.request("DELETE", f"/api/v1/prompts/{_n(name)}", params={"force": str(force).lower()})

    # -- registered models ----------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel:
        """Create a registered model on the server."""
        check.name(name, "registered model")
        body = {
            "name": name,
            "description": description,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        return RegisteredModel.from_dict(
            self.request("POST", "/api/v1/registered-models", json=body)
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Fetch a registered model."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}"
        return RegisteredModel.from_dict(self.request("GET", path))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[RegisteredModel], str | None]:
        """Search registered models on the server."""
        data = self.request(
            "GET",
            "/api/v1/registered-models",
            params=_search_params(filter_string, max_results, page_token),
        )
        found = [RegisteredModel.from_dict(m) for m in data["registered_models"]]
        return found, data["next_page_token"]

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Change a registered model's description."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}"
        data = self.request("PATCH", path, json={"description": description})
        return RegisteredModel.from_dict(data)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}/tags/{_q(key)}"
        self.request("PUT", path, json={"value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}/tags/{_q(key)}"
        self.request("DELETE", path)

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        """Delete a registered model and its versions."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}"
        self.request("DELETE", path, params={"force": str(force).lower()})

    # -- model versions -------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        model_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Add a version to a registered model on the server."""
        body = {
            "source": source,
            "run_id": run_id,
            "model_id": model_id,
            "description": description,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}/versions"
        return ModelVersion.from_dict(self.request("POST", path, json=body))

    def _version_path(self, name: str, version: int) -> str:
        return f"/api/v1/registered-models/{_n(name, 'registered model')}/versions/{_q(version)}"

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Fetch one version."""
        return ModelVersion.from_dict(self.request("GET", self._version_path(name, version)))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Fetch the version an alias points at."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}/aliases/{_q(alias)}"
        return ModelVersion.from_dict(self.request("GET", path))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[ModelVersion], str | None]:
        """Search model versions on the server."""
        data = self.request(
            "GET",
            "/api/v1/model-versions",
            params=_search_params(filter_string, max_results, page_token),
        )
        found = [ModelVersion.from_dict(v) for v in data["model_versions"]]
        return found, data["next_page_token"]

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Change a version's description."""
        data = self.request(
            "PATCH", self._version_path(name, version), json={"description": description}
        )
        return ModelVersion.from_dict(data)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set a tag on a version."""
        path = f"{self._version_path(name, version)}/tags/{_q(key)}"
        self.request("PUT", path, json={"value": value})

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a tag from a version."""
        self.request("DELETE", f"{self._version_path(name, version)}/tags/{_q(key)}")

    def set_registered_model_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}/aliases/{_q(alias)}"
        self.request("PUT", path, json={"version": version})

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        path = f"/api/v1/registered-models/{_n(name, 'registered model')}/aliases/{_q(alias)}"
        self.request("DELETE", path)

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Delete a version."""
        self.request(
            "DELETE", self._version_path(name, version), params={"force": str(force).lower()}
        )

    # -- logged models --------------------------------------------------------------

    def create_logged_model(self, model: LoggedModel) -> LoggedModel:
        """Record a logged model on the server."""
        data = self.request("POST", "/api/v1/logged-models", json=model.to_dict())
        return LoggedModel.from_dict(data)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """Fetch a logged model."""
        return LoggedModel.from_dict(self.request("GET", f"/api/v1/logged-models/{_q(model_id)}"))

    def search_logged_models(self, run_id: str) -> list[LoggedModel]:
        """List the models a run logged."""
        data = self.request("GET", "/api/v1/logged-models", params={"run_id": run_id})
        return [LoggedModel.from_dict(m) for m in data["logged_models"]]

    # -- webhooks -------------------------------------------------------------------

    def create_webhook(
        self,
        name: str,
        url: str,
        events: Sequence[str],
        secret: str | None = None,
        description: str | None = None,
        status: str = "ACTIVE",
    ) -> Webhook:
        """Create a webhook on the server."""
        body = {
            "name": name,
            "url": url,
            "events": list(events) if not isinstance(events, str) else events,
            "secret": secret,
            "description": description,
            "status": status,
        }
        return Webhook.from_dict(self.request("POST", "/api/v1/webhooks", json=body))

    def get_webhook(self, webhook_id: str) -> Webhook:
        """Fetch a webhook."""
        return Webhook.from_dict(self.request("GET", f"/api/v1/webhooks/{_q(webhook_id)}"))

    def list_webhooks(self) -> list[Webhook]:
        """List every webhook."""
        data = self.request("GET", "/api/v1/webhooks")
        return [Webhook.from_dict(w) for w in data["webhooks"]]

    def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook:
        """Change a webhook's settings."""
        body = {k: (list(v) if k == "events" else v) for k, v in changes.items() if v is not None}
        data = self.request("PATCH", f"/api/v1/webhooks/{_q(webhook_id)}", json=body)
        return Webhook.from_dict(data)

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook."""
        self.request("DELETE", f"/api/v1/webhooks/{_q(webhook_id)}")

    def list_webhook_deliveries(
        self, webhook_id: str, max_results: int = 100
    ) -> list[WebhookDelivery]:
        """List a webhook's deliveries, newest first."""
        path = f"/api/v1/webhooks/{_q(webhook_id)}/deliveries"
        data = self.request("GET", path, params={"max_results": max_results})
        return [WebhookDelivery.from_dict(d) for d in data["deliveries"]]

    def test_webhook(self, webhook_id: str) -> WebhookDelivery:
        """Have the server send a test event now."""
        path = f"/api/v1/webhooks/{_q(webhook_id)}/test"
        return WebhookDelivery.from_dict(self.request("POST", path))


def _search_params(
    filter_string: str | None, max_results: int, page_token: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"max_results": max_results}
    if filter_string:
        params["filter"] = filter_string
    if page_token:
        params["page_token"] = page_token
    return params
