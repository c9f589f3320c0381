"""Hostile input: what a black-box probe sent, and what each request must get.

One test (or one parametrised family) per defect of the probe: forged webhooks under
``DEBUG = True``, deeply nested JSON, trailing newlines, NUL bytes and lone
surrogates, unusable upstream answers, errors of another shape, ``no-store`` on
errors, audit rows of a signed-in user's malformed request, a cache outage and the
CSV formula guard. Every one failed before its fix.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory, override_settings

import django_realtime
from django_realtime.admin.logs import _csv_safe
from django_realtime.models import AuditLogEntry, SessionPreset
from tests.api_helpers import assert_error, only_audit_row
from tests.conftest import OFFER_SDP, CheckedAPIClient, Upstream
from tests.sip_helpers import SECRET, signed_headers, webhook_url

MINT = "/realtime/client-secrets/"
CALLS = "/realtime/calls/"
PRESETS = "/realtime/presets/"

pytestmark = pytest.mark.django_db


def mint(api: CheckedAPIClient, body: Any, **extra: Any) -> Any:
    return api.post(MINT, body, format="json", **extra)


def raw_mint(api: CheckedAPIClient, content: bytes | str, **extra: Any) -> Any:
    return api.generic("POST", MINT, content, content_type="application/json", **extra)


# --- 1. forged webhooks never see a technical page -------------------------------------


FORGERIES: dict[str, Callable[[bytes], dict[str, str]]] = {
    "bad signature": lambda body: {
        **signed_headers(body),
        "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    },
    "stale timestamp": lambda body: signed_headers(body, timestamp=1_000_000_000),
    "missing header": lambda body: {
        k: v for k, v in signed_headers(body).items() if k != "webhook-signature"
    },
    "malformed length": lambda body: {**signed_headers(body), "CONTENT_LENGTH": "abc"},
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
@override_settings(DEBUG=True)
def test_forged_webhook_gets_plain_json_400_without_secret_even_with_debug(
    forgery: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps({"type": "realtime.call.incoming", "data": {}}).encode()
    headers = FORGERIES[forgery](body)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    if "HTTP_CONTENT_LENGTH" in extra:
        extra["CONTENT_LENGTH"] = extra.pop("HTTP_CONTENT_LENGTH")
    with caplog.at_level(logging.WARNING, logger="django.security"):
        response = Client(raise_request_exception=False).post(
            webhook_url(), body, content_type="application/json", **extra
        )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json().keys() == {"detail", "code"}
    assert response.json()["code"] == "webhook_refused"
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert "whsec_" not in text
    assert SECRET not in text
    assert "Traceback" not in text
    assert any(r.name.startswith("django.security") for r in caplog.records)
    assert not AuditLogEntry.objects.exists()


@override_settings(DEBUG=False)
def test_error_report_of_a_failure_inside_webhook_verification_shows_no_secret() -> None:
    """The error report Django mails to ADMINS (``DEBUG = False``: a technical page is
    never served then, but ``mail_admins`` sends its text and HTML) for an exception
    raised mid-verification, once the secrets are decoded into keys (a text body where
    bytes belong breaks the HMAC step), shows the frames and their harmless variables,
    never the secret nor its key."""
    from django.views.debug import ExceptionReporter

    from django_realtime import signing, webhooks

    body = json.dumps({"type": "realtime.call.incoming", "data": {}})
    headers = signed_headers(body.encode(), msg_id="wh_visible_id")
    with pytest.raises(TypeError) as caught:
        webhooks.verified_body(body, headers, None, None)  # type: ignore[arg-type]
    request = RequestFactory().post(webhook_url(), body, content_type="application/json")
    reporter = ExceptionReporter(request, caught.type, caught.value, caught.tb)
    key = signing._key(SECRET)
    frames = {frame["function"]: dict(frame["vars"]) for frame in reporter.get_traceback_frames()}
    # The frames that hold the secrets are in the report, with their harmless variables.
    assert "wh_visible_id" in frames["verify"]["msg_id"]
    assert "wh_visible_id" in frames["_signature"]["msg_id"]
    hidden = reporter.filter.cleansed_substitute
    assert frames["verify"]["secrets"] == hidden
    assert frames["verify"]["keys"] == hidden
    assert frames["_signature"]["key"] == hidden
    assert set(frames["verified_body"].values()) == {hidden}
    for report in (reporter.get_traceback_text(), reporter.get_traceback_html()):
        assert "can&#x27;t concat" in report or "can't concat" in report
        for secret_form in (SECRET, SECRET.removeprefix("whsec_"), repr(key)):
            assert secret_form not in report
        assert "whsec_" not in report


# --- 2. depth and size budget ------------------------------------------------------------


@pytest.mark.parametrize("where", ["overrides", "preset", "top"])
def test_deeply_nested_json_is_400_invalid(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream, where: str
) -> None:
    deep = "[" * 5000 + "]" * 5000
    body = {
        "overrides": f'{{"preset": "assistant", "overrides": {{"x": {deep}}}}}',
        "preset": f'{{"preset": {deep}}}',
        "top": deep,
    }[where]
    response = raw_mint(api_client, body)
    assert_error(response, 400, "invalid")
    assert upstream.calls == 0
    row = only_audit_row()
    assert row.outcome == "invalid"
    assert row.username == "alice"


def test_nesting_just_past_the_budget_is_refused_before_validation(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    deep = "{" + '"a":{' * 40 + "}" * 41
    response = raw_mint(api_client, f'{{"preset": "assistant", "overrides": {deep}}}')
    assert_error(response, 400, "invalid")
    assert "deep" in response.json()["detail"]


def test_relay_overrides_query_is_held_to_the_same_budget(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    deep = "[" * 3000 + "]" * 3000
    response = api_client.generic(
        "POST",
        f"{CALLS}?preset=assistant&overrides={deep}",
        OFFER_SDP,
        content_type="application/sdp",
    )
    assert_error(response, 400, "invalid")
    assert upstream.calls == 0


def test_three_megabyte_body_is_our_json_413(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    big = json.dumps({"preset": "assistant", "overrides": {"instructions": "x" * 3_000_000}})
    response = raw_mint(api_client, big)
    assert_error(response, 413, "too_large")
    assert upstream.calls == 0
    assert only_audit_row().username == "alice"


def test_three_megabyte_form_body_is_our_json_413(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    response = api_client.generic(
        "POST", MINT, "a=" + "x" * 3_000_000, content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 413, "too_large")
    assert upstream.calls == 0


# --- 3. whole-string patterns --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("voice", "voice_abc\n"),
        ("transcription_language", "en\n"),
    ],
)
def test_trailing_newline_is_refused(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    upstream: Upstream,
    field: str,
    value: str,
) -> None:
    make_preset(
        "open",
        transcription_model="gpt-4o-mini-transcribe",
        allowed_overrides=["voice", "transcription_language"],
    )
    response = mint(api_client, {"preset": "open", "overrides": {field: value}})
    assert_error(response, 400, "invalid_override")
    assert upstream.calls == 0


def test_no_pattern_in_the_package_is_dollar_anchored() -> None:
    """``$`` matches before a final newline: every pattern uses ``\\Z`` or ``fullmatch``."""
    root = Path(django_realtime.__file__).parent  # the code under test, wherever installed
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.func.attr in {"compile", "match", "search", "sub", "fullmatch"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and re.search(r"(?<!\\)\$", node.args[0].value)
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


# --- 4. NUL bytes and lone surrogates ------------------------------------------------------

HOSTILE_TEXT = ["a\u0000b", "\u0000", "\ud800", "ok\udfff"]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
@pytest.mark.parametrize("field", ["instructions", "transcription_prompt"])
def test_nul_and_lone_surrogate_in_overrides_are_400_with_a_row(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    upstream: Upstream,
    field: str,
    text: str,
) -> None:
    make_preset(
        "open",
        transcription_model="gpt-4o-mini-transcribe",
        allowed_overrides=["instructions", "transcription_prompt"],
    )
    body = json.dumps({"preset": "open", "overrides": {field: text}})  # \u escapes
    response = raw_mint(api_client, body)
    assert_error(response, 400, "invalid")
    assert upstream.calls == 0
    row = only_audit_row()
    assert row.outcome == "invalid"
    assert row.username == "alice"


@pytest.mark.parametrize("slug", ["a%00b", "%00", "assistant%0A", "a%ED%A0%80"])
def test_hostile_preset_in_the_relay_query_is_400_with_a_row(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream, slug: str
) -> None:
    response = api_client.generic(
        "POST", f"{CALLS}?preset={slug}", OFFER_SDP, content_type="application/sdp"
    )
    assert_error(response, 400, "invalid")
    assert upstream.calls == 0
    row = only_audit_row()
    assert "\x00" not in row.preset_slug


def test_nul_in_the_sdp_offer_is_refused(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    offer = OFFER_SDP.replace("s=-", "s=\x00")
    response = api_client.generic(
        "POST", f"{CALLS}?preset=assistant", offer, content_type="application/sdp"
    )
    assert_error(response, 400, "invalid")
    assert upstream.calls == 0


def test_audit_row_never_stores_nul_or_surrogates(api_client: CheckedAPIClient) -> None:
    response = api_client.post(
        MINT, {"preset": "x"}, format="json", HTTP_USER_AGENT="agent\x00\udcff"
    )
    assert response.status_code == 404
    assert only_audit_row().user_agent == "agent"


# --- 5. unusable upstream answers -----------------------------------------------------------


@pytest.mark.parametrize("expires_at", ["1e400", "NaN", "1e20", "-1e15", "1000", "true", "-1"])
def test_unusable_expiry_is_502_with_a_row(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
    expires_at: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = f'{{"value": "ek_unusable", "expires_at": {expires_at}, "session": {{}}}}'
    upstream.queue(httpx.Response(200, content=raw.encode()))
    response = mint(api_client, {"preset": "assistant"})
    assert_error(response, 502, "upstream_error")
    assert b"ek_unusable" not in response.content
    row = only_audit_row()
    assert row.outcome == "upstream_error"
    assert row.secret_fingerprint == ""
    assert any("expires_at" in r.getMessage() for r in caplog.records)


# --- 6. every answer is {detail, code} in JSON ----------------------------------------------


@pytest.mark.parametrize(
    ("query", "accept"),
    [("?format=api", "*/*"), ("", "text/html"), ("?format=xml", "*/*"), ("?format=json", "x/y")],
)
def test_negotiation_is_pinned_to_json(
    api_client: CheckedAPIClient, preset: SessionPreset, query: str, accept: str
) -> None:
    response = api_client.get(PRESETS + query, HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()[0]["slug"] == "assistant"
    anon = Client()
    refused = anon.post(MINT + query, {}, HTTP_ACCEPT=accept)
    assert refused["Content-Type"] == "application/json"
    assert refused.json().keys() == {"detail", "code"}


def test_malformed_json_is_invalid_not_parse_error(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    response = raw_mint(api_client, b'{"preset": ')
    assert_error(response, 400, "invalid")
    assert only_audit_row().username == "alice"


def test_an_unexpected_error_is_json_500_no_store(
    api_client: CheckedAPIClient, preset: SessionPreset, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_realtime import gate

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(gate.payloads, "build_client_secret_request", boom)
    api_client.raise_request_exception = False
    response = mint(api_client, {"preset": "assistant"})
    assert_error(response, 500, "error")
    assert only_audit_row().outcome == "error"


# --- 8. a signed-in user's malformed request names the user ----------------------------------


def test_unsupported_media_type_is_audited_with_the_user(
    api_client: CheckedAPIClient, preset: SessionPreset
) -> None:
    response = api_client.generic("POST", MINT, b"<x/>", content_type="application/xml")
    assert_error(response, 415, "unsupported_media_type")
    assert only_audit_row().username == "alice"


# --- 10. cache outage -----------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cache_outage_is_503_unavailable_and_nothing_upstream(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        "OPTIONS": {"socket_connect_timeout": 0.2},
    }
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES={**caches, "ratelimit": broken}, RATELIMIT_USE_CACHE="ratelimit"):
        response = mint(api_client, {"preset": "assistant"})
    assert_error(response, 503, "unavailable")
    assert upstream.calls == 0
    assert only_audit_row().outcome == "unavailable"
    assert any("cache" in r.getMessage().lower() for r in caplog.records if r.levelno >= 40)


# --- 13. CSV formula guard --------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        " =1+1",
        "\t=cmd",
        "\n=x",
        "  +1",
        "\uff1dHYPERLINK()",
        "\uff0b1",
        "\uff0d1",
        "\uff20SUM",
        " \uff20x",
        "-1",
    ],
)
def test_csv_guard_neutralises_hidden_formulas(cell: str) -> None:
    assert _csv_safe(cell).startswith("'")


def test_csv_guard_leaves_plain_text(user: User) -> None:
    assert _csv_safe("alice") == "alice"
    assert _csv_safe(None) == ""
