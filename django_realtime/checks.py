"""System checks for ``DJANGO_REALTIME``. Ids are stable; never reuse a retired one.

E007 (``SIP_DEFAULT_ACTION``) and the ``SIP_ROUTER`` part of E009 are the telephony
app's (:mod:`django_realtime.sip.checks`); they run when it is installed.

E001 unknown key · E002 wrong type · E003 bad RATE · E004 a preset's TTL is out of
10..7200 (database check) · E005 bad AUTH_STYLE · E006 malformed webhook
secret · E007 bad SIP_DEFAULT_ACTION · E008 API_BASE is not an http(s) URL ·
E009 unimportable class path · W001 no webhook secret configured · W002 API_BASE is
plain http to a non-loopback host · W003 a preset has a malformed rate ·
E014 SIDEBAND_URL is not a ws(s) URL · E015 malformed PRICES · W005 SIDEBAND_URL is
plain ws to a non-loopback host · E016 PROCESSING_TIMEOUT is not a positive number
or is shorter than one upstream call can take (E003 also covers ANONYMOUS_RATE) ·
E017 CONTROL_LEASE_SECONDS / CONTROL_POLL_SECONDS /
CONTROL_MAX_CALLS_PER_WORKER not positive · W006 CONTROL_POLL_SECONDS is not well under
the lease (a worker would lose its calls between two heartbeats).
Registered server tools are checked in ``tools/checks.py`` (ids listed there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import DEFAULTS, SETTINGS_NAME, VALID_AUTH_STYLES
from .rules import TTL_MAX, TTL_MIN
from .signing import is_valid_secret
from .throttling import is_valid_rate
from .tools.checks import check_tools
from .usage_checks import (  # noqa: F401  (issue 10: registered on import)
    check_server_tools,
    check_usage_settings,
    presets_to_check,
)

ID = "django_realtime."

register(Tags.compatibility)(check_tools)

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
    "ANONYMOUS_RATE": (str,),
    "PROCESSING_TIMEOUT": (int, float, type(None)),
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
    "SIDEBAND_URL": (str, type(None)),
    "PRICES": (dict,),
    "CONTROL_LEASE_SECONDS": (int, float),
    "CONTROL_POLL_SECONDS": (int, float),
    "CONTROL_MAX_CALLS_PER_WORKER": (int,),
}


def _check_processing_timeout(merged: dict[str, Any]) -> list[CheckMessage]:
    """E016: the lease on a webhook claim and a pending audit row must outlast one
    upstream call, or a redelivery would act while the first delivery still works."""
    value = merged["PROCESSING_TIMEOUT"]
    if value is None:
        return []
    try:
        retries = max(0, int(merged["MAX_RETRIES"]))
        floor = (
            float(merged["TIMEOUT"]) * (retries + 1) + float(merged["RETRY_AFTER_CAP"]) * retries
        )
    except (TypeError, ValueError):  # reported as E002 already
        return []
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        problem = "must be a positive number of seconds"
    elif value < floor:
        problem = f"is shorter than one upstream call can take ({floor:g} s)"
    else:
        return []
    return [
        Error(
            f"{setting_name('PROCESSING_TIMEOUT')} = {value!r} {problem}.",
            hint="Leave it None (derived from TIMEOUT, MAX_RETRIES and RETRY_AFTER_CAP) "
            "or give at least TIMEOUT x (MAX_RETRIES + 1) + RETRY_AFTER_CAP x MAX_RETRIES.",
            id=f"{ID}E016",
        )
    ]


def setting_name(name: str) -> str:
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
                    f"{setting_name(key)} has the wrong type ({type(raw[key]).__name__}).",
                    id=f"{ID}E002",
                )
            )
    # A wrong-typed value is reported once (E002), not again by the checks below.
    merged = {**DEFAULTS, **{k: v for k, v in raw.items() if k not in wrong_type}}
    for rate_key in ("RATE", "ANONYMOUS_RATE"):
        rate = merged[rate_key]
        if isinstance(rate, str) and not is_valid_rate(rate):
            errors.append(
                Error(
                    f"{setting_name(rate_key)} = {rate!r} is not a rate.",
                    hint='Use django-ratelimit syntax such as "10/m" or "100/h".',
                    id=f"{ID}E003",
                )
            )
    errors.extend(_check_processing_timeout(merged))
    if merged["AUTH_STYLE"] not in VALID_AUTH_STYLES:
        errors.append(
            Error(
                f"{setting_name('AUTH_STYLE')} must be one of {', '.join(VALID_AUTH_STYLES)}.",
                id=f"{ID}E005",
            )
        )
    errors.extend(_check_webhook_secrets(merged["WEBHOOK_SECRETS"]))
    errors.extend(_check_urls(merged))
    errors.extend(_check_imports(merged))
    errors.extend(_check_control(merged))  # call control: SIDEBAND_URL, PRICES
    errors.extend(_check_workers(merged))
    return errors


def _check_workers(merged: dict[str, Any]) -> list[CheckMessage]:
    names = ("CONTROL_LEASE_SECONDS", "CONTROL_POLL_SECONDS", "CONTROL_MAX_CALLS_PER_WORKER")
    bad = [name for name in names if not isinstance(merged[name], (int, float))]
    bad += [name for name in names if name not in bad and not merged[name] > 0]
    errors: list[CheckMessage] = [
        Error(f"{setting_name(name)} must be a positive number.", id=f"{ID}E017")
        for name in names
        if name in bad
    ]
    timing_ok = not {"CONTROL_LEASE_SECONDS", "CONTROL_POLL_SECONDS"} & set(bad)
    if timing_ok and merged["CONTROL_POLL_SECONDS"] * 3 > merged["CONTROL_LEASE_SECONDS"]:
        errors.append(
            Warning(
                f"{setting_name('CONTROL_POLL_SECONDS')} is more than a third of "
                f"{setting_name('CONTROL_LEASE_SECONDS')}: leases may lapse between "
                "heartbeats and calls hop between workers.",
                id=f"{ID}W006",
            )
        )
    return errors


def _check_control(merged: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if merged["SIDEBAND_URL"]:
        parts = urlsplit(str(merged["SIDEBAND_URL"]))
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            errors.append(
                Error(f"{setting_name('SIDEBAND_URL')} is not a ws(s) URL.", id=f"{ID}E014")
            )
        elif parts.scheme == "ws" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            errors.append(
                Warning(
                    f"{setting_name('SIDEBAND_URL')} uses plain ws to {parts.hostname}: the API "
                    "key would cross the network unencrypted.",
                    id=f"{ID}W005",
                )
            )
    from .control.prices import price_table
    from .exceptions import RealtimeConfigurationError

    try:
        price_table()
    except RealtimeConfigurationError as err:
        errors.append(Error(str(err), id=f"{ID}E015"))
    return errors


def _check_webhook_secrets(value: Any) -> list[CheckMessage]:
    secrets = [value] if isinstance(value, str) else list(value or [])
    if not secrets:
        return [
            Warning(
                f"{setting_name('WEBHOOK_SECRETS')} is empty: the OpenAI webhook endpoint "
                "refuses every delivery.",
                hint="Add the whsec_... signing secret of your OpenAI project webhook.",
                id=f"{ID}W001",
            )
        ]
    errors: list[CheckMessage] = []
    for index, secret in enumerate(secrets):
        if not is_valid_secret(secret):
            errors.append(
                Error(
                    f"{setting_name('WEBHOOK_SECRETS')}[{index}] is not a whsec_... secret "
                    "(whsec_ followed by base64; the padding may be left out).",
                    id=f"{ID}E006",
                )
            )
    return errors


def _check_urls(merged: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key in ("API_BASE", "CONNECT_URL"):
        value = merged[key]
        if value is None:
            continue
        parts = urlsplit(str(value))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append(Error(f"{setting_name(key)} is not an http(s) URL.", id=f"{ID}E008"))
        elif parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            errors.append(
                Warning(
                    f"{setting_name(key)} uses plain http to {parts.hostname}: the API key "
                    "would cross the network unencrypted.",
                    id=f"{ID}W002",
                )
            )
    return errors


def _check_imports(merged: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for path in [*merged["AUTHENTICATION_CLASSES"], *merged["PERMISSION_CLASSES"]]:
        errors.extend(check_import(path))
    return errors


def check_import(path: Any) -> list[CheckMessage]:
    """E009 unless ``path`` (a dotted path named in the settings) imports."""
    try:
        import_string(str(path))
    except (ImportError, ValueError):  # ValueError: ".x" has an empty module name
        return [Error(f"Cannot import {path!r} named in {SETTINGS_NAME}.", id=f"{ID}E009")]
    return []


@register(Tags.database)
def check_preset_rates(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Database check (``manage.py check --database default``): preset rates and TTLs."""
    messages: list[CheckMessage] = []
    for preset in presets_to_check(databases, "slug", "rate", "ttl_seconds"):
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
