"""Deciding what to do with an incoming SIP call. Decides only: nothing here calls OpenAI.

Precedence (first answer wins):

1. ``DJANGO_REALTIME["SIP_ROUTER"]``: dotted path to ``router(call, event)`` (or
   ``router(call)``) returning a :class:`RouteDecision`, a :class:`SipRoute`, a dict
   shaped like ``SIP_DEFAULT_ACTION``, or ``None`` to fall through;
2. active :class:`~django_realtime.sip.models.SipRoute` rows by ascending priority
   (accept routes whose preset is inactive are skipped);
3. ``DJANGO_REALTIME["SIP_DEFAULT_ACTION"]`` (default: reject with 603 Decline).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from django_realtime.conf import conf
from django_realtime.exceptions import RealtimeConfigurationError
from django_realtime.models import SessionPreset

from .headers import MAX_VALUE_LENGTH, SipAddress, parse_address
from .models import SipCall, SipRoute
from .validators import DEFAULT_REJECT_STATUS, decision_error

__all__ = [
    "MatchReport",
    "RouteCheck",
    "RouteDecision",
    "call_addresses",
    "check_routes",
    "decide",
    "default_decision",
    "explain",
    "get_router",
    "matching_route",
    "route_matches",
    "router_decision",
    "usable_routes",
]

logger = logging.getLogger(__name__)

# Python's re has no timeout, so regex routes are kept cheap two ways: the input is
# capped (MAX_REGEX_INPUT; real numbers and URIs are far shorter) and validate_regex()
# refuses a repeated group whose body can itself match in several ways (a quantifier
# or an alternation inside: "(a+)+", "(\\d*)*", "(a|aa)*"), the shapes behind
# catastrophic backtracking.
MAX_REGEX_INPUT = 256


@dataclass(frozen=True)
class RouteDecision:
    """One decision: ``action`` plus what it needs, and where it came from (``source``)."""

    action: str
    preset: SessionPreset | None = None
    status_code: int | None = None
    target_uri: str = ""
    route: SipRoute | None = None
    source: str = "route"  #: "router", "route" or "default"

    def describe(self) -> str:
        """A short human sentence for logs, the admin helper and SipCall.status_detail."""
        if self.action == "accept":
            what = f"accept with preset {self.preset.slug if self.preset else '?'}"
        elif self.action == "refer":
            what = f"transfer to {self.target_uri}"
        else:
            what = f"reject with {self.status_code or DEFAULT_REJECT_STATUS}"
        origin = {
            "router": "SIP_ROUTER",
            "default": "SIP_DEFAULT_ACTION",
        }.get(self.source, f"route {self.route.name!r}" if self.route else "route")
        return f"{what} ({origin})"

    @classmethod
    def from_route(cls, route: SipRoute, *, source: str = "route") -> RouteDecision:
        return cls(
            action=route.action,
            preset=route.preset,
            status_code=route.status_code,
            target_uri=route.target_uri,
            route=route,
            source=source,
        )

    @classmethod
    def from_mapping(cls, value: dict[str, Any], *, source: str) -> RouteDecision:
        """``{"action": "reject", "status_code": 486}``, ``{"action": "refer",
        "target_uri": ...}`` or ``{"action": "accept", "preset": "slug" | SessionPreset}``."""
        problem = decision_error(value)
        if problem:
            raise RealtimeConfigurationError(f"A SIP {source} decision is malformed: {problem}")
        action = value["action"]
        preset = value.get("preset")
        if action == "accept" and not isinstance(preset, SessionPreset):
            preset = SessionPreset.objects.filter(slug=str(preset or ""), is_active=True).first()
            if preset is None:
                raise RealtimeConfigurationError(
                    f"A SIP {source} decision accepts with preset {value.get('preset')!r}, "
                    "which does not exist or is inactive."
                )
        return cls(
            action=action,
            preset=preset if action == "accept" else None,
            status_code=value.get("status_code") if action == "reject" else None,
            target_uri=str(value.get("target_uri") or "") if action == "refer" else "",
            source=source,
        )


def call_addresses(call: SipCall) -> tuple[SipAddress, SipAddress]:
    """The parsed (From, To) of a call."""
    return parse_address(call.from_header), parse_address(call.to_header)


# --- matching --------------------------------------------------------------------


def route_matches(route: SipRoute, from_addr: SipAddress, to_addr: SipAddress) -> bool:
    """Whether ``route``'s pattern matches the chosen header (number, user part or URI)."""
    if route.match_type == "any":
        return True
    address = to_addr if route.match_field == "to" else from_addr
    pattern = route.pattern.strip()
    if not pattern:
        return False
    return any(_matches(route.match_type, pattern, value) for value in address.candidates())


