"""The prompt registry API of the client: register, load, alias, search.

A prompt loaded while a trace is running is recorded on that trace, in the metadata key
``tracemark.prompts`` (``"qa@3,style@1"``), so traces can be filtered by prompt version:
``metadata.`tracemark.prompts` LIKE '%qa@3%'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tracemark.entities.paging import PagedList
from tracemark.entities.prompt import Prompt, PromptVersion
from tracemark.registry._uri import parse_registry_uri

if TYPE_CHECKING:
    from tracemark.store.base import Store

PROMPTS_METADATA_KEY = "tracemark.prompts"


def record_prompt_on_trace(version: PromptVersion) -> None:
    """Add ``name@version`` to the ``tracemark.prompts`` metadata of the current trace."""
    from tracemark.tracing._tracer import DEFAULT_TRACER

    span = DEFAULT_TRACER.get_current_active_span()
    if span is None or not span.recording:
        return
    entry = f"{version.name}@{version.version}"
    # Metadata is write-once in the store but mutable while the trace runs: read what this
    # trace recorded so far and write back the longer list.
    buffer = getattr(span, "_buffer", None)
    seen = buffer.metadata.get(PROMPTS_METADATA_KEY, "") if buffer is not None else ""
    entries = [e for e in seen.split(",") if e]
    if entry in entries:
        return
    DEFAULT_TRACER.update_current_trace(
        metadata={PROMPTS_METADATA_KEY: ",".join([*entries, entry])}
    )


class PromptsClient:
    """Prompt registry methods of `TracemarkClient`."""

    store: Store

    def register_prompt(
        self,
        name: str,
        template: str | list[dict[str, Any]],
        commit_message: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        """Store a new immutable version of a prompt (the first call creates the prompt).

        Example:
            v = tm.register_prompt("qa", "Answer briefly: {{ question }}", commit_message="v1")

        Args:
            name: the prompt's name (letters, digits, '_', '-', '.').
            template: text with ``{{ variable }}`` placeholders, or a list of chat messages
                (``{"role": "system", "content": "..."}``) whose contents have placeholders.
            commit_message: what changed in this version.
            tags: key/value labels of this version.
        """
        return self.store.create_prompt_version(name, template, commit_message, dict(tags or {}))

    def load_prompt(self, name_or_uri: str, version: int | None = None) -> PromptVersion:
        """Load a prompt version by URI, or by name and version (newest when omitted).

        Inside a trace, the version is recorded on the trace (metadata ``tracemark.prompts``).

        Example:
            prompt = tm.load_prompt("prompts:/qa@production")
            prompt.format(question="How do I reset my password?")

        Args:
            name_or_uri: ``prompts:/name/3``, ``prompts:/name@alias``, ``prompts:/name@latest``,
                or a plain name.
            version: the version, when `name_or_uri` is a plain name.
        """
        if ":" in name_or_uri:  # names never hold a colon, URIs always do
            ref = parse_registry_uri(name_or_uri, "prompts")
            name, version, alias = ref.name, ref.version, ref.alias
        else:
            name, alias = name_or_uri, (None if version is not None else "latest")
        if version is not None:
            loaded = self.store.get_prompt_version(name, version)
        else:
            assert alias is not None
            loaded = self.store.get_prompt_version_by_alias(name, alias)
        record_prompt_on_trace(loaded)
        return loaded

    def get_prompt(self, name: str) -> Prompt:
        """Return a prompt: its newest version number, tags and aliases."""
        return self.store.get_prompt(name)

    def search_prompts(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList:
        """Return prompts by name, filtered on ``name``, ``tags.<key>`` and times.

        Example:
            tm.search_prompts(filter_string="name LIKE 'support-%' AND tags.team = 'care'")
        """
        found, token = self.store.search_prompts(filter_string, max_results, page_token)
        return PagedList(found, token)

    def search_prompt_versions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> PagedList:
        """Return the versions of a prompt, newest first."""
        found, token = self.store.search_prompt_versions(name, max_results, page_token)
        return PagedList(found, token)

    def set_prompt_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias (``production``) at a version; an existing alias moves.

        Example:
            tm.set_prompt_alias("qa", "production", 2)
        """
        self.store.set_prompt_alias(name, alias, version)

    def delete_prompt_alias(self, name: str, alias: str) -> None:
        """Remove an alias from a prompt."""
        self.store.delete_prompt_alias(name, alias)

    def set_prompt_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a prompt (not on one version)."""
        self.store.set_prompt_tag(name, key, str(value))

    def delete_prompt_tag(self, name: str, key: str) -> None:
        """Remove a tag from a prompt."""
        self.store.delete_prompt_tag(name, key)

    def delete_prompt_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Delete one version; one an alias points at needs ``force=True``."""
        self.store.delete_prompt_version(name, version, force=force)

    def delete_prompt(self, name: str, *, force: bool = False) -> None:
        """Delete a prompt with all its versions; one with aliases needs ``force=True``."""
        self.store.delete_prompt(name, force=force)
