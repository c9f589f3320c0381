"""Database models: session presets, the append-only audit log, webhook idempotency,
and (from :mod:`.call_models`) every live call with its events.

SIP routes and calls live in the opt-in app :mod:`django_realtime.sip`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from . import rules
from .call_models import CallEvent as CallEvent  # re-exported: the documented import path
from .call_models import PresetLeashFields
from .call_models import RealtimeCall as RealtimeCall
from .exceptions import SessionConfigError
from .usage_models import UsageLimit as UsageLimit  # issue 10: quotas
from .webhook_models import WebhookEvent as WebhookEvent  # re-exported
from .webhook_models import WebhookEventStatus as WebhookEventStatus


class SessionType(models.TextChoices):
    REALTIME = "realtime", _("Realtime (speech to speech)")
    TRANSCRIPTION = "transcription", _("Transcription only")


class OutputModality(models.TextChoices):
    AUDIO = "audio", _("Audio (with transcript)")
    TEXT = "text", _("Text only")


class AudioFormat(models.TextChoices):
    DEFAULT = "", _("Server default (PCM 24 kHz)")
    PCM = "audio/pcm", _("PCM 16-bit, 24 kHz")
    PCMU = "audio/pcmu", _("G.711 μ-law")
    PCMA = "audio/pcma", _("G.711 A-law")


class NoiseReduction(models.TextChoices):
    OFF = "", _("Off")
    NEAR_FIELD = "near_field", _("Near field (headsets)")
    FAR_FIELD = "far_field", _("Far field (laptop or room microphones)")


class TurnDetection(models.TextChoices):
    DEFAULT = "", _("Server default (server VAD)")
    SERVER_VAD = "server_vad", _("Server VAD")
    SEMANTIC_VAD = "semantic_vad", _("Semantic VAD")
    MANUAL = "none", _("Manual (the client triggers responses)")


class SessionPreset(PresetLeashFields, models.Model):
    """A named Realtime session configuration that users may mint secrets for.

    Blank fields are left out of the request, so the API's own defaults apply.
    ``version`` is bumped on every save and snapshotted in each audit row.
    """

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    session_type = models.CharField(
        _("session type"), max_length=16, choices=SessionType.choices, default=SessionType.REALTIME
    )
    model = models.CharField(
        _("model"),
        max_length=100,
        blank=True,
        help_text=_("Realtime model, e.g. gpt-realtime. Not used by transcription presets."),
    )
    instructions = models.TextField(_("instructions"), blank=True)
    voice = models.CharField(
        _("voice"),
        max_length=64,
        blank=True,
        help_text=_("One of %(voices)s, or a custom voice id (voice_...).")
        % {"voices": ", ".join(rules.VOICES)},
    )
    output_modalities = models.CharField(
        _("output"), max_length=8, choices=OutputModality.choices, blank=True
    )
    input_audio_format = models.CharField(
        _("input audio format"), max_length=16, choices=AudioFormat.choices, blank=True
    )
    output_audio_format = models.CharField(
        _("output audio format"), max_length=16, choices=AudioFormat.choices, blank=True
    )
    noise_reduction = models.CharField(
        _("noise reduction"), max_length=16, choices=NoiseReduction.choices, blank=True
    )
    turn_detection = models.CharField(
        _("turn detection"), max_length=16, choices=TurnDetection.choices, blank=True
    )
    turn_detection_options = models.JSONField(
        _("turn detection options"),
        default=dict,
        blank=True,
        help_text=_(
            'Extra fields for the chosen VAD, e.g. {"threshold": 0.5, '
            '"silence_duration_ms": 500} or {"eagerness": "low"}.'
        ),
    )
    transcription_model = models.CharField(
        _("transcription model"),
        max_length=64,
        blank=True,
        help_text=_("Required for transcription presets; optional input transcription otherwise."),
    )
    transcription_language = models.CharField(
        _("transcription language"), max_length=16, blank=True, help_text=_("ISO-639-1, e.g. en.")
    )
    transcription_prompt = models.TextField(_("transcription prompt"), blank=True)
    speed = models.FloatField(
        _("speed"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.25), MaxValueValidator(1.5)],
    )
    max_output_tokens = models.PositiveIntegerField(
        _("max output tokens"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(4096)],
        help_text=_("1-4096; blank means unlimited."),
    )
    tools = models.JSONField(_("tools"), default=list, blank=True)
    # issue 10: names of registered server tools (django_realtime.tools), checked by E020
    server_tools = models.JSONField(
        _("server tools"),
        default=list,
        blank=True,
        help_text=_("Registered tools the server answers during the call, as the caller."),
    )
    tool_choice = models.CharField(
        _("tool choice"),
        max_length=100,
        blank=True,
        help_text=_('"auto", "none", "required", or the name of one function tool.'),
    )
    extra_session = models.JSONField(
        _("extra session fields"),
        default=dict,
        blank=True,
        help_text=_("Merged into the session last, for API fields newer than this app."),
    )
    ttl_seconds = models.PositiveIntegerField(
        _("secret lifetime (seconds)"),
        default=60,
        validators=[
            MinValueValidator(rules.TTL_MIN),
            MaxValueValidator(rules.TTL_MAX),
        ],
        help_text=_(
            "10-7200. A secret can open several sessions until it expires, so short is safer."
        ),
    )
    allowed_overrides = models.JSONField(
        _("allowed overrides"),
        default=list,
        blank=True,
        help_text=_("Fields a client may override: %(fields)s.")
        % {"fields": ", ".join(rules.OVERRIDABLE_FIELDS)},
    )
    allowed_groups = models.ManyToManyField(
        "auth.Group",
        blank=True,
        related_name="+",
        verbose_name=_("allowed groups"),
        help_text=_("Blank: any authenticated user."),
    )
    rate = models.CharField(
        _("rate limit"),
        max_length=32,
        blank=True,
        help_text=_('django-ratelimit rate per user, e.g. "10/m". Blank: the global RATE.'),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("session preset")
        verbose_name_plural = _("session presets")

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            # Bump in the database too, so two concurrent saves never share a version.
            self.version = F("version") + 1
            super().save(*args, **kwargs)
            self.refresh_from_db(fields=["version"])
        else:
            super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        try:
            rules.validate_preset(self)
        except SessionConfigError as err:
            field = err.field if err.field in {f.name for f in self._meta.fields} else None
            raise ValidationError({field: str(err)} if field else str(err)) from err

    def is_available_to(self, user: Any) -> bool:
        """Whether ``user`` may mint with this preset (active, group-restricted)."""
        if not self.is_active or not getattr(user, "is_authenticated", False):
            return False
        group_ids = {g.pk for g in self.allowed_groups.all()}
        if not group_ids:
            return True
        return bool(user.groups.filter(pk__in=group_ids).exists())

    @classmethod
    def available_to(cls, user: Any) -> models.QuerySet[SessionPreset]:
        """Active presets ``user`` may use: no group restriction, or a shared group."""
        qs = cls.objects.filter(is_active=True)
        if not getattr(user, "is_authenticated", False):
            return qs.none()
        return qs.filter(
            models.Q(allowed_groups__isnull=True) | models.Q(allowed_groups__in=user.groups.all())
        ).distinct()


class AuditAction(models.TextChoices):
    MINT = "mint", _("Mint client secret")
    CALL = "call", _("Relay call (SDP)")
    SIP_ACCEPT = "sip.accept", _("SIP accept")
    SIP_REJECT = "sip.reject", _("SIP reject")
    SIP_REFER = "sip.refer", _("SIP refer")
    SIP_HANGUP = "sip.hangup", _("SIP hang up")
    CALL_HANGUP = "call.hangup", _("Call hang up (controller)")


class AuditOutcome(models.TextChoices):
    ISSUED = "issued", _("Issued")
    SUCCEEDED = "succeeded", _("Succeeded")
    INVALID = "invalid", _("Invalid request")
    FORBIDDEN = "forbidden", _("Forbidden")
    NOT_FOUND = "not_found", _("Preset not found")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    NOT_CONFIGURED = "not_configured", _("Not configured")
    UPSTREAM_ERROR = "upstream_error", _("Upstream error")
    UPSTREAM_UNAVAILABLE = "upstream_unavailable", _("Upstream unavailable")
    UPSTREAM_TIMEOUT = "upstream_timeout", _("Upstream timeout")
    UNAVAILABLE = "unavailable", _("Unavailable (rate-limit cache down)")
    ERROR = "error", _("Internal error")
    PENDING = "pending", _("In flight")  # written before the upstream call
    ABANDONED = "abandoned", _("Abandoned (the process died mid-call)")


class AuditLogEntry(models.Model):
    """One row per attempt, whatever its outcome.

    An attempt that calls the upstream API is written ``pending`` before the call
    and finished (once) after it, so a crash leaves a row; ``realtime_prune`` marks
    rows still pending past ``PROCESSING_TIMEOUT`` ``abandoned``. Nothing else
    updates a row. The secret itself is never stored, only its SHA-256
    ``secret_fingerprint``.
    """

    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    action = models.CharField(_("action"), max_length=16, choices=AuditAction.choices)
    outcome = models.CharField(_("outcome"), max_length=24, choices=AuditOutcome.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    preset = models.ForeignKey(
        SessionPreset,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("preset"),
    )
    preset_slug = models.CharField(_("preset slug"), max_length=64, blank=True)
    preset_version = models.PositiveIntegerField(_("preset version"), null=True, blank=True)
    session_type = models.CharField(_("session type"), max_length=16, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    secret_fingerprint = models.CharField(_("secret SHA-256"), max_length=64, blank=True)
    secret_expires_at = models.DateTimeField(_("secret expires"), null=True, blank=True)
    call_id = models.CharField(_("call id"), max_length=128, blank=True, db_index=True)
    upstream_status = models.PositiveSmallIntegerField(_("upstream status"), null=True, blank=True)
    upstream_request_id = models.CharField(_("upstream request id"), max_length=128, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    session_payload = models.JSONField(_("session sent"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["action", "outcome"])]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} {self.username or '-'} {self.preset_slug or '-'}"


class RefusedTraffic(models.Model):
    """Anonymous attempts over ``ANONYMOUS_RATE``: one row per client address and
    minute with a count, instead of one audit row each (a flood cannot fill the disk)."""

    client_ip = models.CharField(_("client address"), max_length=45, blank=True)
    minute = models.DateTimeField(_("minute"), db_index=True)
    count = models.PositiveIntegerField(_("refused attempts"), default=0)

    class Meta:
        ordering = ["-minute", "client_ip"]
        verbose_name = _("refused anonymous traffic")
        verbose_name_plural = _("refused anonymous traffic")
        unique_together = [("client_ip", "minute")]

    def __str__(self) -> str:
        return f"{self.client_ip or '-'} {self.minute:%Y-%m-%d %H:%M} x{self.count}"
