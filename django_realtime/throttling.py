"""Rate limits with django-ratelimit's counters, decided before any upstream call.

Two budgets: per signed-in user (``RATE``, or a preset's own ``rate``) and, for
anonymous and failed-authentication attempts, per client address
(``ANONYMOUS_RATE``). Counters live in the cache django-ratelimit uses, counted by
:mod:`.counters` (one Redis round trip on ``RedisCache``); when that cache cannot
be reached the gate fails closed (:class:`~.exceptions.Unavailable`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import counters
from .conf import conf
from .exceptions import RateLimited, Unavailable

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import SessionPreset

logger = logging.getLogger(__name__)

#: django-ratelimit's rate grammar: "<count>/<optional multiplier><s|m|h|d>" (whole string).
RATE_RE = re.compile(r"\d+/\d*[smhd]")

#: Explicit group names, so renaming a view never resets counters. Presets on the
#: global RATE share one budget per user; a preset with its own rate has its own.
GROUP = "django_realtime.session"
#: Anonymous and failed-authentication attempts, per client address.
ANONYMOUS_GROUP = "django_realtime.anonymous"


def is_valid_rate(rate: str) -> bool:
    return bool(RATE_RE.fullmatch(rate))


def rate_for(preset: SessionPreset) -> tuple[str, str]:
    """(group, rate) that apply to ``preset``."""
    if preset.rate:
        return f"{GROUP}:{preset.slug}", preset.rate
    return GROUP, conf.RATE


def _usage(
    request: HttpRequest,
    *,
    group: str,
    key: Callable[[str, HttpRequest], str],
    rate: str,
) -> counters.Usage | None:
    """The counted usage, or :class:`Unavailable` when the cache is down."""
    try:
        return counters.count(request, group=group, key=key, rate=rate)
    except counters.CacheUnavailable as err:
        logger.error("Rate-limit cache unavailable (no counter): refusing the request.")
        raise Unavailable() from err
    except Exception as err:  # the cache backend's own error type (redis, memcached...)
        logger.error("Rate-limit cache unavailable (%s): refusing the request.", type(err).__name__)
        raise Unavailable() from err


def _user(group: str, request: HttpRequest) -> str:
    """django-ratelimit's ``"user"`` key: the user's primary key."""
    return str(request.user.pk)


def check(request: HttpRequest, preset: SessionPreset) -> None:
    """Count this attempt for the user; raise :class:`RateLimited` when over the limit."""
    group, rate = rate_for(preset)
    usage = _usage(request, group=group, key=_user, rate=rate)
    if usage is not None and usage.should_limit:
        # django-ratelimit's window still holds at its end second (time_left == 0):
        # the next window opens one second after time_left runs out.
        raise RateLimited(wait=usage.time_left + 1)


def _address(group: str, request: HttpRequest) -> str:
    """The client address (``REMOTE_ADDR``); requests without one share one budget.

    (django-ratelimit's ``"ip"`` key raises ``KeyError`` when it is missing, as it is
    for some in-process WSGI and ASGI callers.)"""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def anonymous_wait(request: HttpRequest) -> int | None:
    """Count an anonymous attempt for its address: seconds to wait when over budget, else None."""
    usage = _usage(request, group=ANONYMOUS_GROUP, key=_address, rate=conf.ANONYMOUS_RATE)
    if usage is not None and usage.should_limit:
        return int(usage.time_left) + 1  # the same end-second rule as check()
    return None
