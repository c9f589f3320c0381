"""Which worker follows which call: leases in the ``RealtimeCall`` table (sync ORM).

A worker owns a call while ``lease_owner`` is its name and ``lease_expires_at`` is in
the future. Claims are conditional UPDATEs, so two workers never own one call; on
PostgreSQL the candidates are first locked with ``SELECT ... FOR UPDATE SKIP LOCKED``
so competing workers take different rows instead of queueing on the same ones. The
worker calls these from its one database thread (``sync_to_async``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import close_old_connections, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ..call_models import LIVE_STATUSES, CallStatus, RealtimeCall
from .leash import API_SESSION_LIMIT

#: A call older than the API's session limit (and some slack) is not claimed again.
CLAIM_HORIZON = timedelta(seconds=API_SESSION_LIMIT + 120)


def _claimable(now: datetime) -> QuerySet[RealtimeCall]:
    return RealtimeCall.objects.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
        status__in=LIVE_STATUSES,
        created_at__gt=now - CLAIM_HORIZON,
    )


def claim(owner: str, limit: int, lease_seconds: float) -> list[RealtimeCall]:
    """Take up to ``limit`` calls nobody holds (new ones, or a dead worker's), oldest
    first; returns them with their presets."""
    if limit <= 0:
        return []
    close_old_connections()  # a worker runs for days: drop a connection the DB closed
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds)
    won: list[int] = []
    with transaction.atomic():
        candidates = _claimable(now).order_by("created_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        for pk in list(candidates.values_list("pk", flat=True)[:limit]):
            # Conditional: on a database without row locks another worker may have won.
            if _claimable(now).filter(pk=pk).update(lease_owner=owner, lease_expires_at=expires):
                won.append(pk)
    if not won:
        return []
    return list(
        RealtimeCall.objects.filter(pk__in=won, lease_owner=owner)
        .select_related("preset")
        .order_by("created_at", "pk")
    )


def renew(owner: str, call_ids: list[str], lease_seconds: float) -> set[str]:
    """Extend ``owner``'s leases on ``call_ids``; returns the ids it still owns.

    Two statements whatever the number of calls (no list of ids to send and compile):
    every live call ``owner`` holds is extended, and any it holds but no longer
    follows (not in ``call_ids``) is given up at once.
    """
    if not call_ids:
        return set()
    expires = timezone.now() + timedelta(seconds=lease_seconds)
    mine = RealtimeCall.objects.filter(lease_owner=owner, status__in=LIVE_STATUSES)
    mine.update(lease_expires_at=expires)
    owned = set(mine.values_list("call_id", flat=True))
    followed = set(call_ids)
    if owned - followed:
        release(owner, sorted(owned - followed))
    return owned & followed


def release(owner: str, call_ids: list[str] | None = None) -> int:
    """Give calls up at once (a stopping worker): another worker may claim them now."""
    rows = RealtimeCall.objects.filter(lease_owner=owner)
    if call_ids is not None:
        rows = rows.filter(call_id__in=call_ids)
    return rows.update(lease_owner="", lease_expires_at=None)


def end_requests(owner: str) -> dict[str, str]:
    """``{call_id: reason}`` for the calls ``owner`` holds that someone asked to end."""
    rows = (
        RealtimeCall.objects.filter(lease_owner=owner, status__in=LIVE_STATUSES)
        .exclude(end_requested="")
        .values_list("call_id", "end_requested")
    )
    return dict(rows)


def mark_unattached(owner: str, call_id: str, retry_seconds: float) -> None:
    """The sideband could not be opened: keep the call for a later try by anyone."""
    RealtimeCall.objects.filter(call_id=call_id, lease_owner=owner).exclude(
        status=CallStatus.ENDED
    ).update(
        status=CallStatus.UNATTACHED,
        lease_owner="",
        lease_expires_at=timezone.now() + timedelta(seconds=retry_seconds),
    )
