"""Per-user rate limiting with django-ratelimit, decided before any upstream call."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django_ratelimit.core import get_usage

from .conf import conf
from .exceptions import RateLimited

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import SessionPreset

#: django-ratelimit's rate grammar: "<count>/<optional multiplier><s|m|h|d>".
RATE_RE = re.compile(r"^\d+/\d*[smhd]$")

#: Explicit group names, so renaming a view never resets counters. Presets on the
#: global RATE share one budget per user; a preset with its own rate has its own.
GROUP = "django_realtime.session"


def is_valid_rate(rate: str) -> bool:
    return bool(RATE_RE.match(rate))


def rate_for(preset: SessionPreset) -> tuple[str, str]:
    """(group, rate) that apply to ``preset``."""
    if preset.rate:
        return f"{GROUP}:{preset.slug}", preset.rate
    return GROUP, conf.RATE


def check(request: HttpRequest, preset: SessionPreset) -> None:
    """Count this attempt for the user; raise :class:`RateLimited` when over the limit."""
    group, rate = rate_for(preset)
    usage = get_usage(request, group=group, key="user", rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        raise RateLimited(wait=usage["time_left"])
