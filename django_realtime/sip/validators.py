"""What a SIP route, a transfer target and a SIP decision must be (pure).

One place for each rule, used by :meth:`SipRoute.clean` (hence the admin form),
the admin's transfer form, the ``SIP_DEFAULT_ACTION`` system check and
:class:`~django_realtime.sip.routing.RouteDecision`. Nothing here imports a model.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

__all__ = [
    "ACTIONS",
    "DEFAULT_REJECT_STATUS",
    "decision_error",
    "route_errors",
    "validate_regex",
    "validate_status_code",
    "validate_target_uri",
]

DEFAULT_REJECT_STATUS = 603  # Decline: the API's own default
ACTIONS = ("accept", "reject", "refer")
#: SIP final responses a call may be rejected with (4xx-6xx).
STATUS_MIN, STATUS_MAX = 400, 699
TARGET_URI_RE = re.compile(r"(?:tel:\+?[0-9][0-9().\-]{0,31}|sips?:[^\s<>\"]{1,250})")
_REPEAT_AFTER_GROUP = ("*", "+", "{")


class RouteLike(Protocol):
    """What :func:`route_errors` reads from a :class:`~django_realtime.sip.models.SipRoute`."""

    match_type: str
    pattern: str
    action: str
    target_uri: str
    status_code: int | None

    @property
    def preset_session_type(self) -> str | None: ...


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


def validate_status_code(value: Any) -> str | None:
    """An error message unless ``value`` is a SIP status a call may be rejected with."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (STATUS_MIN <= value <= STATUS_MAX)
    ):
        return f"A SIP status must be an integer from {STATUS_MIN} to {STATUS_MAX}."
    return None


def decision_error(value: Any) -> str | None:
    """An error message unless ``value`` is a decision mapping, as ``SIP_DEFAULT_ACTION``
    or a ``SIP_ROUTER`` dict: ``{"action": "reject", "status_code": 486}``,
    ``{"action": "refer", "target_uri": ...}`` or ``{"action": "accept", "preset": slug}``.
    Whether the preset exists is checked where the database is (routing)."""
    action = value.get("action") if isinstance(value, dict) else None
    if action not in ACTIONS:
        return f"Unknown SIP action {action!r}: use one of {', '.join(ACTIONS)}."
    if action == "reject" and value.get("status_code") is not None:
        return validate_status_code(value["status_code"])
    if action == "refer":
        return validate_target_uri(str(value.get("target_uri") or ""))
    if action == "accept" and not value.get("preset"):
        return "An accept decision needs a preset."
    return None


def route_errors(route: RouteLike) -> dict[str, str]:
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
        session_type = route.preset_session_type
        if session_type is None:
            errors["preset"] = "An accept route needs a preset."
        elif session_type != "realtime":
            errors["preset"] = (
                "A transcription preset cannot answer a call: choose a realtime preset."
            )
    elif route.action == "refer":
        message = validate_target_uri(route.target_uri)
        if message:
            errors["target_uri"] = message
    return errors
