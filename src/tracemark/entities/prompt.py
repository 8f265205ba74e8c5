"""Prompts in the registry: a named prompt, its immutable versions, their aliases.

A template is text with ``{{ variable }}`` placeholders, or a list of chat messages
(``{"role": ..., "content": ...}``) whose contents hold such placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tracemark.exceptions import InvalidInputError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

Template = str | list[dict[str, Any]]


def template_variables(template: Template) -> list[str]:
    """Return the placeholder names of a template, in order of first appearance."""
    texts = [template] if isinstance(template, str) else [m.get("content") for m in template]
    names: dict[str, None] = {}
    for text in texts:
        if isinstance(text, str):
            for match in _PLACEHOLDER.finditer(text):
                names.setdefault(match.group(1), None)
    return list(names)


def _fill(text: str, values: dict[str, Any], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise InvalidInputError(
                f"{where} needs a value for variable {name!r}: pass {name}=... to format()",
                field=name,
            )
        return str(values[name])

    return _PLACEHOLDER.sub(replace, text)


@dataclass(slots=True)
class PromptVersion:
    """One immutable version of a prompt; `format(**values)` fills in its variables.

    Example:
        prompt = tm.load_prompt("prompts:/qa@production")
        text = prompt.format(question="What is tracemark?")
    """

    name: str
    version: int
    template: Template
    commit_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    creation_time: int = 0

    @property
    def is_chat(self) -> bool:
        """True when the template is a list of chat messages."""
        return not isinstance(self.template, str)

    @property
    def variables(self) -> list[str]:
        """The placeholder names of the template, in order of first appearance."""
        return template_variables(self.template)

    @property
    def uri(self) -> str:
        """The URI that loads exactly this version: ``prompts:/name/version``."""
        return f"prompts:/{self.name}/{self.version}"

    def format(self, **values: Any) -> Template:
        """Fill in the variables: a string for a text template, messages for a chat one.

        Raises:
            InvalidInputError: A variable of the template has no value; the error names it.
        """
        where = f"prompt {self.name!r} version {self.version}"
        if isinstance(self.template, str):
            return _fill(self.template, values, where)
        return [
            {**m, "content": _fill(m["content"], values, where)}
            if isinstance(m.get("content"), str)
            else dict(m)
            for m in self.template
        ]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "version": self.version,
            "template": self.template,
            "commit_message": self.commit_message,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
            "creation_time": self.creation_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptVersion:
        """Build a version from `to_dict` output."""
        return cls(**data)


@dataclass(slots=True)
class Prompt:
    """A named prompt: its tags, its aliases (alias -> version) and its newest version."""

    name: str
    latest_version: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    creation_time: int = 0
    last_updated_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "description": self.description,
            "tags": dict(self.tags),
            "aliases": dict(self.aliases),
            "creation_time": self.creation_time,
            "last_updated_time": self.last_updated_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prompt:
        """Build a prompt from `to_dict` output."""
        return cls(**data)
