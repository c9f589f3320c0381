"""Models of the call controller: every live call, what happened in it, and the leash
fields a preset carries. Re-exported by :mod:`django_realtime.models` (import them
from there).

Nothing here imports :mod:`django_realtime.models` (the preset is named by its label),
so the two modules never import each other.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .control.leash import API_SESSION_LIMIT
from .control.pricing import COUNTERS

__all__ = [
    "COUNTERS",
    "CallEvent",
    "CallEventKind",
    "CallOrigin",
    "CallStatus",
    "ConfigLock",
    "EndReason",
    "PresetLeashFields",
    "RealtimeCall",
]


class ConfigLock(models.TextChoices):
    OFF = "off", _("Off: the browser may change the session")
    REVERT = "revert", _("Revert: re-assert the preset's session")
    HANGUP = "hangup", _("Hang up on a change")


class PresetLeashFields(models.Model):
    """The leash a preset puts on each of its calls (abstract; ``SessionPreset`` has it)."""

    max_duration_seconds = models.PositiveIntegerField(
        _("maximum duration (seconds)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(10), MaxValueValidator(API_SESSION_LIMIT)],
        help_text=_("10-3600; blank: the API's own limit of 60 minutes."),
    )
    max_duration_warning = models.TextField(
        _("warning before the end"),
        blank=True,
        help_text=_(
            "Instructions for the assistant's last words, spoken 15 s before the maximum "
            "duration. Blank: a short goodbye."
        ),
    )
    idle_timeout_seconds = models.PositiveIntegerField(
        _("idle timeout (seconds)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(API_SESSION_LIMIT)],
        help_text=_("Hang up after this long without the caller speaking. Blank: never."),
    )
    config_lock = models.CharField(
        _("config lock"),
        max_length=8,
        choices=ConfigLock.choices,
        default=ConfigLock.OFF,
        blank=True,  # a form that leaves it out means "off"
        help_text=_(
            "What the controller does when the browser changes instructions, tools, "
            "model, voice or output limits (allowed overrides excepted)."
        ),
    )
    require_control = models.BooleanField(
        _("require the call controller"),
        default=False,
        help_text=_(
            "Refuse client secrets (ephemeral mode): only relay and SIP calls, whose call "
            "id the server sees, so every call is on the leash."
        ),
    )
    greeting = models.TextField(
        _("greeting"),
        blank=True,
        help_text=_("Instructions for the assistant's first words once the controller attaches."),
    )
    store_transcripts = models.BooleanField(
        _("store transcripts"),
        default=False,
        help_text=_("Keep what the caller and the assistant said as call events."),
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        self.config_lock = self.config_lock or ConfigLock.OFF
        limit, idle = self.max_duration_seconds, self.idle_timeout_seconds
        if limit and idle and idle >= limit:
            raise ValidationError(
                {"idle_timeout_seconds": _("The idle timeout must be shorter than the call.")}
            )
        if self.config_lock != ConfigLock.OFF and getattr(self, "session_type", "") == (
            "transcription"
        ):
            raise ValidationError(
                {"config_lock": _("A transcription session has nothing to lock.")}
            )

    def allowed_modes(self) -> list[str]:
        """How a browser may connect with this preset: ``relay`` always, ``ephemeral``
        unless ``require_control``."""
        return ["relay"] if self.require_control else ["ephemeral", "relay"]


class CallOrigin(models.TextChoices):
    EPHEMERAL = "ephemeral", _("Browser (client secret)")
    RELAY = "relay", _("Browser (relay)")
    SIP = "sip", _("Phone (SIP)")


class CallStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")
    UNATTACHED = "unattached", _("Unattached (the controller could not follow it)")


class EndReason(models.TextChoices):
    BEACON = "beacon", _("The browser left")
    PEER = "peer", _("Ended by the caller or the API")
    MAX_DURATION = "max_duration", _("Maximum duration")
    IDLE = "idle", _("Idle timeout")
    QUOTA = "quota", _("Quota")
    CONFIG_VIOLATION = "config_violation", _("Config violation")
    ADMIN = "admin", _("Hung up by an admin")
    EXPIRED = "expired", _("The API's session limit")


#: Statuses of a call a worker should be following.
LIVE_STATUSES = (CallStatus.PENDING, CallStatus.ACTIVE, CallStatus.UNATTACHED)


class RealtimeCall(models.Model):
    """One live conversation, whatever its channel, followed by a ``realtime_worker``.

    The usage counters are sums of the ``usage`` fields of the same name;
    ``cost_usd`` is their price (exact, per event) from the table dated
    ``prices_read_on``. A worker owns a call while ``lease_expires_at`` is in the
    future; ``end_requested`` is how a beacon or an admin asks it to hang up.
    """

    call_id = models.CharField(_("call id"), max_length=128, unique=True)
    origin = models.CharField(_("origin"), max_length=16, choices=CallOrigin.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=CallStatus.choices, default=CallStatus.PENDING
    )
    end_reason = models.CharField(
        _("end reason"), max_length=24, choices=EndReason.choices, blank=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    preset = models.ForeignKey(
        "django_realtime.SessionPreset",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("preset"),
    )
    preset_version = models.PositiveIntegerField(_("preset version"), null=True, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    session = models.JSONField(
        _("expected session"),
        default=dict,
        blank=True,
        help_text=_("What the preset and the allowed overrides produced (the config lock's)."),
    )
    created_at = models.DateTimeField(_("started"), auto_now_add=True, db_index=True)
    attached_at = models.DateTimeField(_("attached"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    input_text_tokens = models.PositiveBigIntegerField(_("input text tokens"), default=0)
    input_audio_tokens = models.PositiveBigIntegerField(_("input audio tokens"), default=0)
    input_image_tokens = models.PositiveBigIntegerField(_("input image tokens"), default=0)
    cached_input_tokens = models.PositiveBigIntegerField(_("cached input tokens"), default=0)
    output_text_tokens = models.PositiveBigIntegerField(_("output text tokens"), default=0)
    output_audio_tokens = models.PositiveBigIntegerField(_("output audio tokens"), default=0)
    transcription_tokens = models.PositiveBigIntegerField(_("transcription tokens"), default=0)
    transcription_seconds = models.PositiveBigIntegerField(_("transcription seconds"), default=0)
    cost_usd = models.DecimalField(_("cost (USD)"), max_digits=20, decimal_places=10, default=0)
    prices_read_on = models.DateField(_("prices as of"), null=True, blank=True)
    lease_owner = models.CharField(_("worker"), max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    end_requested = models.CharField(
        _("end requested"), max_length=24, choices=EndReason.choices, blank=True
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self) -> str:
        return self.call_id

    @property
    def total_tokens(self) -> int:
        """Every token counted (input, output and transcription)."""
        return sum(
            getattr(self, name)
            for name in COUNTERS
            if name not in ("cached_input_tokens", "transcription_seconds")
        )

    def usage(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


class CallEventKind(models.TextChoices):
    TRANSCRIPT = "transcript", _("Transcript")
    TOOL_CALL = "tool_call", _("Tool call")
    CONFIG_VIOLATION = "config_violation", _("Config violation")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")
    ATTACHED = "attached", _("Controller attached")


class CallEvent(models.Model):
    """Something an operator needs to know about a call (append-only)."""

    call = models.ForeignKey(
        RealtimeCall, on_delete=models.CASCADE, related_name="events", verbose_name=_("call")
    )
    kind = models.CharField(_("kind"), max_length=24, choices=CallEventKind.choices)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("call event")
        verbose_name_plural = _("call events")

    def __str__(self) -> str:
        return f"{self.kind} {self.created_at:%H:%M:%S}"