def _matches(match_type: str, pattern: str, value: str) -> bool:
    value = value[:MAX_VALUE_LENGTH]
    if match_type == "exact":
        return value.casefold() == pattern.casefold()
    if match_type == "glob":
        return fnmatch.fnmatchcase(value.casefold(), pattern.casefold())
    if match_type == "regex":
        try:
            return re.fullmatch(pattern, value[:MAX_REGEX_INPUT], flags=re.IGNORECASE) is not None
        except re.error:
            # A bad pattern saved around the admin's validation: never matches.
            logger.warning("SIP route pattern %r is not a valid regular expression.", pattern)
            return False
    return False


def matching_route(
    from_addr: SipAddress, to_addr: SipAddress, routes: Iterable[SipRoute] | None = None
) -> SipRoute | None:
    """The first active route (by priority) that matches, or ``None``."""
    for route in usable_routes() if routes is None else routes:
        if route_matches(route, from_addr, to_addr):
            return route
    return None


def usable_routes() -> Iterable[SipRoute]:
    """Active routes by priority, minus accept routes whose preset is missing or inactive."""
    qs = SipRoute.objects.filter(is_active=True).select_related("preset")
    for route in qs.order_by("priority", "pk"):
        if _can_act(route):  # an accept route without a usable preset falls through
            yield route


def _can_act(route: SipRoute) -> bool:
    """Whether ``route`` could act: an accept route needs an active preset."""
    return route.action != "accept" or (route.preset is not None and route.preset.is_active)


@dataclass
class RouteCheck:
    """One route's verdict on a call: the step of the walk that :func:`decide` takes."""

    route: SipRoute
    matched: bool
    note: str = ""


def check_routes(from_addr: SipAddress, to_addr: SipAddress) -> Iterator[RouteCheck]:
    """Every route by priority with its verdict; the first ``matched`` one decides.

    :func:`decide` stops at that one; the admin's "Which route matches?" page
    (:func:`explain`) walks on to show every other route's verdict.
    """
    decided = False
    for route in SipRoute.objects.select_related("preset").order_by("priority", "pk"):
        if not route.is_active:
            yield RouteCheck(route, False, str(_("inactive")))
        elif not _can_act(route):
            # An accept route without a usable preset cannot act: fall through.
            yield RouteCheck(route, False, str(_("skipped: preset inactive")))
        elif not route_matches(route, from_addr, to_addr):
            yield RouteCheck(route, False)
        elif decided:
            yield RouteCheck(route, False, str(_("matches, but a route above wins")))
        else:
            decided = True
            yield RouteCheck(route, True, str(_("first match")))


# --- the decision ----------------------------------------------------------------


def decide(call: SipCall, event: dict[str, Any] | None = None) -> RouteDecision:
    """The decision for ``call``: SIP_ROUTER, then routes, then SIP_DEFAULT_ACTION."""
    decision = router_decision(call, event)
    if decision is not None:
        return decision
    from_addr, to_addr = call_addresses(call)
    for check in check_routes(from_addr, to_addr):
        if check.matched:
            return RouteDecision.from_route(check.route)
    return default_decision()


