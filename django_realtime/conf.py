"""Typed, read-through view of ``settings.DJANGO_REALTIME``.

Every attribute is read from Django's settings at access time, so
``override_settings`` and the pytest-django ``settings`` fixture work without any
reload hook. Nothing here is evaluated at import.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

from .exceptions import RealtimeConfigurationError

SETTINGS_NAME = "DJANGO_REALTIME"

#: Every key ``DJANGO_REALTIME`` may hold, with its default. Unknown keys are a
#: system-check error (django_realtime.E001), to catch typos.
DEFAULTS: dict[str, Any] = {
    "API_KEY": None,  # falls back to the OPENAI_API_KEY environment variable
    "API_BASE": "https://api.openai.com/v1",
    "AUTH_STYLE": "bearer",  # or "api-key" (Azure)
    "ORGANIZATION": None,
    "PROJECT": None,
    "CONNECT_URL": None,  # default: {API_BASE}/realtime/calls
    "TIMEOUT": 10.0,  # seconds, per attempt
    "CONNECT_TIMEOUT": 5.0,
    "MAX_RETRIES": 2,
    "RETRY_AFTER_CAP": 60.0,  # longest Retry-After we sleep for before giving up
    "RATE": "10/m",
    "DEFAULT_PRESET": None,
    "WEBHOOK_SECRETS": [],
    "WEBHOOK_TOLERANCE": 300,
    "WEBHOOK_MAX_BYTES": 256 * 1024,
    "SDP_MAX_BYTES": 64 * 1024,
    "AUDIT_CLIENT_IP": True,
    "AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "SIP_ROUTER": None,  # dotted path to a callable(call) -> RouteDecision | None
    "SIP_DEFAULT_ACTION": {"action": "reject", "status_code": 603},
}

VALID_AUTH_STYLES = ("bearer", "api-key")


class RealtimeSettings:
    """Attribute access to ``DJANGO_REALTIME`` with defaults, read on every access."""

    def _raw(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, {})
        return value if isinstance(value, dict) else {}

    def _get(self, name: str) -> Any:
        return self._raw().get(name, DEFAULTS[name])

    # --- upstream ---------------------------------------------------------
    @property
    def API_KEY(self) -> str:
        """The server's OpenAI key; raises (naming the setting) when absent."""
        value = self._get("API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not value:
            raise RealtimeConfigurationError(
                f"No OpenAI API key: set {SETTINGS_NAME}['API_KEY'] in your Django "
                "settings or the OPENAI_API_KEY environment variable."
            )
        return str(value)

    @property
    def has_api_key(self) -> bool:
        return bool(self._get("API_KEY") or os.environ.get("OPENAI_API_KEY"))

    @property
    def API_BASE(self) -> str:
        return str(self._get("API_BASE")).rstrip("/")

    @property
    def AUTH_STYLE(self) -> str:
        return str(self._get("AUTH_STYLE"))

    @property
    def ORGANIZATION(self) -> str | None:
        return self._get("ORGANIZATION") or None

    @property
    def PROJECT(self) -> str | None:
        return self._get("PROJECT") or None

    @property
    def CONNECT_URL(self) -> str:
        return str(self._get("CONNECT_URL") or f"{self.API_BASE}/realtime/calls")

    @property
    def TIMEOUT(self) -> float:
        return float(self._get("TIMEOUT"))

    @property
    def CONNECT_TIMEOUT(self) -> float:
        return float(self._get("CONNECT_TIMEOUT"))

    @property
    def MAX_RETRIES(self) -> int:
        return int(self._get("MAX_RETRIES"))

    @property
    def RETRY_AFTER_CAP(self) -> float:
        return float(self._get("RETRY_AFTER_CAP"))

    # --- minting ----------------------------------------------------------
    @property
    def RATE(self) -> str:
        return str(self._get("RATE"))

    @property
    def DEFAULT_PRESET(self) -> str | None:
        return self._get("DEFAULT_PRESET") or None

    @property
    def SDP_MAX_BYTES(self) -> int:
        return int(self._get("SDP_MAX_BYTES"))

    @property
    def AUDIT_CLIENT_IP(self) -> bool:
        return bool(self._get("AUDIT_CLIENT_IP"))

    @property
    def AUTHENTICATION_CLASSES(self) -> list[str]:
        return list(self._get("AUTHENTICATION_CLASSES"))

    @property
    def PERMISSION_CLASSES(self) -> list[str]:
        return list(self._get("PERMISSION_CLASSES"))

    # --- webhooks / SIP ---------------------------------------------------
    @property
    def WEBHOOK_SECRETS(self) -> list[str]:
        value = self._get("WEBHOOK_SECRETS")
        if isinstance(value, str):  # tolerate a single secret
            return [value] if value else []
        return [str(v) for v in value or []]

    @property
    def WEBHOOK_TOLERANCE(self) -> int:
        return int(self._get("WEBHOOK_TOLERANCE"))

    @property
    def WEBHOOK_MAX_BYTES(self) -> int:
        return int(self._get("WEBHOOK_MAX_BYTES"))

    @property
    def SIP_ROUTER(self) -> str | None:
        return self._get("SIP_ROUTER") or None

    @property
    def SIP_DEFAULT_ACTION(self) -> dict[str, Any]:
        return dict(self._get("SIP_DEFAULT_ACTION"))


conf = RealtimeSettings()
