"""System checks of server tools on presets, quotas and transcripts (issue 10).

- ``django_realtime.E020`` (database check): a preset names a server tool no app
  registers (renamed or removed in code); the tool is left out of its sessions.
- ``django_realtime.E021``: ``TOOL_TIMEOUT`` or ``QUOTA_WARNING_SECONDS`` is not a
  positive number, or ``TRANSCRIPT_RETENTION_DAYS`` is neither ``None`` nor a whole
  number of days >= 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import DatabaseError, router

from .conf import SETTINGS_NAME
from .tools import unknown_tools

ID = "django_realtime."


def presets_to_check(databases: Sequence[str] | None, *fields: str) -> list[Any]:
    """The presets a database check reads: none unless their database is among
    ``databases`` (like Django's own database checks, nothing on a plain ``manage.py
    check``) or before it is migrated; else ``fields`` of each."""
    from .models import SessionPreset

    alias = router.db_for_read(SessionPreset)
    if not databases or alias not in databases:
        return []
    try:
        return list(SessionPreset.objects.using(alias).only(*fields))
    except DatabaseError:  # not migrated yet
        return []


@register(Tags.database)
def check_server_tools(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """``manage.py check --database default``: every preset's server tools are registered."""
    messages: list[CheckMessage] = []
    for preset in presets_to_check(databases, "slug", "server_tools"):
        stale = unknown_tools(preset.server_tools or [])
        if stale:
            messages.append(
                Error(
                    f"Preset {preset.slug!r} offers server tools no app registers: "
                    f"{', '.join(sorted(stale))}.",
                    hint="Register them in a realtime_tools.py, or untick them on the preset.",
                    id=f"{ID}E020",
                )
            )
    return messages


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@register(Tags.compatibility)
def check_usage_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    raw = getattr(settings, SETTINGS_NAME, {})
    raw = raw if isinstance(raw, dict) else {}
    messages: list[CheckMessage] = []
    for name in ("TOOL_TIMEOUT", "QUOTA_WARNING_SECONDS"):
        if name in raw and not _positive(raw[name]):
            messages.append(
                Error(f"{SETTINGS_NAME}['{name}'] must be a positive number.", id=f"{ID}E021")
            )
    days = raw.get("TRANSCRIPT_RETENTION_DAYS", 0)
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
        messages.append(
            Error(
                f"{SETTINGS_NAME}['TRANSCRIPT_RETENTION_DAYS'] must be None or whole days >= 0.",
                id=f"{ID}E021",
            )
        )
    return messages
