"""The quota model: :class:`UsageLimit` rows, edited in the admin, read by :mod:`.quotas`.

Re-exported by :mod:`django_realtime.models` (import it from there). Nothing here imports
:mod:`django_realtime.models` (the preset is named by its label), so the two modules never
import each other.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["UsageLimit"]


class UsageLimit(models.Model):
    """A budget: who (``group``, null = everyone), for which ``preset`` (null = every
    preset), and any of three limits (each null = no limit).

    Every row matching a user and a preset applies; for each dimension the most generous
    one wins, so a "pro" group's row lifts the "everyone" row for its members. The
    minutes and the cost are per day in the site's ``TIME_ZONE``, summed over the calls
    of the presets the row covers.
    """

    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("group"),
        help_text=_("Blank: everyone."),
    )
    preset = models.ForeignKey(
        "django_realtime.SessionPreset",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="usage_limits",
        verbose_name=_("preset"),
        help_text=_("Blank: every preset, counted together."),
    )
    max_concurrent_calls = models.PositiveIntegerField(
        _("concurrent calls"), null=True, blank=True, help_text=_("Blank: no limit.")
    )
    minutes_per_day = models.PositiveIntegerField(
        _("minutes per day"), null=True, blank=True, help_text=_("Blank: no limit.")
    )
    cost_per_day_usd = models.DecimalField(
        _("cost per day (USD)"),
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Blank: no limit."),
    )

    class Meta:
        verbose_name = _("usage limit")
        verbose_name_plural = _("usage limits")
        ordering = ["group__name", "preset__name", "pk"]

    def __str__(self) -> str:
        who = self.group.name if self.group_id and self.group else _("everyone")
        what = self.preset.name if self.preset_id and self.preset else _("every preset")
        return f"{who} / {what}"

    def clean(self) -> None:
        super().clean()
        if (
            self.max_concurrent_calls is None
            and self.minutes_per_day is None
            and self.cost_per_day_usd is None
        ):
            raise ValidationError(_("Set at least one limit."))
