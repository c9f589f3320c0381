"""Request bodies (pure): the declared ``Content-Length``, the JSON budget, text hygiene."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "JSON_MAX_BYTES",
    "JSON_MAX_DEPTH",
    "BodyRefused",
    "check_text",
    "clean_text",
    "declared_length",
    "load_json",
    "nesting_depth",
    "unsafe_text",
]


def declared_length(meta: Mapping[str, Any]) -> int | None:
    """The body size a request declares (``None``: none declared, e.g. chunked).

    Raises ``ValueError`` for a malformed or negative value, so each caller decides
    what such a request gets (the webhook refuses it, the SDP view reads what came).
    """
    raw = meta.get("CONTENT_LENGTH")
    text = "" if raw is None else str(raw).strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"malformed Content-Length {text[:20]!r}")
    return int(text)


# --- JSON budget and text hygiene ----------------------------------------------------

#: Largest JSON body (or JSON query value) the API endpoints read. A mint body is a
#: slug and a few overrides (instructions at most 4,000 characters): 64 KiB is ample.
JSON_MAX_BYTES = 64 * 1024
#: Deepest nesting of arrays and objects accepted. A mint body needs 3 levels; Python's
#: json decoder recurses per level and raises ``RecursionError`` near 1,000.
JSON_MAX_DEPTH = 16

_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


class BodyRefused(ValueError):
    """A body outside the budget (``too_large`` True: over the byte size)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def nesting_depth(raw: bytes) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, brackets inside strings ignored.

    Stops counting (and returns) as soon as ``JSON_MAX_DEPTH`` is passed, so a
    hostile body costs one pass at most.
    """
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > JSON_MAX_DEPTH:
                    return deepest
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


def load_json(raw: bytes | str) -> Any:
    """Parse a JSON text within the size and depth budget; refuse unsafe text.

    Raises :class:`BodyRefused` (size, depth, not JSON, NaN/Infinity, a NUL byte or
    a lone surrogate anywhere, keys included), before anything validates it.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > JSON_MAX_BYTES:
        raise BodyRefused(f"The body is larger than {JSON_MAX_BYTES} bytes.", too_large=True)
    if nesting_depth(data) > JSON_MAX_DEPTH:
        raise BodyRefused(f"The JSON is nested too deep (more than {JSON_MAX_DEPTH} levels).")
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:
        raise BodyRefused("The body is not valid JSON.") from err
    check_text(value)
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def unsafe_text(text: str) -> bool:
    """Whether ``text`` holds a NUL byte or a lone surrogate (neither can be stored in
    PostgreSQL nor encoded as UTF-8 for the upstream request)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_text(value: Any) -> None:
    """Raise :class:`BodyRefused` if any string in ``value`` (keys too) is unsafe."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if unsafe_text(item):
                raise BodyRefused("Text may not contain NUL bytes or lone surrogates.")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def clean_text(text: str) -> str:
    """``text`` without NUL bytes and lone surrogates: for free text we only record."""
    if not unsafe_text(text):
        return text
    return text.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")
