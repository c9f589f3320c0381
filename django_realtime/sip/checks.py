"""System checks of the telephony settings (ids in the core's ``django_realtime.`` series).

E007 ``SIP_DEFAULT_ACTION`` is not a usable decision · E009 ``SIP_ROUTER`` cannot be
imported. A value of the wrong type is the core's E002 and is not reported again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from django_realtime.checks import ID, check_import, setting_name
from django_realtime.conf import DEFAULTS, SETTINGS_NAME

from .validators import decision_error


@register(Tags.compatibility)
def check_sip_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    raw = getattr(settings, SETTINGS_NAME, {})
    if not isinstance(raw, dict):
        return []  # the core's E002
    errors: list[CheckMessage] = []
    action = raw.get("SIP_DEFAULT_ACTION", DEFAULTS["SIP_DEFAULT_ACTION"])
    problem = decision_error(action) if isinstance(action, dict) else None
    if problem:
        errors.append(
            Error(
                f"{setting_name('SIP_DEFAULT_ACTION')} is malformed: {problem}",
                hint='e.g. {"action": "reject", "status_code": 603}, {"action": "refer", '
                '"target_uri": "tel:+1..."} or {"action": "accept", "preset": "slug"}.',
                id=f"{ID}E007",
            )
        )
    router = raw.get("SIP_ROUTER")
    if router and isinstance(router, str):
        errors.extend(check_import(router))
    return errors
