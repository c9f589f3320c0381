"""Writing audit rows: one per attempt, whatever its outcome.

:class:`Attempt` collects what is known as a request goes through the gate and
writes exactly one :class:`~django_realtime.models.AuditLogEntry` when finished.
The secret value is reduced to its SHA-256 fingerprint before anything is stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .conf import conf
from .exceptions import UpstreamError
from .models import AuditLogEntry

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import SessionPreset

logger = logging.getLogger("django_realtime.audit")

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

    @property
    def finished(self) -> bool:
        return self.entry is not None

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
        """Write the row. A second call returns the first row (exactly one per attempt)."""
        if self.entry is not None:
            return self.entry
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
        self.entry = AuditLogEntry.objects.create(
            action=self.action,
            outcome=outcome,
            user=user if is_user else None,
            username=user.get_username() if is_user else "",
            preset=preset,
            preset_slug=(preset.slug if preset else self.preset_slug)[:64],
            preset_version=preset.version if preset else None,
            session_type=preset.session_type if preset else "",
            model=_model_of(preset),
            call_id=call_id[:128],
            duration_ms=int((time.monotonic() - self.started) * 1000),
            client_ip=client_ip(self.request),
            user_agent=user_agent,
            session_payload=self.session_payload,
            **fields,
        )
        return self.entry


def _model_of(preset: SessionPreset | None) -> str:
    if preset is None:
        return ""
    if preset.session_type == "transcription":
        return preset.transcription_model
    return preset.model