def default_decision() -> RouteDecision:
    """``SIP_DEFAULT_ACTION`` as a decision (reject 603 when it is unusable)."""
    try:
        decision = RouteDecision.from_mapping(conf.SIP_DEFAULT_ACTION, source="default")
    except RealtimeConfigurationError:
        logger.exception("SIP_DEFAULT_ACTION is unusable; rejecting the call with 603.")
        return RouteDecision("reject", status_code=DEFAULT_REJECT_STATUS, source="default")
    if decision.action == "reject" and decision.status_code is None:
        decision = RouteDecision("reject", status_code=DEFAULT_REJECT_STATUS, source="default")
    return decision


def get_router() -> Callable[..., Any] | None:
    """The ``SIP_ROUTER`` callable, or ``None``; raises naming the setting if unimportable."""
    path = conf.SIP_ROUTER
    if not path:
        return None
    try:
        router = import_string(path)
    except ImportError as err:
        raise RealtimeConfigurationError(
            f"DJANGO_REALTIME['SIP_ROUTER'] = {path!r} cannot be imported."
        ) from err
    if not callable(router):
        raise RealtimeConfigurationError(
            f"DJANGO_REALTIME['SIP_ROUTER'] = {path!r} is not callable."
        )
    return router  # type: ignore[no-any-return]


def router_decision(call: SipCall, event: dict[str, Any] | None) -> RouteDecision | None:
    """What ``SIP_ROUTER`` decides for ``call`` (``None``: no router, or it fell through)."""
    router = get_router()
    if router is None:
        return None
    result = router(call, event) if _takes_event(router) else router(call)
    if result is None:
        return None
    if isinstance(result, RouteDecision):
        return dataclasses.replace(result, source="router")
    if isinstance(result, SipRoute):
        return RouteDecision.from_route(result, source="router")
    if isinstance(result, dict):
        return RouteDecision.from_mapping(result, source="router")
    raise RealtimeConfigurationError(
        f"DJANGO_REALTIME['SIP_ROUTER'] returned {type(result).__name__}; expected a "
        "RouteDecision, a SipRoute, a dict or None."
    )


def _takes_event(router: Callable[..., Any]) -> bool:
    """Whether ``router`` accepts ``(call, event)``; otherwise it must accept ``(call)``."""
    try:
        signature = inspect.signature(router)
    except (TypeError, ValueError):  # no introspectable signature: assume the documented one
        return True
    try:
        signature.bind(None, None)
        return True
    except TypeError:
        pass
    try:
        signature.bind(None)
    except TypeError as err:
        raise RealtimeConfigurationError(
            "DJANGO_REALTIME['SIP_ROUTER'] must accept (call, event) or (call)."
        ) from err
    return False


# --- explaining (the admin's "Which route matches?") ----------------------------


@dataclass
class MatchReport:
    """Every step of the decision for one call, as :func:`decide` takes them."""

    from_addr: SipAddress
    to_addr: SipAddress
    router_path: str | None = None
    router_decision: RouteDecision | None = None
    router_error: str = ""
    checks: list[RouteCheck] = field(default_factory=list)
    matched_route: SipRoute | None = None
    decision: RouteDecision | None = None
    decision_error: str = ""


def explain(call: SipCall, event: dict[str, Any] | None = None) -> MatchReport:
    """Walk the decision for ``call`` as :func:`decide` does, recording every step.

    Calls ``SIP_ROUTER`` (user code: its failure is reported, not raised), never OpenAI.
    """
    from_addr, to_addr = call_addresses(call)
    report = MatchReport(from_addr, to_addr, router_path=conf.SIP_ROUTER)
    try:
        report.router_decision = router_decision(call, event)
    except Exception as err:
        report.router_error = f"{type(err).__name__}: {err}"
    report.checks = list(check_routes(from_addr, to_addr))
    report.matched_route = next((c.route for c in report.checks if c.matched), None)
    if report.router_error:
        report.decision_error = str(
            _("SIP_ROUTER failed: a real call would get a 500 and OpenAI would redeliver.")
        )
    elif report.router_decision is not None:
        report.decision = report.router_decision
    elif report.matched_route is not None:
        report.decision = RouteDecision.from_route(report.matched_route)
    else:
        try:
            report.decision = default_decision()
        except RealtimeConfigurationError as err:
            report.decision_error = str(err)
    return report
