"""System checks for ``DJANGO_REALTIME``. Ids are stable; never reuse a retired one.

E001 unknown key · E002 wrong type · E003 bad RATE · E004 a preset's TTL is out of
10..7200 (database check) · E005 bad AUTH_STYLE · E006 malformed webhook
secret · E007 bad SIP_DEFAULT_ACTION · E008 API_BASE is not an http(s) URL ·
E009 unimportable class path · W001 no webhook secret configured · W002 API_BASE is
plain http to a non-loopback host · W003 a preset has a malformed rate.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, router
from django.utils.module_loading import import_string

from .conf import DEFAULTS, SETTINGS_NAME, VALID_AUTH_STYLES
from .throttling import is_valid_rate

ID = "django_realtime."

_TYPES: dict[str, tuple[type, ...]] = {
    "API_KEY": (str, type(None)),
    "API_BASE": (str,),
    "AUTH_STYLE": (str,),
    "ORGANIZATION": (str, type(None)),
    "PROJECT": (str, type(None)),
    "CONNECT_URL": (str, type(None)),
    "TIMEOUT": (int, float),
    "CONNECT_TIMEOUT": (int, float),
    "MAX_RETRIES": (int,),
    "RETRY_AFTER_CAP": (int, float),
    "RATE": (str,),
    "DEFAULT_PRESET": (str, type(None)),
    "WEBHOOK_SECRETS": (list, tuple, str),
    "WEBHOOK_TOLERANCE": (int,),
    "WEBHOOK_MAX_BYTES": (int,),
    "SDP_MAX_BYTES": (int,),
    "AUDIT_CLIENT_IP": (bool,),
    "AUTHENTICATION_CLASSES": (list, tuple),
    "PERMISSION_CLASSES": (list, tuple),
    "SIP_ROUTER": (str, type(None)),
    "SIP_DEFAULT_ACTION": (dict,),
}


def _setting(name: str) -> str:
    return f"{SETTINGS_NAME}[{name!r}]"


@register(Tags.compatibility)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    raw = getattr(settings, SETTINGS_NAME, {})
    if not isinstance(raw, dict):
        return [Error(f"{SETTINGS_NAME} must be a dict.", id=f"{ID}E002")]
    errors: list[CheckMessage] = []
    for key in sorted(set(raw) - set(DEFAULTS)):
        errors.append(
            Error(
                f"Unknown key {key!r} in {SETTINGS_NAME}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id=f"{ID}E001",
            )
        )
    wrong_type: set[str] = set()
    for key, types in _TYPES.items():
        if key in raw and (
            not isinstance(raw[key], types) or (isinstance(raw[key], bool) and bool not in types)
        ):
            wrong_type.add(key)
            errors.append(
                Error(
                    f"{_setting(key)} has the wrong type ({type(raw[key]).__name__}).",
                    id=f"{ID}E002",
                )
            )
    # A wrong-typed value is reported once (E002), not again by the checks below.
    merged = {**DEFAULTS, **{k: v for k, v in raw.items() if k not in wrong_type}}
    if isinstance(merged["RATE"], str) and not is_valid_rate(merged["RATE"]):
        errors.append(
            Error(
                f"{_setting('RATE')} = {merged['RATE']!r} is not a rate.",
                hint='Use django-ratelimit syntax such as "10/m" or "100/h".',
                id=f"{ID}E003",
            )
        )
    if merged["AUTH_STYLE"] not in VALID_AUTH_STYLES:
        errors.append(
            Error(
                f"{_setting('AUTH_STYLE')} must be one of {', '.join(VALID_AUTH_STYLES)}.",
                id=f"{ID}E005",
            )
        )
    errors.extend(_check_webhook_secrets(merged["WEBHOOK_SECRETS"]))
    errors.extend(_check_default_action(merged["SIP_DEFAULT_ACTION"]))
    errors.extend(_check_urls(merged))
    errors.extend(_check_imports(merged))
    return errors


def _check_webhook_secrets(value: Any) -> list[CheckMessage]:
    secrets = [value] if isinstance(value, str) else list(value or [])
    if not secrets:
        return [
            Warning(
                f"{_setting('WEBHOOK_SECRETS')} is empty: the OpenAI webhook endpoint "
                "refuses every delivery.",
                hint="Add the whsec_... signing secret of your OpenAI project webhook.",
                id=f"{ID}W001",
            )
        ]
    errors: list[CheckMessage] = []
    for index, secret in enumerate(secrets):
        ok = isinstance(secret, str) and secret.startswith("whsec_")
        if ok:
            try:
                ok = bool(base64.b64decode(secret[6:], validate=True))
            except (binascii.Error, ValueError):
                ok = False
        if not ok:
            errors.append(
                Error(
                    f"{_setting('WEBHOOK_SECRETS')}[{index}] is not a whsec_... secret "
                    "(whsec_ followed by base64).",
                    id=f"{ID}E006",
                )
            )
    return errors


def _check_default_action(value: Any) -> list[CheckMessage]:
    action = value.get("action") if isinstance(value, dict) else None
    ok = action in ("reject", "refer", "accept")
    if action == "reject":
        code = value.get("status_code", 603)
        ok = isinstance(code, int) and 400 <= code <= 699
    elif action == "refer":
        ok = str(value.get("target_uri", "")).startswith(("tel:", "sip:", "sips:"))
    elif action == "accept":
        ok = bool(value.get("preset"))
    if ok:
        return []
    return [
        Error(
            f"{_setting('SIP_DEFAULT_ACTION')} is malformed.",
            hint='e.g. {"action": "reject", "status_code": 603}, {"action": "refer", '
            '"target_uri": "tel:+1..."} or {"action": "accept", "preset": "slug"}.',
            id=f"{ID}E007",
        )
    ]


def _check_urls(merged: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key in ("API_BASE", "CONNECT_URL"):
        value = merged[key]
        if value is None:
            continue
        parts = urlsplit(str(value))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append(Error(f"{_setting(key)} is not an http(s) URL.", id=f"{ID}E008"))
        elif parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            errors.append(
                Warning(
                    f"{_setting(key)} uses plain http to {parts.hostname}: the API key "
                    "would cross the network unencrypted.",
                    id=f"{ID}W002",
                )
            )
    return errors


def _check_imports(merged: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    paths = [*merged["AUTHENTICATION_CLASSES"], *merged["PERMISSION_CLASSES"]]
    if merged["SIP_ROUTER"]:
        paths.append(merged["SIP_ROUTER"])
    for path in paths:
        try:
            import_string(str(path))
        except (ImportError, ValueError):  # ValueError: ".x" has an empty module name
            errors.append(
                Error(f"Cannot import {path!r} named in {SETTINGS_NAME}.", id=f"{ID}E009")
            )
    return errors


@register(Tags.database)
def check_preset_rates(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Database check (``manage.py check --database default``): preset rates and TTLs."""
    from .models import SessionPreset
    from .sessions import TTL_MAX, TTL_MIN

    # Like Django's own database checks: touch only the databases we were given
    # (none on a plain ``manage.py check``).
    alias = router.db_for_read(SessionPreset)
    if not databases or alias not in databases:
        return []
    try:
        presets = list(SessionPreset.objects.using(alias).only("slug", "rate", "ttl_seconds"))
    except DatabaseError:  # not migrated yet
        return []
    messages: list[CheckMessage] = []
    for preset in presets:
        if preset.rate and not is_valid_rate(preset.rate):
            messages.append(
                Warning(f"Preset {preset.slug!r} has a malformed rate.", id=f"{ID}W003")
            )
        if not TTL_MIN <= preset.ttl_seconds <= TTL_MAX:
            messages.append(
                Error(
                    f"Preset {preset.slug!r} has a secret lifetime of {preset.ttl_seconds} s; "
                    f"the API accepts {TTL_MIN}..{TTL_MAX}.",
                    id=f"{ID}E004",
                )
            )
    return messages
