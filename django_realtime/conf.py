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
    "ANONYMOUS_RATE": "20/m",  # anonymous / failed-auth attempts per client address
    "DEFAULT_PRESET": None,
    "WEBHOOK_SECRETS": [],
    "WEBHOOK_TOLERANCE": 300,
    "WEBHOOK_MAX_BYTES": 256 * 1024,
    # Longest an upstream call (with retries) may take; None: derived from TIMEOUT,
    # MAX_RETRIES and RETRY_AFTER_CAP. Webhook claims and pending audit rows expire after it.
    "PROCESSING_TIMEOUT": None,
    "SDP_MAX_BYTES": 64 * 1024,
    "AUDIT_CLIENT_IP": True,
    "AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "SIP_ROUTER": None,  # dotted path to a callable(call) -> RouteDecision | None
    "SIP_DEFAULT_ACTION": {"action": "reject", "status_code": 603},
    # --- call control (control/) ---
    "SIDEBAND_URL": None,  # default: API_BASE with ws(s)://, then /realtime
    "PRICES": {},  # {model: {rate: "USD per 1M tokens"}} merged over control/pricing.py
    "CONTROL_LEASE_SECONDS": 15,  # a worker's hold on a call, renewed by heartbeat
    "CONTROL_POLL_SECONDS": 0.25,  # how often workers look for new calls and end requests
    "CONTROL_MAX_CALLS_PER_WORKER": 1000,
    # --- server tools, quotas, transcripts (tools/, quotas.py, control/transcripts.py) ---
    "TOOL_TIMEOUT": 10.0,  # seconds a server tool may run before the model hears "timeout"
    "TRANSCRIPT_RETENTION_DAYS": 30,  # realtime_prune's default age for transcript lines
    "QUOTA_WARNING_SECONDS": 30,  # how long before the daily budget runs out the call is warned
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
    def SIDEBAND_URL(self) -> str | None:
        """The sideband endpoint without its ``?call_id=``; ``None``: derived from API_BASE."""
        value = self._get("SIDEBAND_URL")
        return str(value).rstrip("/") if value else None

    @property
    def PRICES(self) -> dict[str, Any]:
        value = self._get("PRICES")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def CONTROL_LEASE_SECONDS(self) -> float:
        return float(self._get("CONTROL_LEASE_SECONDS"))

    @property
    def CONTROL_POLL_SECONDS(self) -> float:
        return float(self._get("CONTROL_POLL_SECONDS"))

    @property
    def CONTROL_MAX_CALLS_PER_WORKER(self) -> int:
        return int(self._get("CONTROL_MAX_CALLS_PER_WORKER"))

    @property
    def TOOL_TIMEOUT(self) -> float:
        return float(self._get("TOOL_TIMEOUT"))

    @property
    def TRANSCRIPT_RETENTION_DAYS(self) -> int | None:
        value = self._get("TRANSCRIPT_RETENTION_DAYS")
        return None if value is None else int(value)

    @property
    def QUOTA_WARNING_SECONDS(self) -> float:
        return float(self._get("QUOTA_WARNING_SECONDS"))

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
    def ANONYMOUS_RATE(self) -> str:
        return str(self._get("ANONYMOUS_RATE"))

    @property
    def PROCESSING_TIMEOUT(self) -> float:
        """Seconds after which an unfinished attempt (a webhook claim, a pending audit
        row) is presumed dead: the setting, or the worst case of one upstream call."""
        value = self._get("PROCESSING_TIMEOUT")
        if value is not None:
            return float(value)
        return self.upstream_worst_case

    @property
    def upstream_worst_case(self) -> float:
        """Seconds one upstream call may take: every attempt timing out, and each retry
        waiting the longest ``Retry-After`` we honour; plus a minute for the rest."""
        retries = max(0, self.MAX_RETRIES)
        return self.TIMEOUT * (retries + 1) + self.RETRY_AFTER_CAP * retries + 60.0

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
