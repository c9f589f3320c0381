"""Quotas: what a user has left under the :class:`~django_realtime.models.UsageLimit` rows.

Every row matching the user (its group, or everyone) and the preset (that preset, or
every preset) applies. Each row measures its own scope (a row for one preset counts that
preset's calls, a row for every preset counts them all) and, for each dimension, the most
generous row wins: the user may start a call if any row setting that dimension still has
room. A row that leaves a dimension blank says nothing about it.

- **concurrent calls** count calls that are really live: ``pending`` ones younger than
  :data:`PENDING_GRACE` (a call nobody ever attached does not block forever) and
  ``active`` ones whose worker lease is fresh (a crashed worker's calls stop counting
  when their lease lapses), plus the calls granted but not recorded yet (a slot in the
  shared cache, so two processes minting at once never exceed the limit);
- **minutes and cost per day** sum the calls started since midnight in the site's
  ``TIME_ZONE`` (a live call counts up to now).

:func:`check` is the gate's hook (429 ``quota_exceeded`` with ``Retry-After``);
:func:`remaining_minutes` feeds the presets answer and the controller's mid-call budget;
the mint answer's ``remaining_minutes`` is what :func:`check` found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone

from .conf import conf
from .exceptions import QuotaExceeded
from .models import RealtimeCall, SessionPreset, UsageLimit

__all__ = [
    "PENDING_GRACE",
    "Usage",
    "check",
    "day_start",
    "limits_for",
    "live_calls",
    "minutes_left",
    "remaining_minutes",
    "seconds_to_next_day",
    "usage_today",
]

#: A pending call older than this (never attached by a worker) no longer counts as live.
PENDING_GRACE = timedelta(minutes=2)
#: The API ends every Realtime session after 60 minutes: the latest a live call ends.
CALL_LIMIT_SECONDS = 3600


@dataclass(frozen=True)
class Usage:
    """One scope's day so far: seconds talked and dollars spent."""

    seconds: float
    cost_usd: Decimal


def limits_for(user: Any, preset: SessionPreset | None) -> list[UsageLimit]:
    """The rows that apply to ``user`` and ``preset`` (``preset=None``: rows for every
    preset only)."""
    if not getattr(user, "is_authenticated", False):
        return []
    who = Q(group__isnull=True) | Q(group__in=user.groups.all())
    what = Q(preset__isnull=True)
    if preset is not None:
        what |= Q(preset=preset)
    # no ordering: the model orders by group and preset name, joins a mint does not need
    return list(UsageLimit.objects.filter(who & what).order_by().distinct())


