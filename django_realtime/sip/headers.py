"""Defensive parsing of the SIP headers carried by ``realtime.call.incoming``.

The headers come from the caller's INVITE, relayed by OpenAI: they are untrusted
input. Everything here is pure, bounded (counts and lengths are capped before any
work) and never raises on malformed data; it returns what it could make sense of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = [
    "MAX_HEADERS",
    "MAX_NAME_LENGTH",
    "MAX_VALUE_LENGTH",
    "SipAddress",
    "get_header",
    "normalise_headers",
    "parse_address",
]

MAX_HEADERS = 64
MAX_NAME_LENGTH = 64
#: Longer than any sane From/To; also bounds the input any route regex sees.
MAX_VALUE_LENGTH = 512

#: RFC 3261 §7.3.3 compact forms of the headers routing looks at.
_COMPACT = {"f": "from", "t": "to", "i": "call-id", "m": "contact"}

_URI_SCHEMES = ("sips:", "sip:", "tel:")
_NUMBER_RE = re.compile(r"\+?[0-9][0-9().\- ]*")
_NUMBER_NOISE = re.compile(r"[().\- ]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_headers(raw: Any) -> list[dict[str, str]]:
    """``data.sip_headers`` as a clean list of ``{"name", "value"}`` (capped, strings only).

    Anything that is not a list of objects with string ``name`` and ``value`` is
    dropped; control characters are removed; names and values are truncated.
    """
    if not isinstance(raw, list):
        return []
    result: list[dict[str, str]] = []
    for item in raw[:MAX_HEADERS]:
        if not isinstance(item, dict):
            continue
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        name = _CONTROL.sub("", name).strip()[:MAX_NAME_LENGTH]
        if name:
            result.append({"name": name, "value": _CONTROL.sub("", value)[:MAX_VALUE_LENGTH]})
    return result


def get_header(headers: list[dict[str, str]], name: str) -> str:
    """The first value of header ``name`` (case-insensitive, compact forms too), or ``""``."""
    wanted = name.lower()
    for header in headers:
        got = header["name"].lower()
        if _COMPACT.get(got, got) == wanted:
            return header["value"].strip()
    return ""


@dataclass(frozen=True)
class SipAddress:
    """What routing needs from a ``From`` / ``To`` value.

    ``uri`` is the address without header parameters (``sip:+1415...@host;user=phone``),
    ``bare_uri`` drops URI parameters too (``sip:+1415...@host``), ``user`` is the user
    part (``+1415...``, percent-decoded) and ``number`` the user part with visual
    separators removed when it looks like a phone number, else ``""``.
    """

    raw: str = ""
    display_name: str = ""
    uri: str = ""
    bare_uri: str = ""
    user: str = ""
    host: str = ""
    number: str = ""

    def candidates(self) -> list[str]:
        """The strings a route pattern is compared with, most specific last, no duplicates."""
        seen: list[str] = []
        for value in (self.number, self.user, self.bare_uri, self.uri):
            if value and value not in seen:
                seen.append(value)
        return seen


def parse_address(value: str) -> SipAddress:
    """Parse ``"Name" <sip:+14155550123@host;user=phone>;tag=abc`` and its simpler forms."""
    raw = (value or "")[:MAX_VALUE_LENGTH].strip()
    if not raw:
        return SipAddress()
    display, rest = _split_display_name(raw)
    if "<" in rest:
        start = rest.index("<") + 1
        end = rest.find(">", start)
        uri = rest[start : end if end != -1 else len(rest)].strip()
    else:
        # addr-spec without brackets: ";..." after it are header params (tag=...).
        uri = rest.split(";", 1)[0].strip()
    lowered = uri.lower()
    scheme = next((s for s in _URI_SCHEMES if lowered.startswith(s)), "")
    if not scheme:
        # Not a URI we know: treat the whole thing as a user part (a bare number).
        user = unquote(uri.split(";", 1)[0]).strip()
        return SipAddress(raw=raw, display_name=display, user=user, number=_number(user))
    body = uri[len(scheme) :]
    before_params = body.split(";", 1)[0]
    if scheme == "tel:":
        user, host = unquote(before_params).strip(), ""
    elif "@" in before_params:
        userinfo, host = before_params.rsplit("@", 1)
        user = unquote(userinfo.split(":", 1)[0])  # drop a (deprecated) password
    else:
        user, host = "", before_params
    host = host.split("?", 1)[0].strip().lower()
    bare = f"{scheme}{user}@{host}" if user and host else f"{scheme}{user or host}"
    return SipAddress(
        raw=raw,
        display_name=display,
        uri=uri,
        bare_uri=bare,
        user=user,
        host=host,
        number=_number(user),
    )


def _split_display_name(value: str) -> tuple[str, str]:
    """Split off a display name, quoted (may contain ``<`` or escaped quotes) or not."""
    if value.startswith('"'):
        i, escaped = 1, False
        while i < len(value):
            char = value[i]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                return value[1:i].replace('\\"', '"'), value[i + 1 :]
            i += 1
        return value[1:], ""  # unterminated quote: nothing usable after it
    if "<" in value:
        head, _, tail = value.partition("<")
        return head.strip(), "<" + tail
    return "", value


def _number(user: str) -> str:
    if not _NUMBER_RE.fullmatch(user):
        return ""
    number = _NUMBER_NOISE.sub("", user)
    return number if any(c.isdigit() for c in number) else ""
