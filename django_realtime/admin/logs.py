"""Admin for the app's logs: the audit log and webhook events, both read-only."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_realtime.models import AuditLogEntry, RefusedTraffic, WebhookEvent

if TYPE_CHECKING:
    _AuditAdminBase = admin.ModelAdmin[AuditLogEntry]
    _EventAdminBase = admin.ModelAdmin[WebhookEvent]
    _RefusedAdminBase = admin.ModelAdmin[RefusedTraffic]
else:
    _AuditAdminBase = _EventAdminBase = _RefusedAdminBase = admin.ModelAdmin

__all__ = ["AuditLogEntryAdmin", "ReadOnlyAdminMixin", "RefusedTrafficAdmin", "WebhookEventAdmin"]


class ReadOnlyAdminMixin:
    """Every field shown, none editable; no add, change or delete.

    For rows only the app writes (append-only logs, the call log). ``opts`` is the
    ModelAdmin's model options.
    """

    opts: Any

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.opts.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _Echo:
    """A file-like object whose write returns the value, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


AUDIT_CSV_FIELDS = [
    "created_at",
    "action",
    "outcome",
    "username",
    "preset_slug",
    "preset_version",
    "session_type",
    "model",
    "secret_fingerprint",
    "secret_expires_at",
    "call_id",
    "upstream_status",
    "upstream_request_id",
    "error_code",
    "error_message",
    "duration_ms",
    "client_ip",
    "user_agent",
]


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdminMixin, _AuditAdminBase):
    """Read-only: the log is append-only, so no add, change or delete here."""

    list_display = [
        "created_at",
        "action",
        "outcome",
        "username",
        "preset_slug",
        "model",
        "upstream_status",
        "duration_ms",
        "client_ip",
    ]
    list_filter = [
        "outcome",
        "action",
        ("preset", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
        "created_at",
    ]
    search_fields = [
        "username",
        "preset_slug",
        "call_id",
        "upstream_request_id",
        "secret_fingerprint",
        "error_code",
    ]
    date_hierarchy = "created_at"
    list_select_related = ["user", "preset"]
    actions = ["export_csv"]

    @admin.action(description=_("Export selected entries as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditLogEntry]) -> HttpResponse:
        writer = csv.writer(_Echo())

        def rows() -> Any:
            yield writer.writerow(AUDIT_CSV_FIELDS)
            for entry in queryset.order_by("created_at", "pk").iterator():
                yield writer.writerow(
                    [_csv_safe(getattr(entry, name)) for name in AUDIT_CSV_FIELDS]
                )

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="realtime-audit-{stamp}.csv"'
        return response  # type: ignore[return-value]


#: Characters a spreadsheet may read as the start of a formula, ASCII and full-width
#: (Excel and LibreOffice fold the full-width U+FF1D U+FF0B U+FF0D U+FF20 to = + - @).
FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")


def _csv_safe(value: Any) -> str:
    """Neutralise spreadsheet formulas: usernames and user agents are user input.

    A cell is guarded when its first character, or its first after leading
    whitespace (spreadsheets skip it), starts a formula, or when it starts with a
    tab or line break.
    """
    text = "" if value is None else str(value)
    if not text:
        return text
    if text[0] in "\t\r\n" or text.lstrip()[:1] in FORMULA_STARTS:
        return "'" + text
    return text


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, _EventAdminBase):
    """Every webhook-id ever accepted, with its processing status (idempotency log)."""

    list_display = ("received_at", "webhook_id", "event_type", "status", "attempts", "updated_at")
    list_filter = ("status", "event_type", "received_at")
    search_fields = ("webhook_id",)
    date_hierarchy = "received_at"
    ordering = ("-received_at", "-pk")


@admin.register(RefusedTraffic)
class RefusedTrafficAdmin(ReadOnlyAdminMixin, _RefusedAdminBase):
    """Anonymous attempts over ``ANONYMOUS_RATE``, counted per address and minute."""

    list_display = ("minute", "client_ip", "count")
    search_fields = ("client_ip",)
    date_hierarchy = "minute"
