"""Usage figures for the admin dashboard: calls, minutes and cost, aggregated in the database.

Every figure is one ``GROUP BY`` query over ``RealtimeCall`` (``TruncDate`` in the site's
time zone, ``Count``, ``Sum``), filtered on the indexed ``created_at``, so the dashboard
costs four queries whatever the number of calls. A call's minutes run from its attach
(or creation) to its end; a live call counts up to now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import RealtimeCall

__all__ = ["DAYS", "TOP_USERS", "Row", "Usage", "usage_report"]

DAYS = 30
TOP_USERS = 10


@dataclass(frozen=True)
class Row:
    """One line of a table: its label (a day, a preset, a user) and its three figures."""

    label: str
    calls: int
    minutes: float
    cost_usd: Decimal


@dataclass(frozen=True)
class Usage:
    """The dashboard's three tables; ``days`` has every day of the window, oldest first."""

    since: date
    days: list[Row]
    presets: list[Row]
    users: list[Row]


def _talked(now: datetime) -> Any:
    """Seconds (or a duration) from a call's attach (or creation) to its end (or ``now``).

    SQLite has no interval type: Django would subtract the datetimes in Python, once per
    row; ``julianday`` does it natively (seconds as a float).
    """
    end = Coalesce(F("ended_at"), Value(now))
    start = Coalesce(F("attached_at"), F("created_at"))
    if connection.vendor == "sqlite":
        days = FloatField()
        julian = Func(end, function="julianday", output_field=days) - Func(
            start, function="julianday", output_field=days
        )
        return ExpressionWrapper(julian * Value(86400.0), output_field=FloatField())
    return ExpressionWrapper(end - start, output_field=DurationField())


def _figures(calls: QuerySet[Any, Any], now: datetime) -> QuerySet[Any, Any]:
    figures: QuerySet[Any, Any] = calls.annotate(
        n=Count("pk"),
        talked=Sum(_talked(now)),
        cost=Coalesce(Sum("cost_usd"), Value(Decimal(0))),
    )
    return figures


def _row(label: str, values: dict[str, Any]) -> Row:
    talked = values["talked"]
    seconds = talked.total_seconds() if isinstance(talked, timedelta) else float(talked or 0)
    return Row(
        label=label,
        calls=int(values["n"]),
        minutes=round(max(0.0, seconds) / 60, 1),
        cost_usd=Decimal(values["cost"] or 0).quantize(Decimal("0.0001")),
    )


def usage_report(now: datetime | None = None, *, days: int = DAYS) -> Usage:
    """Calls, minutes and cost per day for the last ``days`` days (today included), and
    per preset and for the top users (by minutes) over the same window."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    since = today - timedelta(days=days - 1)
    start = datetime(since.year, since.month, since.day, tzinfo=tz)
    window = RealtimeCall.objects.filter(created_at__gte=start).order_by()
    per_day = {
        values["day"]: values
        for values in _figures(
            window.annotate(day=TruncDate("created_at", tzinfo=tz)).values("day"), now
        )
    }
    empty = {"n": 0, "talked": None, "cost": 0}
    day_rows = [
        _row(day.isoformat(), per_day.get(day, empty))
        for day in (since + timedelta(days=i) for i in range(days))
    ]
    preset_rows = [
        _row(values["preset__name"] or "(deleted preset)", values)
        for values in _figures(window.values("preset__name"), now).order_by("-cost", "-n")
    ]
    name = f"user__{get_user_model().USERNAME_FIELD}"
    by_user = _figures(window.values(name), now).order_by("-talked", "-n")[:TOP_USERS]
    user_rows = [_row(str(values[name] or "(no user)"), values) for values in by_user]
    return Usage(since=since, days=day_rows, presets=preset_rows, users=user_rows)
