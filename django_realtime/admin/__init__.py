"""The app's admin: presets (:mod:`.presets`), the audit log and webhook events (:mod:`.logs`),
the call controller's calls (:mod:`.calls`).

Telephony's admin is in :mod:`django_realtime.sip.admin`, registered by that app.
"""

from __future__ import annotations

from .calls import CallEventInline, RealtimeCallAdmin
from .logs import AuditLogEntryAdmin, ReadOnlyAdminMixin, WebhookEventAdmin
from .presets import SessionPresetAdmin, SessionPresetForm
from .usage import UsageLimitAdmin

__all__ = [
    "AuditLogEntryAdmin",
    "CallEventInline",
    "ReadOnlyAdminMixin",
    "RealtimeCallAdmin",
    "SessionPresetAdmin",
    "SessionPresetForm",
    "UsageLimitAdmin",
    "WebhookEventAdmin",
]
