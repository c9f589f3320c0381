"""Telephony models: admin-managed routes and the log of incoming calls."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from django_realtime.models import SessionPreset

from .validators import STATUS_MAX, STATUS_MIN, route_errors


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
        validators=[MinValueValidator(STATUS_MIN), MaxValueValidator(STATUS_MAX)],
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

    @property
    def preset_session_type(self) -> str | None:
        """The session type of the chosen preset (``None``: no preset)."""
        return self.preset.session_type if self.preset_id and self.preset else None

    def clean(self) -> None:
        """Refuse routes that could not act: bad regex, transcription preset, bad target."""
        super().clean()
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
    realtime_call = models.OneToOneField(
        "django_realtime.RealtimeCall",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sip",
        verbose_name=_("call (controller)"),
        help_text=_("The call's usage, cost and end, once accepted."),
    )
    created_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("SIP call")
        verbose_name_plural = _("SIP calls")

    def __str__(self) -> str:
        return self.call_id