def day_start(now: datetime | None = None) -> datetime:
    """Midnight of today in the site's ``TIME_ZONE`` (an aware datetime)."""
    local = timezone.localtime(now or timezone.now())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_to_next_day(now: datetime | None = None) -> float:
    """Seconds until the next midnight in the site's ``TIME_ZONE`` (DST-proof)."""
    now = now or timezone.now()
    start = day_start(now)
    tz = start.tzinfo
    tomorrow = (start.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
    return (tomorrow - now).total_seconds()


def _scope(user: Any, row: UsageLimit) -> QuerySet[RealtimeCall]:
    calls = RealtimeCall.objects.filter(user=user)
    return calls if row.preset_id is None else calls.filter(preset_id=row.preset_id)


def live_calls(calls: QuerySet[RealtimeCall], now: datetime | None = None) -> QuerySet[Any]:
    """The calls of ``calls`` that are really live now."""
    now = now or timezone.now()
    return calls.filter(
        Q(status="pending", created_at__gt=now - PENDING_GRACE)
        | Q(status="active", lease_expires_at__gt=now)
    )


def usage_today(calls: QuerySet[RealtimeCall], now: datetime | None = None) -> Usage:
    """Seconds and cost of the calls started today (a live one counts up to ``now``)."""
    now = now or timezone.now()
    seconds = 0.0
    cost = Decimal(0)
    rows = calls.filter(created_at__gte=day_start(now)).values_list(
        "created_at", "attached_at", "ended_at", "cost_usd"
    )
    for created_at, attached_at, ended_at, cost_usd in rows:
        begin = attached_at or created_at
        end = ended_at or now
        seconds += max(0.0, (end - begin).total_seconds())
        cost += cost_usd or Decimal(0)
    return Usage(seconds=seconds, cost_usd=cost)


def _seconds_until_a_call_ends(calls: QuerySet[Any], now: datetime) -> float:
    """When the first of ``calls`` must end at the latest (the API's 60 minutes)."""
    first = calls.order_by("created_at").values_list("created_at", flat=True).first()
    if first is None:
        return 1.0
    return float((first + timedelta(seconds=CALL_LIMIT_SECONDS) - now).total_seconds())


def remaining_minutes(user: Any, preset: SessionPreset | None) -> float | None:
    """The minutes ``user`` has left today with ``preset`` (``None``: no minute limit)."""
    now = timezone.now()
    rows = [row for row in limits_for(user, preset) if row.minutes_per_day is not None]
    if not rows:
        return None
    left = [
        row.minutes_per_day - usage_today(_scope(user, row), now).seconds / 60
        for row in rows
        if row.minutes_per_day is not None
    ]
    return max(0.0, max(left))


def remaining_seconds_and_dollars(
    user: Any, preset: SessionPreset | None
) -> tuple[float | None, Decimal | None]:
    """Seconds and dollars left today (each ``None``: no such limit); the controller's
    mid-call budget."""
    return _left_under(limits_for(user, preset), user, timezone.now())


def _left_under(
    rows: list[UsageLimit], user: Any, now: datetime
) -> tuple[float | None, Decimal | None]:
    seconds: float | None = None
    dollars: Decimal | None = None
    for row in rows:
        used = usage_today(_scope(user, row), now)
        if row.minutes_per_day is not None:
            left = row.minutes_per_day * 60 - used.seconds
            seconds = left if seconds is None else max(seconds, left)
        if row.cost_per_day_usd is not None:
            money = row.cost_per_day_usd - used.cost_usd
            dollars = money if dollars is None else max(dollars, money)
    return seconds, dollars


def minutes_left(seconds: float | None) -> float | None:
    """Seconds left as the minutes the API answers and the widget shows (0.1 minute)."""
    return None if seconds is None else round(max(0.0, seconds) / 60, 1)


def check(user: Any, preset: SessionPreset) -> float | None:
    """Raise :class:`QuotaExceeded` when ``user`` may not start a call with ``preset``;
    else the minutes left today (:func:`minutes_left`; ``None``: no minute limit), for
    the mint answer at no extra query.

    Called by the gate before any upstream request. For each dimension some row must
    still have room; the ``Retry-After`` is when that changes: the next day boundary
    (minutes, cost) or a live call's latest end (concurrency). A granted call holds a
    concurrency slot (:func:`_take_slot`) until its row is recorded.
    """
    rows = limits_for(user, preset)
    if not rows:
        return None
    now = timezone.now()
    seconds, dollars = _left_under(rows, user, now)  # the rows already read: one look-up
    left = minutes_left(seconds)
    if seconds is not None and seconds <= 0:
        raise QuotaExceeded(math.ceil(seconds_to_next_day(now)), dimension="minutes_per_day")
    if dollars is not None and dollars <= 0:
        raise QuotaExceeded(math.ceil(seconds_to_next_day(now)), dimension="cost_per_day_usd")
    concurrent = [row for row in rows if row.max_concurrent_calls is not None]
    if not concurrent:
        return left
    live_by_row = [(row, live_calls(_scope(user, row), now)) for row in concurrent]
    counted = [(row, live, live.count()) for row, live in live_by_row]
    # The most generous row first; a slot of any row with room grants the call.
    counted.sort(key=lambda item: (item[0].max_concurrent_calls or 0) - item[2], reverse=True)
    for row, _, count in counted:
        if _take_slot(user, row, count, slot_seconds(preset)):
            return left
    row, live, count = counted[0]
    full = count >= (row.max_concurrent_calls or 0)  # else: calls granted, not yet recorded
    wait = _seconds_until_a_call_ends(live, now) if full else slot_seconds(preset)
    raise QuotaExceeded(math.ceil(max(1.0, wait)), dimension="max_concurrent_calls")


def slot_seconds(preset: SessionPreset) -> float:
    """How long a granted call holds its slot before its row must exist: a client secret
    may start a call until it expires; a relay records its call within the request."""
    return float(max(getattr(preset, "ttl_seconds", 60) or 60, PENDING_GRACE.total_seconds()))


def _take_slot(user: Any, row: UsageLimit, live: int, seconds: float) -> bool:
    """Claim one of the row's free concurrency slots in the shared cache (atomic ``add``).

    Slots ``live .. max-1`` are the calls granted but not recorded yet: two mints racing on
    two processes both count ``live`` calls, but only one of them can ``add`` each slot
    key (Redis ``SET NX``), so together they never exceed the limit. A slot lapses after
    ``seconds``; by then the call it granted is recorded (and counted as live) or never
    happened. Needs a cache shared by every process, as the rate limits do.
    """
    limit = row.max_concurrent_calls or 0
    for slot in range(live, limit):
        key = f"django_realtime:quota:{user.pk}:{row.pk}:{slot}"
        if cache.add(key, 1, timeout=seconds):
            return True
    return False


def warning_seconds() -> float:
    """How long before the budget runs out a running call is warned."""
    return conf.QUOTA_WARNING_SECONDS
