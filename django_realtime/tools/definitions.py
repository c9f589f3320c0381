"""What a session is told about server tools: the ``tools`` entries for a preset's names.

A preset stores tool names (``SessionPreset.server_tools``); these helpers turn them into
session ``tools`` entries and tell which names no longer match a registered tool.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .registration import registry

logger = logging.getLogger(__name__)


def tool_definitions(names: Iterable[str]) -> list[dict[str, Any]]:
    """The session ``tools`` entries for the named tools, in order, each once.

    A name with no registered tool (renamed or removed in code while a preset still
    names it) is left out with a warning on ``django_realtime.tools`` rather than
    raising: stale admin data must not turn every session of the preset into a 500.
    """
    seen: set[str] = set()
    definitions: list[dict[str, Any]] = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        tool = registry.get(name)
        if tool is None:
            logger.warning("No realtime tool named %r is registered; left out.", name)
            continue
        definitions.append(tool.definition())
    return definitions


def with_server_tools(
    tools: Iterable[Mapping[str, Any]], names: Iterable[str]
) -> list[dict[str, Any]]:
    """A session's ``tools``: the preset's own entries, then its server tools' definitions.

    An own ``function`` entry named like one of the server tools is dropped (with a
    warning): one name, one function, or the browser and the server would both answer.
    """
    definitions = tool_definitions(names)
    served = {definition["name"] for definition in definitions}
    merged: list[dict[str, Any]] = []
    for tool in tools:
        if tool.get("type") == "function" and tool.get("name") in served:
            logger.warning("The server tool %r replaces a preset tool of that name.", tool["name"])
            continue
        merged.append(dict(tool))
    return merged + definitions


def unknown_tools(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that no registered tool answers to (for checks and forms)."""
    return [name for name in names if name not in registry]


def tool_choices() -> list[tuple[str, str]]:
    """``(name, label)`` pairs of every registered tool, by name (for the admin)."""
    return [
        (name, f"{name}: {tool.description}" if tool.description else name)
        for name, tool in sorted(registry.items())
    ]
