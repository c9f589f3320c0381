"""Admin: presets are edited here; the audit log is read-only.

SIP routes, calls and webhook events are registered by :mod:`.admin_sip`.
"""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.exceptions import APIException

from . import minting, sessions
from .audit import Attempt
from .exceptions import SessionConfigError
from .models import AuditAction, AuditLogEntry, AuditOutcome, SessionPreset

# The stubs make these generic; at runtime they are not subscriptable (and a
# reusable app must not monkeypatch Django for its host project).
if TYPE_CHECKING:
    _PresetFormBase = forms.ModelForm[SessionPreset]
    _PresetAdminBase = admin.ModelAdmin[SessionPreset]
    _AuditAdminBase = admin.ModelAdmin[AuditLogEntry]
else:
    _PresetFormBase = forms.ModelForm
    _PresetAdminBase = _AuditAdminBase = admin.ModelAdmin


class SessionPresetForm(_PresetFormBase):
    """Shows ``allowed_overrides`` as checkboxes instead of raw JSON."""

    allowed_overrides = forms.MultipleChoiceField(
        label=_("Allowed overrides"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(name, name) for name in sessions.OVERRIDABLE_FIELDS],
        help_text=_("Fields a browser may override when it mints. Each value is validated."),
    )

    class Meta:
        model = SessionPreset
        fields = "__all__"

    # An emptied JSON textarea arrives as None; the columns are NOT NULL.
    def clean_tools(self) -> Any:
        return self.cleaned_data.get("tools") or []

    def clean_turn_detection_options(self) -> Any:
        return self.cleaned_data.get("turn_detection_options") or {}

    def clean_extra_session(self) -> Any:
        return self.cleaned_data.get("extra_session") or {}


@admin.register(SessionPreset)
class SessionPresetAdmin(_PresetAdminBase):
    form = SessionPresetForm
    list_display = [
        "name",
        "slug",
        "session_type",
        "model_display",
        "is_active",
        "ttl_seconds",
        "rate",
        "version",
        "updated_at",
    ]
    list_filter = ["session_type", "is_active"]
    search_fields = ["name", "slug", "description", "model", "transcription_model"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["allowed_groups"]
    readonly_fields = ["version", "created_at", "updated_at", "request_preview"]
    actions = ["duplicate_presets", "test_mint"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_active", "session_type"]}),
        (
            _("Conversation"),
            {
                "fields": [
                    "model",
                    "instructions",
                    "voice",
                    "output_modalities",
                    "speed",
                    "max_output_tokens",
                    "tools",
                    "tool_choice",
                ]
            },
        ),
        (
            _("Audio"),
            {
                "fields": [
                    "input_audio_format",
                    "output_audio_format",
                    "noise_reduction",
                    "turn_detection",
                    "turn_detection_options",
                    "transcription_model",
                    "transcription_language",
                    "transcription_prompt",
                ]
            },
        ),
        (
            _("Access"),
            {"fields": ["ttl_seconds", "allowed_overrides", "allowed_groups", "rate"]},
        ),
        (_("Advanced"), {"classes": ["collapse"], "fields": ["extra_session"]}),
        (
            _("Request preview"),
            {"fields": ["request_preview", "version", "created_at", "updated_at"]},
        ),
    ]

    @admin.display(description=_("model"))
    def model_display(self, obj: SessionPreset) -> str:
        return obj.transcription_model if obj.session_type == "transcription" else obj.model

    @admin.display(description=_("POST /v1/realtime/client_secrets"))
    def request_preview(self, obj: SessionPreset | None) -> str:
        """The exact JSON this preset sends upstream (saved values, no overrides)."""
        if obj is None or obj.pk is None:
            return str(_("Save the preset to see the request it sends."))
        try:
            sessions.validate_preset(obj)
            body = sessions.build_client_secret_request(obj)
        except SessionConfigError as err:
            return format_html('<p class="errornote">{}</p>', err)
        return format_html(
            '<pre class="realtime-preview">{}</pre>', json.dumps(body, indent=2, ensure_ascii=False)
        )

    @admin.action(description=_("Duplicate selected presets (copies are inactive)"))
    def duplicate_presets(self, request: HttpRequest, queryset: QuerySet[SessionPreset]) -> None:
        created = 0
        for preset in queryset.prefetch_related("allowed_groups"):
            groups = list(preset.allowed_groups.all())
            copy = SessionPreset.objects.get(pk=preset.pk)
            copy.pk = None
            copy._state.adding = True
            copy.slug = _free_slug(preset.slug)
            copy.name = f"{preset.name} (copy)"[:120]
            copy.is_active = False
            copy.version = 1
            copy.save()
            copy.allowed_groups.set(groups)
            created += 1
        self.message_user(
            request,
            ngettext("Created %d inactive copy.", "Created %d inactive copies.", created) % created,
            messages.SUCCESS,
        )

    @admin.action(description=_("Test mint: mint one secret with each selected preset"))
    def test_mint(self, request: HttpRequest, queryset: QuerySet[SessionPreset]) -> None:
        """Mints once per preset and reports expiry and request id, never the secret."""
        for preset in queryset:
            attempt = Attempt(AuditAction.MINT, request=request, user=request.user)
            try:
                minted = minting.mint(preset, {}, attempt)
            except APIException as exc:
                attempt.finish(
                    minting.outcome_for(exc),
                    error_code=minting.error_code(exc),
                    error_message=str(exc.detail),
                )
                self.message_user(request, _describe_failure(preset, attempt), messages.ERROR)
                continue
            entry = attempt.finish(AuditOutcome.ISSUED)
            expires = (
                timezone.localtime(entry.secret_expires_at) if entry.secret_expires_at else "?"
            )
            self.message_user(
                request,
                _(
                    "Test mint with “%(preset)s” succeeded: secret expires %(expires)s, "
                    "upstream request id %(rid)s, fingerprint %(fp)s…"
                )
                % {
                    "preset": preset.slug,
                    "expires": expires,
                    "rid": minted.secret.request_id or "-",
                    "fp": entry.secret_fingerprint[:12],
                },
                messages.SUCCESS,
            )


def _describe_failure(preset: SessionPreset, attempt: Attempt) -> str:
    entry = attempt.entry
    assert entry is not None
    parts = [f"Test mint with “{preset.slug}” failed: {entry.outcome}"]
    if entry.upstream_status:
        parts.append(f"upstream status {entry.upstream_status}")
    if entry.upstream_request_id:
        parts.append(f"request id {entry.upstream_request_id}")
    if entry.error_message:
        parts.append(entry.error_message[:300])
    return "; ".join(parts)


def _free_slug(slug: str) -> str:
    base = f"{slug}-copy"[:60]
    candidate, n = base, 2
    while SessionPreset.objects.filter(slug=candidate).exists():
        candidate, n = f"{base}-{n}", n + 1
    return candidate


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
class AuditLogEntryAdmin(_AuditAdminBase):
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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditLogEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

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


def _csv_safe(value: Any) -> str:
    """Neutralise spreadsheet formulas: usernames and user agents are user input."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


# SIP routes, calls and webhook events register themselves on import.
from . import admin_sip  # noqa: E402, F401
