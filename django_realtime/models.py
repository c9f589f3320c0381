"""Database models: session presets, the append-only audit log, SIP routes and calls."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from . import sessions
from .exceptions import SessionConfigError


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


def _default_allowed_overrides() -> list[str]:
    return []


class SessionPreset(models.Model):
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
        % {"voices": ", ".join(sessions.VOICES)},
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
            MinValueValidator(sessions.TTL_MIN),
            MaxValueValidator(sessions.TTL_MAX),
        ],
        help_text=_(
            "10-7200. A secret can open several sessions until it expires, so short is safer."
        ),
    )
    allowed_overrides = models.JSONField(
        _("allowed overrides"),
        default=_default_allowed_overrides,
        blank=True,
        help_text=_("Fields a client may override: %(fields)s.")
        % {"fields": ", ".join(sessions.OVERRIDABLE_FIELDS)},
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
            sessions.validate_preset(self)
        except SessionConfigError as err:
            field = err.field if err.field in {f.name for f in self._meta.fields} else None
            if field is None and err.field == "allowed_overrides":
                field = "allowed_overrides"
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
    ERROR = "error", _("Internal error")


class AuditLogEntry(models.Model):
    """One row per attempt, whatever its outcome. Append-only: never updated.

    The secret itself is never stored, only its SHA-256 ``secret_fingerprint``.
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


class SipRouteAction(models.TextChoices):
    ACCEPT = "accept", _("Accept with a preset")
    REJECT = "reject", _("Reject with a SIP status")
    REFER = "refer", _("Transfer (SIP REFER)")


class SipMatchField(models.TextChoices):
    TO = "to", _("To")
    FROM = "from", _("From")


class SipMatchType(models.TextChoices):
    ANY = "any", _("Any call")
    EXACT = "exact", _("Exact")
    GLOB = "glob", _("Glob (* and ?)")
    REGEX = "regex", _("Regular expression")


class SipRoute(models.Model):
    """An admin-managed rule deciding what to do with an incoming SIP call."""

    name = models.CharField(_("name"), max_length=120)
    priority = models.IntegerField(_("priority"), default=100, help_text=_("Lower runs first."))
    is_active = models.BooleanField(_("active"), default=True)
    match_field = models.CharField(
        _("match on"), max_length=8, choices=SipMatchField.choices, default=SipMatchField.TO
    )
    match_type = models.CharField(
        _("match type"), max_length=8, choices=SipMatchType.choices, default=SipMatchType.EXACT
    )
    pattern = models.CharField(
        _("pattern"),
        max_length=255,
        blank=True,
        help_text=_("A number (+14155550123) or SIP URI, a glob, or a regular expression."),
    )
    action = models.CharField(
        _("action"), max_length=8, choices=SipRouteAction.choices, default=SipRouteAction.ACCEPT
    )
    preset = models.ForeignKey(
        SessionPreset,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sip_routes",
        verbose_name=_("preset"),
    )
    status_code = models.PositiveSmallIntegerField(
        _("SIP status"),
        null=True,
        blank=True,
        validators=[MinValueValidator(400), MaxValueValidator(699)],
        help_text=_("For reject: 486 Busy, 603 Decline, 480 Unavailable..."),
    )
    target_uri = models.CharField(
        _("transfer target"), max_length=255, blank=True, help_text=_("tel:+1... or sip:...")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["priority", "pk"]
        verbose_name = _("SIP route")
        verbose_name_plural = _("SIP routes")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse routes that could not act: bad regex, transcription preset, bad target."""
        super().clean()
        from .sip_routing import route_errors  # sip_routing imports this module

        errors = route_errors(self)
        if errors:
            raise ValidationError(errors)


class SipCallStatus(models.TextChoices):
    INCOMING = "incoming", _("Incoming")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    REFERRED = "referred", _("Transferred")
    ENDED = "ended", _("Ended")
    FAILED = "failed", _("Failed")


class SipCall(models.Model):
    """One incoming SIP call, as announced by a ``realtime.call.incoming`` webhook."""

    call_id = models.CharField(_("call id"), max_length=128, unique=True)
    webhook_id = models.CharField(_("webhook id"), max_length=128, unique=True)
    from_header = models.CharField(_("from"), max_length=512, blank=True)
    to_header = models.CharField(_("to"), max_length=512, blank=True)
    sip_headers = models.JSONField(_("SIP headers"), default=list, blank=True)
    route = models.ForeignKey(
        SipRoute, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("route")
    )
    preset = models.ForeignKey(
        SessionPreset, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("preset")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=SipCallStatus.choices, default=SipCallStatus.INCOMING
    )
    status_detail = models.CharField(_("detail"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("SIP call")
        verbose_name_plural = _("SIP calls")

    def __str__(self) -> str:
        return self.call_id


class WebhookEventStatus(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed (will accept a redelivery)")


class WebhookEvent(models.Model):
    """Idempotency record: one row per ``webhook-id`` ever accepted.

    The unique constraint on ``webhook_id`` is what makes redeliveries and
    concurrent deliveries safe across processes.
    """

    webhook_id = models.CharField(_("webhook id"), max_length=128, unique=True)
    event_type = models.CharField(_("event type"), max_length=100)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=WebhookEventStatus.choices,
        default=WebhookEventStatus.PROCESSING,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id}"
