"""Where and how a sideband attaches: its URL, its auth headers, client event JSON.

Pure functions of the settings (read at use time); :mod:`.sideband` does the talking.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from .. import __version__
from ..conf import SETTINGS_NAME, conf
from ..exceptions import RealtimeConfigurationError, SessionConfigError, SidebandError

USER_AGENT = f"django-openai-realtime/{__version__} (sideband)"
CALL_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
SESSION_TYPES = ("realtime", "transcription")


def sideband_url(call_id: str) -> str:
    """The sideband URL of ``call_id``: ``SIDEBAND_URL``, or ``API_BASE`` with
    ``http`` -> ``ws`` / ``https`` -> ``wss`` and ``/realtime`` appended."""
    if not CALL_ID_RE.fullmatch(call_id or ""):
        raise SidebandError("Refusing a malformed call id for the sideband.")
    base = conf.SIDEBAND_URL
    if base is None:
        parts = urlsplit(conf.API_BASE)
        scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
        if scheme is None:
            raise RealtimeConfigurationError(
                f"{SETTINGS_NAME}['API_BASE'] must be an http(s) URL to derive the sideband "
                f"URL from it; or set {SETTINGS_NAME}['SIDEBAND_URL']."
            )
        path = parts.path.rstrip("/") + "/realtime"
        base = urlunsplit((scheme, parts.netloc, path, "", ""))
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}call_id={quote(call_id, safe='')}"


def sideband_headers() -> dict[str, str]:
    """Authentication like the REST calls, with the server key; never an ``ek_`` secret."""
    key = conf.API_KEY  # raises RealtimeConfigurationError naming the setting
    if key.startswith("ek_"):
        raise RealtimeConfigurationError(
            f"{SETTINGS_NAME}['API_KEY'] is an ephemeral client secret (ek_...): the "
            "sideband needs the server's standard API key."
        )
    headers = {"User-Agent": USER_AGENT}
    if conf.AUTH_STYLE == "api-key":
        headers["api-key"] = key
    else:
        headers["Authorization"] = f"Bearer {key}"
    if conf.ORGANIZATION:
        headers["OpenAI-Organization"] = conf.ORGANIZATION
    if conf.PROJECT:
        headers["OpenAI-Project"] = conf.PROJECT
    return headers


def encode_event(event: Mapping[str, Any]) -> str:
    """A client event as JSON; a ``session.update`` must carry ``session.type``."""
    if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
        raise SessionConfigError("A client event is a JSON object with a 'type'.", field="type")
    if event["type"] == "session.update":
        session = event.get("session")
        if not isinstance(session, Mapping) or session.get("type") not in SESSION_TYPES:
            raise SessionConfigError(
                "session.update must carry session.type ('realtime' or 'transcription').",
                field="session.type",
            )
    return json.dumps(event, separators=(",", ":"))
