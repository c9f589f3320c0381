"""Admin for quotas and usage: the ``UsageLimit`` rows, and the usage dashboard.

The dashboard (``admin/django_realtime/usagelimit/dashboard/``, linked from the Calls
list) shows calls, minutes and cost per day for the last 30 days, per preset and for the
top 10 users, as server-side SVG bars (no script, no CDN) and tables; ``?format=csv``
gives the same figures as CSV, formula-guarded like the audit log's export.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from django_realtime.models import UsageLimit
from django_realtime.usage import Row, usage_report

from .logs import _csv_safe

if TYPE_CHECKING:
    _LimitAdminBase = admin.ModelAdmin[UsageLimit]
else:
    _LimitAdminBase = admin.ModelAdmin

__all__ = ["UsageLimitAdmin", "bar_chart"]

CSV_FIELDS = ("table", "label", "calls", "minutes", "cost_usd")
CHART_WIDTH, CHART_HEIGHT, LABEL_HEIGHT = 720, 160, 18


def bar_chart(rows: Sequence[Row], field: str, title: str) -> SafeString:
    """An SVG bar chart of ``field`` per row; each bar has its value as a tooltip."""
    values = [float(getattr(row, field)) for row in rows]
    top = max(values, default=0.0) or 1.0
    step = CHART_WIDTH / max(1, len(rows))
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
        (
            (
                f"{i * step + 1:.1f}",
                f"{CHART_HEIGHT - value / top * CHART_HEIGHT:.1f}",
                f"{max(1.0, step - 2):.1f}",
                f"{value / top * CHART_HEIGHT:.1f}",
                row.label,
                getattr(row, field),
            )
            for i, (row, value) in enumerate(zip(rows, values, strict=True))
        ),
    )
    first, last = (rows[0].label, rows[-1].label) if rows else ("", "")
    return format_html(
        '<svg class="realtime-usage-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="100%" height="{}" xmlns="http://www.w3.org/2000/svg">'
        '<g fill="#417690">{}</g>'
        '<text x="0" y="{}" font-size="12">{}</text>'
        '<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>'
        '<text x="{}" y="12" font-size="12" text-anchor="end">max {}</text></svg>',
        title,
        CHART_WIDTH,
        CHART_HEIGHT + LABEL_HEIGHT,
        CHART_HEIGHT + LABEL_HEIGHT,
        bars,
        CHART_HEIGHT + LABEL_HEIGHT - 4,
        first,
        CHART_WIDTH,
        CHART_HEIGHT + LABEL_HEIGHT - 4,
        last,
        CHART_WIDTH,
        f"{max(values, default=0):g}",
    )


@admin.register(UsageLimit)
class UsageLimitAdmin(_LimitAdminBase):
    """Quotas: who, which preset, and the limits (blank = no limit)."""

    list_display = (
        "__str__",
        "max_concurrent_calls",
        "minutes_per_day",
        "cost_per_day_usd",
    )
    list_filter = ("group", "preset")

    def get_urls(self) -> list[URLPattern]:
        dashboard = path(
            "dashboard/",
            self.admin_site.admin_view(self.dashboard_view),
            name="django_realtime_usage_dashboard",
        )
        return [dashboard, *super().get_urls()]

    def has_dashboard_permission(self, request: HttpRequest) -> bool:
        """Reading usage needs the view permission on calls."""
        return request.user.has_perm("django_realtime.view_realtimecall")

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_dashboard_permission(request):
            return HttpResponse(status=403)
        report = usage_report()
        if request.GET.get("format") == "csv":
            return self._csv(report.days, report.presets, report.users)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Realtime usage, last 30 days"),
            "opts": self.model._meta,
            "report": report,
            "charts": [
                bar_chart(report.days, "minutes", str(_("Minutes per day"))),
                bar_chart(report.days, "calls", str(_("Calls per day"))),
                bar_chart(report.days, "cost_usd", str(_("Cost per day (USD)"))),
            ],
            "totals": Row(
                "total",
                sum(r.calls for r in report.days),
                round(sum(r.minutes for r in report.days), 1),
                sum((r.cost_usd for r in report.days), Decimal(0)),
            ),
        }
        return TemplateResponse(request, "admin/django_realtime/usage_dashboard.html", context)

    def _csv(self, *tables: Sequence[Row]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="realtime-usage-{stamp}.csv"'
        writer = csv.writer(response)
        writer.writerow(CSV_FIELDS)
        for name, rows in zip(("day", "preset", "user"), tables, strict=True):
            for row in rows:
                writer.writerow(
                    [name, _csv_safe(row.label), row.calls, f"{row.minutes:g}", row.cost_usd]
                )
        return response
