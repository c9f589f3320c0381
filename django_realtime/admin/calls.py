"""Admin for the call controller: the "Calls" list with totals, each call's events,
and a "Hang up" action (audited, end reason ``admin``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_realtime import calls
from django_realtime.call_models import COUNTERS, LIVE_STATUSES, CallEvent, RealtimeCall

from .logs import ReadOnlyAdminMixin

if TYPE_CHECKING:
    _CallAdminBase = admin.ModelAdmin[RealtimeCall]
    _EventInlineBase = admin.TabularInline[CallEvent, RealtimeCall]
else:
    _CallAdminBase = admin.ModelAdmin
    _EventInlineBase = admin.TabularInline

__all__ = ["CallEventInline", "RealtimeCallAdmin"]

TOKEN_COUNTERS = [n for n in COUNTERS if n not in ("cached_input_tokens", "transcription_seconds")]


class CallEventInline(_EventInlineBase):
    """What happened during the call, in order (read-only)."""

    model = CallEvent
    fields = ("created_at", "kind", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _duration(call: RealtimeCall) -> timedelta:
    end = call.ended_at or timezone.now()
    return max(end - call.created_at, timedelta(0))


@admin.register(RealtimeCall)
class RealtimeCallAdmin(ReadOnlyAdminMixin, _CallAdminBase):
    """Every call with its usage and cost; totals of the filtered list in the footer."""

    list_display = (
        "call_id",
        "status",
        "user",
        "preset",
        "origin",
        "created_at",
        "duration",
        "tokens",
        "cost",
        "end_reason",
    )
    list_filter = ("status", "origin", "end_reason", "preset", "created_at")
    search_fields = ("call_id", "user__username", "preset__slug", "lease_owner")
    date_hierarchy = "created_at"
    list_select_related = ("user", "preset")
    ordering = ("-created_at", "-pk")
    inlines = [CallEventInline]
    actions = ("hangup",)
    change_list_template = "admin/django_realtime/realtimecall/change_list.html"

    @admin.display(description=_("duration"))
    def duration(self, call: RealtimeCall) -> str:
        seconds = int(_duration(call).total_seconds())
        return f"{seconds // 60}:{seconds % 60:02d}"

    @admin.display(description=_("tokens"))
    def tokens(self, call: RealtimeCall) -> int:
        return call.total_tokens

    @admin.display(description=_("cost (USD)"), ordering="cost_usd")
    def cost(self, call: RealtimeCall) -> str:
        return f"{call.cost_usd:.4f}"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            response.context_data["totals"] = self.totals(changelist.queryset)  # type: ignore[attr-defined]
        return response

    def totals(self, queryset: QuerySet[RealtimeCall]) -> dict[str, Any]:
        """Calls, tokens, cost and minutes of ``queryset`` (the filtered list)."""
        sums = queryset.aggregate(cost=Sum("cost_usd"), **{n: Sum(n) for n in TOKEN_COUNTERS})
        now = timezone.now()
        spans = queryset.select_related(None).values_list("created_at", "ended_at")
        seconds = sum(max(((end or now) - start).total_seconds(), 0) for start, end in spans)
        return {
            "calls": queryset.count(),
            "tokens": sum(sums[n] or 0 for n in TOKEN_COUNTERS),
            "cost": f"{sums['cost'] or 0:.4f}",
            "minutes": round(seconds / 60, 1),
        }

    def has_control_permission(self, request: HttpRequest) -> bool:
        """Hanging up live calls needs the model's change permission."""
        perm = f"{self.opts.app_label}.change_{self.opts.model_name}"
        return bool(request.user.has_perm(perm))

    @admin.action(description=_("Hang up selected calls"), permissions=["control"])
    def hangup(self, request: HttpRequest, queryset: QuerySet[RealtimeCall]) -> None:
        live = [call for call in queryset.select_related("preset") if call.status in LIVE_STATUSES]
        done: list[tuple[RealtimeCall, Any]] = []
        failed: list[tuple[RealtimeCall, Any]] = []
        for call in live:
            entry = calls.admin_hangup(call, request=request, user=request.user)
            (done if entry.outcome == "succeeded" else failed).append((call, entry))
        if done:
            self.message_user(
                request,
                ngettext("Hanging up %(count)d call.", "Hanging up %(count)d calls.", len(done))
                % {"count": len(done)},
                messages.SUCCESS,
            )
        for call, entry in failed:
            self.message_user(
                request,
                _("Hang-up failed for %(id)s: %(error)s")
                % {"id": call.call_id, "error": entry.outcome},
                messages.ERROR,
            )
        skipped = queryset.count() - len(live)
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "Skipped %(count)d call that is over.",
                    "Skipped %(count)d calls that are over.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
