"""The webhook receiver's idempotency records (re-exported from ``models``)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


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
