"""Admin for telephony: SIP routes (editable) and SIP calls (read-only).

* :class:`SipRouteAdmin`: routes by priority with ``priority`` / ``is_active`` editable
  in the list, and a "Which route matches?" page that shows the decision for a sample
  From / To (SIP_ROUTER, routes, SIP_DEFAULT_ACTION) without calling OpenAI.
* :class:`SipCallAdmin`: every field read-only; actions "Hang up" and "Transfer…"
  (an intermediate page asks for the target), audited with the admin user.
  They need the model's *change* permission, which otherwise grants nothing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_realtime.admin import ReadOnlyAdminMixin

from . import actions as call_actions
from . import routing
from .models import SipCall, SipCallStatus, SipRoute
from .routing import explain
from .validators import DEFAULT_REJECT_STATUS, validate_target_uri

if TYPE_CHECKING:
    _RouteAdminBase = admin.ModelAdmin[SipRoute]
    _CallAdminBase = admin.ModelAdmin[SipCall]
else:
    _RouteAdminBase = _CallAdminBase = admin.ModelAdmin

__all__ = ["SipCallAdmin", "SipRouteAdmin", "explain_match"]

#: Calls an admin may still act on: ringing (not yet routed) or in progress.
ACTIONABLE_STATUSES = (SipCallStatus.INCOMING, SipCallStatus.ACCEPTED)
SAMPLE_MAX_LENGTH = 512


# --- routes ----------------------------------------------------------------------------


class SampleCallForm(forms.Form):
    """The sample call of the "Which route matches?" page."""

    from_value = forms.CharField(
        label=_("From"),
        max_length=SAMPLE_MAX_LENGTH,
        required=False,
        help_text=_('e.g. +14155550100 or "Alice" <sip:+14155550100@carrier.example>'),
    )
    to_value = forms.CharField(
        label=_("To"),
        max_length=SAMPLE_MAX_LENGTH,
        required=False,
        help_text=_("e.g. +14155550123 or sip:+14155550123@sip.api.openai.com"),
    )


def explain_match(from_value: str, to_value: str) -> routing.MatchReport:
    """The decision for a sample From / To, every step recorded (:func:`routing.explain`,
    the walk :func:`routing.decide` takes). Calls SIP_ROUTER with an unsaved SipCall,
    never OpenAI."""
    call = SipCall(
        call_id="rtc_admin_preview",
        webhook_id="admin_preview",
        from_header=from_value,
        to_header=to_value,
        sip_headers=[{"name": "From", "value": from_value}, {"name": "To", "value": to_value}],
    )
    event = {
        "type": "realtime.call.incoming",
        "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
    }
    return explain(call, event)


@admin.register(SipRoute)
class SipRouteAdmin(_RouteAdminBase):
    """SIP routes, first match by priority; validation lives in ``SipRoute.clean()``."""

    list_display = (
        "priority",
        "name",
        "is_active",
        "match_field",
        "match_type",
        "pattern",
        "action",
        "target",
    )
    list_display_links = ("name",)
    list_editable = ("priority", "is_active")
    list_filter = ("is_active", "action", "match_type")
    search_fields = ("name", "pattern", "target_uri")
    ordering = ("priority", "pk")
    list_select_related = ("preset",)
    fieldsets = (
        (None, {"fields": ("name", "priority", "is_active")}),
        (_("Match"), {"fields": ("match_field", "match_type", "pattern")}),
        (_("Action"), {"fields": ("action", "preset", "status_code", "target_uri")}),
    )

    @admin.display(description=_("does"))
    def target(self, obj: SipRoute) -> str:
        if obj.action == "accept":
            return f"{_('accept with')} {obj.preset.slug if obj.preset else '?'}"
        if obj.action == "refer":
            return f"{_('transfer to')} {obj.target_uri}"
        return f"{_('reject with')} {obj.status_code or DEFAULT_REJECT_STATUS}"

    def get_urls(self) -> list[URLPattern]:
        info = (self.opts.app_label, self.opts.model_name)
        custom = [
            path(
                "match/",
                self.admin_site.admin_view(self.match_view),
                name="{}_{}_match".format(*info),
            )
        ]
        return custom + super().get_urls()

    def match_view(self, request: HttpRequest) -> HttpResponse:
        """ "Which route matches?": the decision for a sample From / To, nothing sent."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = SampleCallForm(request.GET if request.GET else None)
        report = None
        if form.is_bound and form.is_valid():
            report = explain_match(form.cleaned_data["from_value"], form.cleaned_data["to_value"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Which route matches?"),
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/realtime_sip/sip_route_match.html", context)


# --- calls -----------------------------------------------------------------------------


class TransferForm(forms.Form):
    """The target of "Transfer…"."""

    target_uri = forms.CharField(
        label=_("Transfer to"),
        max_length=255,
        help_text=_("tel:+14155550123 or sip:agent@example.com"),
    )

    def clean_target_uri(self) -> str:
        value: str = self.cleaned_data["target_uri"].strip()
        message = validate_target_uri(value)
        if message:
            raise forms.ValidationError(message)
        return value


@admin.register(SipCall)
class SipCallAdmin(ReadOnlyAdminMixin, _CallAdminBase):
    """Read-only call log with "Hang up" and "Transfer…" actions."""

    list_display = (
        "created_at",
        "call_id",
        "from_header",
        "to_header",
        "status",
        "route",
        "preset",
    )
    list_filter = ("status", "created_at")
    search_fields = ("call_id", "from_header", "to_header")
    date_hierarchy = "created_at"
    list_select_related = ("route", "preset")
    ordering = ("-created_at", "-pk")
    actions = ("hangup", "transfer")

    def has_control_permission(self, request: HttpRequest) -> bool:
        """Acting on live calls needs the model's change permission."""
        perm = f"{self.opts.app_label}.change_{self.opts.model_name}"
        return bool(request.user.has_perm(perm))

    def _actionable(self, request: HttpRequest, queryset: QuerySet[SipCall]) -> list[SipCall]:
        calls = list(queryset)
        skipped = [c for c in calls if c.status not in ACTIONABLE_STATUSES]
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "Skipped %(count)d call that is no longer live: %(ids)s.",
                    "Skipped %(count)d calls that are no longer live: %(ids)s.",
                    len(skipped),
                )
                % {"count": len(skipped), "ids": ", ".join(c.call_id for c in skipped)},
                messages.WARNING,
            )
        return [c for c in calls if c.status in ACTIONABLE_STATUSES]

    def _report(
        self,
        request: HttpRequest,
        verb: str,
        results: list[call_actions.ActionResult],
        calls: list[SipCall],
    ) -> None:
        done = [c.call_id for c, r in zip(calls, results, strict=True) if r.ok]
        if done:
            self.message_user(
                request,
                _("%(verb)s: %(ids)s.") % {"verb": verb, "ids": ", ".join(done)},
                messages.SUCCESS,
            )
        for call, result in zip(calls, results, strict=True):
            if not result.ok:
                self.message_user(
                    request,
                    _("%(verb)s failed for %(id)s: %(error)s")
                    % {"verb": verb, "id": call.call_id, "error": _public_error(result)},
                    messages.ERROR,
                )

    @admin.action(description=_("Hang up selected calls"), permissions=["control"])
    def hangup(self, request: HttpRequest, queryset: QuerySet[SipCall]) -> None:
        calls = self._actionable(request, queryset)
        results = [call_actions.hangup(call, request=request) for call in calls]
        self._report(request, str(_("Hung up")), results, calls)

    @admin.action(description=_("Transfer selected calls…"), permissions=["control"])
    def transfer(self, request: HttpRequest, queryset: QuerySet[SipCall]) -> HttpResponse | None:
        form = TransferForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            calls = self._actionable(request, queryset)
            target = form.cleaned_data["target_uri"]
            results = [call_actions.refer(call, target, request=request) for call in calls]
            self._report(request, str(_("Transferred to %s") % target), results, calls)
            return None  # back to the changelist
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Transfer calls"),
            "form": form,
            "calls": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "transfer",
        }
        return TemplateResponse(request, "admin/realtime_sip/sip_call_transfer.html", context)


def _public_error(result: call_actions.ActionResult) -> str:
    """What the admin user sees: status and request id, never a secret (the message
    of an UpstreamError carries neither the key nor the request body)."""
    audit = result.audit
    parts = [audit.get_outcome_display()]
    if audit.upstream_status:
        parts.append(f"HTTP {audit.upstream_status}")
    if audit.error_code:
        parts.append(audit.error_code)
    if audit.upstream_request_id:
        parts.append(f"request id {audit.upstream_request_id}")
    return ", ".join(str(p) for p in parts)
