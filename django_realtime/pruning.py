"""What ``manage.py realtime_prune`` may delete: one :class:`Target` per kind of old row.

Each target has its own age option (``--audit-days``, ``--webhook-days``...). A feature
with rows of its own adds a target with :func:`register` from its app's ``ready()``
(the call controller's ended calls, for example), and the command offers it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models

from .models import AuditLogEntry, RefusedTraffic, WebhookEvent

__all__ = ["TARGETS", "Target", "prune", "register"]


@dataclass(frozen=True)
class Target:
    """Rows of ``model`` whose ``date_field`` is older than ``--<name>-days`` N days."""

    name: str  #: the option is ``--<name>-days``
    model: type[models.Model]
    date_field: str
    label: str  #: plural, for the report: "audit log entries"
    #: Extra filter: rows that must never be pruned whatever their age stay out.
    keep: models.Q | None = None
    #: The age used when the option is not given (``None``: the kind is kept).
    default_days: Callable[[], int | None] | None = None

    @property
    def option(self) -> str:
        return f"{self.name}_days"

    def old_rows(self, cutoff: datetime) -> models.QuerySet[Any]:
        rows = self.model._default_manager.filter(**{f"{self.date_field}__lt": cutoff})
        return rows.exclude(self.keep) if self.keep is not None else rows


TARGETS: dict[str, Target] = {}


def register(target: Target) -> None:
    """Offer ``target`` to ``realtime_prune`` (registering a name again replaces it)."""
    TARGETS[target.name] = target


register(
    Target(
        "audit",
        AuditLogEntry,
        "created_at",
        "audit log entries",
        # An attempt in flight keeps its row (``realtime_prune`` marks dead ones
        # ``abandoned`` first, and those may go).
        keep=models.Q(outcome="pending"),
    )
)
register(
    Target(
        "webhook",
        WebhookEvent,
        "received_at",
        "webhook events",
        # A delivery being handled right now keeps its claim.
        keep=models.Q(status="processing"),
    )
)


register(Target("refused", RefusedTraffic, "minute", "refused anonymous traffic counts"))


def prune(target: Target, cutoff: datetime, *, batch_size: int) -> int:
    """Delete ``target``'s rows older than ``cutoff`` in batches; how many went."""
    total = 0
    old = target.old_rows(cutoff)
    # Batches keep each transaction and lock short on a large table.
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        target.model._default_manager.filter(pk__in=ids).delete()
        total += len(ids)
