"""Writing audit rows: one per attempt, whatever its outcome.

:class:`Attempt` collects what is known as a request goes through the gate and
writes exactly one :class:`~django_realtime.models.AuditLogEntry`. An attempt that
calls the upstream API is written ``pending`` first (:meth:`Attempt.begin`, one
INSERT) and finished after the call (one UPDATE), so a process killed mid-call
still leaves its row; :func:`mark_abandoned` closes those rows later. The secret
value is reduced to its SHA-256 fingerprint before anything is stored; text is
stripped of NUL bytes and lone surrogates, which PostgreSQL cannot store.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone as django_timezone

from . import rows
from .bodies import clean_text
from .conf import conf
from .exceptions import UpstreamError
from .models import AuditLogEntry, AuditOutcome, RefusedTraffic

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import SessionPreset

logger = logging.getLogger(__name__)

USER_AGENT_MAX = 512
ERROR_MESSAGE_MAX = 2000


def fingerprint(secret: str) -> str:
    """SHA-256 hex digest of a secret: lets an operator match a leaked value, nothing more."""
    return hashlib.sha256(secret.encode()).hexdigest()


def client_ip(request: HttpRequest | None) -> str | None:
    """``REMOTE_ADDR`` only: forwarded headers are client-controlled unless a proxy
    rewrites them, and a site that runs behind one sets REMOTE_ADDR in middleware."""
    if request is None or not conf.AUDIT_CLIENT_IP:
        return None
    return request.META.get("REMOTE_ADDR") or None


def mark_abandoned(*, now: datetime | None = None) -> int:
    """Mark rows still ``pending`` past ``PROCESSING_TIMEOUT`` ``abandoned``; how many.

    Such a row belongs to a process that died during its upstream call: the secret
    (or call) may exist upstream. Called by ``realtime_prune``; safe to call from any
    worker at any time (one UPDATE, idempotent).
    """
    cutoff = (now or django_timezone.now()) - timedelta(seconds=conf.PROCESSING_TIMEOUT)
    return AuditLogEntry.objects.filter(outcome=AuditOutcome.PENDING, created_at__lt=cutoff).update(
        outcome=AuditOutcome.ABANDONED,
        error_code="abandoned",
        error_message="The process ended before the upstream call finished.",
    )


def count_refused(request: HttpRequest | None, *, now: datetime | None = None) -> None:
    """Count one over-budget anonymous attempt in :class:`RefusedTraffic` (no audit row).

    One row per address and minute: an UPDATE, and an INSERT the first time.
    """
    minute = (now or django_timezone.now()).replace(second=0, microsecond=0)
    address = client_ip(request) or ""
    counted = RefusedTraffic.objects.filter(client_ip=address, minute=minute)
    if counted.update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            RefusedTraffic.objects.create(client_ip=address, minute=minute, count=1)
    except IntegrityError:  # another process inserted it first
        counted.update(count=F("count") + 1)


#: Written by every finish: the fields :func:`mark_abandoned` may have changed meanwhile.
_ALWAYS_WRITTEN = frozenset({"outcome", "error_code", "error_message"})


class Attempt:
    """The audit record of one mint / call / SIP action, written once by :meth:`finish`."""

    def __init__(
        self, action: str, *, request: HttpRequest | None = None, user: Any = None
    ) -> None:
        self.action = action
        self.request = request
        self.user = user
        self.started = time.monotonic()
        self.preset: SessionPreset | None = None
        self.preset_slug = ""
        self.session_payload: dict[str, Any] | None = None
        self.fields: dict[str, Any] = {}
        self.entry: AuditLogEntry | None = None
        self.pending: AuditLogEntry | None = None
        #: Minutes left under the usage limits, once the quota check passed (issue 10).
        self.remaining_minutes: float | None = None
        #: Whether any usage limit exists, when the caller read it with the preset
        #: (``None``: the gate reads it itself).
        self.usage_limits_exist: bool | None = None

    @property
    def finished(self) -> bool:
        return self.entry is not None

    def begin(self, *, call_id: str = "") -> AuditLogEntry:
        """Write the row ``pending`` now, before the upstream call (one INSERT).

        :meth:`finish` then completes this row instead of inserting one.
        """
        if self.pending is None and self.entry is None:
            self.pending = rows.insert(
                AuditLogEntry(**self._row(AuditOutcome.PENDING, call_id=call_id))
            )
        assert self.pending is not None or self.entry is not None
        return self.pending or self.entry  # type: ignore[return-value]

    def set_preset(self, preset: SessionPreset) -> None:
        self.preset = preset
        self.preset_slug = preset.slug

    def set_secret(self, value: str, expires_at: int) -> None:
        self.fields["secret_fingerprint"] = fingerprint(value)
        self.fields["secret_expires_at"] = datetime.fromtimestamp(expires_at, tz=timezone.utc)

    def set_upstream(self, *, status: int | None, request_id: str | None) -> None:
        self.fields["upstream_status"] = status
        self.fields["upstream_request_id"] = request_id or ""

    def set_upstream_error(self, err: UpstreamError) -> None:
        self.set_upstream(status=err.status_code, request_id=err.request_id)
        if err.error_code:
            self.fields["error_code"] = err.error_code[:64]
        self.fields["error_message"] = str(err)[:ERROR_MESSAGE_MAX]

    def finish(
        self,
        outcome: str,
        *,
        error_code: str = "",
        error_message: str = "",
        call_id: str = "",
    ) -> AuditLogEntry:
        """Write (or complete) the row. A second call returns the first row."""
        if self.entry is not None:
            return self.entry
        if self.pending is not None and not call_id:
            call_id = self.pending.call_id
        row = self._row(
            outcome, error_code=error_code, error_message=error_message, call_id=call_id
        )
        if self.pending is None:
            self.entry = rows.insert(AuditLogEntry(**row))
            return self.entry
        entry = self.pending
        # One UPDATE of what changed since begin() wrote the row (the session payload,
        # user and preset are not sent again), and always of the fields mark_abandoned
        # writes: a slow call marked abandoned meanwhile still gets its real outcome.
        changed = [
            name
            for name, value in row.items()
            if name in _ALWAYS_WRITTEN or getattr(entry, name) != value
        ]
        for name in changed:
            setattr(entry, name, row[name])
        # The statement QuerySet.update() sends (as it, no signal), without building a
        # query for it: see rows.py.
        rows.update(AuditLogEntry, entry.pk, {n: row[n] for n in changed})
        self.entry = entry
        return entry

    def _row(
        self,
        outcome: str,
        *,
        error_code: str = "",
        error_message: str = "",
        call_id: str = "",
    ) -> dict[str, Any]:
        user = self.user
        if user is None and self.request is not None:
            user = getattr(self.request, "user", None)
        is_user = bool(getattr(user, "is_authenticated", False))
        preset = self.preset
        fields = dict(self.fields)
        if error_code and not fields.get("error_code"):
            fields["error_code"] = error_code[:64]
        if error_message and not fields.get("error_message"):
            fields["error_message"] = error_message[:ERROR_MESSAGE_MAX]
        user_agent = ""
        if self.request is not None:
            user_agent = self.request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]
        row: dict[str, Any] = {
            "action": self.action,
            "outcome": outcome,
            "user": user if is_user else None,
            "username": user.get_username() if is_user else "",
            "preset": preset,
            "preset_slug": (preset.slug if preset else self.preset_slug)[:64],
            "preset_version": preset.version if preset else None,
            "session_type": preset.session_type if preset else "",
            "model": _model_of(preset),
            "call_id": call_id[:128],
            "duration_ms": int((time.monotonic() - self.started) * 1000),
            "client_ip": client_ip(self.request),
            "user_agent": user_agent,
            "session_payload": self.session_payload,
            **fields,
        }
        for name in (
            "username",
            "preset_slug",
            "call_id",
            "user_agent",
            "error_code",
            "error_message",
            "upstream_request_id",
        ):
            if isinstance(row.get(name), str):
                row[name] = clean_text(row[name])
        return row


def _model_of(preset: SessionPreset | None) -> str:
    if preset is None:
        return ""
    if preset.session_type == "transcription":
        return preset.transcription_model
    return preset.model
