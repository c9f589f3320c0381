"""Deciding what to do with an incoming SIP call. Decides only: nothing here calls OpenAI.

Precedence (first answer wins):

1. ``DJANGO_REALTIME["SIP_ROUTER"]``: dotted path to ``router(call, event)`` (or
   ``router(call)``) returning a :class:`RouteDecision`, a :class:`SipRoute`, a dict
   shaped like ``SIP_DEFAULT_ACTION``, or ``None`` to fall through;
2. active :class:`~django_realtime.models.SipRoute` rows by ascending priority
   (accept routes whose preset is inactive are skipped);
3. ``DJANGO_REALTIME["SIP_DEFAULT_ACTION"]`` (default: reject with 603 Decline).
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from .conf import conf
from .exceptions import RealtimeConfigurationError
from .sip_headers import MAX_VALUE_LENGTH, SipAddress, parse_address

if TYPE_CHECKING:
    from .models import SessionPreset, SipCall, SipRoute

__all__ = [
    "DEFAULT_REJECT_STATUS",
    "RouteDecision",
    "call_addresses",
    "decide",
    "default_decision",
    "get_router",
    "matching_route",
    "route_errors",
    "route_matches",
    "router_decision",
    "usable_routes",
    "validate_regex",
    "validate_target_uri",
]

logger = logging.getLogger("django_realtime.sip")

DEFAULT_REJECT_STATUS = 603  # Decline: the API's own default
ACTIONS = ("accept", "reject", "refer")
TARGET_URI_RE = re.compile(r"(?:tel:\+?[0-9][0-9().\-]{0,31}|sips?:[^\s<>\"]{1,250})")

# Python's re has no timeout, so regex routes are kept cheap two ways: the input is
# capped (MAX_REGEX_INPUT; real numbers and URIs are far shorter) and validate_regex()
# refuses a repeated group whose body can itself match in several ways (a quantifier
# or an alternation inside: "(a+)+", "(\\d*)*", "(a|aa)*"), the shapes behind
# catastrophic backtracking.
MAX_REGEX_INPUT = 256
_REPEAT_AFTER_GROUP = ("*", "+", "{")


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
        from .models import SessionPreset

        action = value.get("action")
        if action not in ACTIONS:
            raise RealtimeConfigurationError(f"A SIP decision has an unknown action {action!r}.")
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
    from .models import SipRoute

    qs = SipRoute.objects.filter(is_active=True).select_related("preset")
    for route in qs.order_by("priority", "pk"):
        if route.action == "accept" and (route.preset is None or not route.preset.is_active):
            continue  # an accept route without a usable preset cannot act: fall through
        yield route


# --- the decision ----------------------------------------------------------------


def decide(call: SipCall, event: dict[str, Any] | None = None) -> RouteDecision:
    """The decision for ``call``: SIP_ROUTER, then routes, then SIP_DEFAULT_ACTION."""
    decision = router_decision(call, event)
    if decision is not None:
        return decision
    from_addr, to_addr = call_addresses(call)
    route = matching_route(from_addr, to_addr)
    if route is not None:
        return RouteDecision.from_route(route)
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
    from .models import SipRoute

    router = get_router()
    if router is None:
        return None
    result = router(call, event) if _takes_event(router) else router(call)
    if result is None:
        return None
    if isinstance(result, RouteDecision):
        return result if result.source == "router" else _with_source(result, "router")
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


def _with_source(decision: RouteDecision, source: str) -> RouteDecision:
    return RouteDecision(
        action=decision.action,
        preset=decision.preset,
        status_code=decision.status_code,
        target_uri=decision.target_uri,
        route=decision.route,
        source=source,
    )


# --- validation (used by SipRoute.clean and the admin forms) ---------------------


def validate_regex(pattern: str) -> str | None:
    """An error message if ``pattern`` is not a safe regular expression, else ``None``."""
    try:
        re.compile(pattern)
    except re.error as err:
        return f"Not a valid regular expression: {err}."
    if _has_ambiguous_repeat(pattern):
        return (
            "A repeated group that itself contains a repetition or an alternative, such as "
            "(a+)+ or (a|aa)*, can take exponential time on some inputs; rewrite it, e.g. "
            "with a character class."
        )
    return None


def _has_ambiguous_repeat(pattern: str) -> bool:
    """Whether a group followed by ``*``, ``+`` or ``{`` contains ``*``, ``+``, ``{`` or ``|``.

    A conservative scan of a pattern that already compiles: escapes and character
    classes are skipped; ``?`` after a group (zero or one) is allowed.
    """
    stack: list[bool] = []  # per open group: does its body repeat or alternate?
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _skip_class(pattern, i)
            continue
        if char == "(":
            stack.append(False)
        elif char == ")":
            risky = stack.pop() if stack else False
            following = pattern[i + 1 : i + 2]
            if risky and following in _REPEAT_AFTER_GROUP:
                return True
            if stack and (risky or following in _REPEAT_AFTER_GROUP):
                stack[-1] = True
        elif char in ("*", "+", "{", "|") and stack:
            stack[-1] = True
        i += 1
    return False


def _skip_class(pattern: str, start: int) -> int:
    """Index just past the character class opening at ``start``."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":  # a leading ] is literal
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i + 1
        i += 1
    return i


def validate_target_uri(value: str) -> str | None:
    """An error message unless ``value`` is a ``tel:`` or ``sip:``/``sips:`` URI."""
    if not TARGET_URI_RE.fullmatch(value or ""):
        return "Enter a tel: URI (tel:+14155550123) or a sip:/sips: URI (sip:agent@example.com)."
    return None


def route_errors(route: SipRoute) -> dict[str, str]:
    """Field -> message for a SipRoute that could not act; empty when it is sound.

    Used by ``SipRoute.clean()`` (hence by the admin form).
    """
    errors: dict[str, str] = {}
    if route.match_type != "any" and not route.pattern.strip():
        errors["pattern"] = "A pattern is required unless the route matches any call."
    elif route.match_type == "regex":
        message = validate_regex(route.pattern)
        if message:
            errors["pattern"] = message
    if route.action == "accept":
        preset = route.preset if route.preset_id else None
        if preset is None:
            errors["preset"] = "An accept route needs a preset."
        elif preset.session_type != "realtime":
            errors["preset"] = (
                "A transcription preset cannot answer a call: choose a realtime preset."
            )
    elif route.action == "refer":
        message = validate_target_uri(route.target_uri)
        if message:
            errors["target_uri"] = message
    return errors
