"""Admin for session presets: checkbox overrides, request preview, duplicate, test mint."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.exceptions import APIException

from django_realtime import gate, payloads, rules
from django_realtime.audit import Attempt
from django_realtime.exceptions import SessionConfigError
from django_realtime.models import AuditAction, AuditOutcome, SessionPreset
from django_realtime.tools import tool_choices

# The stubs make these generic; at runtime they are not subscriptable (and a
# reusable app must not monkeypatch Django for its host project).
if TYPE_CHECKING:
    _PresetFormBase = forms.ModelForm[SessionPreset]
    _PresetAdminBase = admin.ModelAdmin[SessionPreset]
else:
    _PresetFormBase = forms.ModelForm
    _PresetAdminBase = admin.ModelAdmin


class SessionPresetForm(_PresetFormBase):
    """Shows ``allowed_overrides`` as checkboxes instead of raw JSON."""

    allowed_overrides = forms.MultipleChoiceField(
        label=_("Allowed overrides"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(name, name) for name in rules.OVERRIDABLE_FIELDS],
        help_text=_("Fields a browser may override when it mints. Each value is validated."),
    )

    # issue 10: registered server tools only (a stale name fails validation here)
    server_tools = forms.MultipleChoiceField(
        label=_("Server tools"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=tool_choices,
        help_text=_("Tools the server runs as the caller (registered in realtime_tools.py)."),
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
                    "server_tools",  # issue 10
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
        (
            _("Call control"),
            {
                "fields": [
                    "require_control",
                    "max_duration_seconds",
                    "max_duration_warning",
                    "idle_timeout_seconds",
                    "config_lock",
                    "greeting",
                    "store_transcripts",
                ]
            },
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
            rules.validate_preset(obj)
            body = payloads.build_client_secret_request(obj)
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
                minted = gate.try_mint(preset, {}, attempt)
            except APIException:
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
