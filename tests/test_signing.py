"""``django_realtime.signing``: Standard Webhooks verify/sign, pure functions."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as ReferenceError_

from django_realtime import signing
from django_realtime.exceptions import WebhookVerificationError

# The verified test vector (openai-python tests/lib/test_webhooks.py, reference §4.4).
VECTOR_SECRET = "whsec_RdvaYFYUXuIFuEbvZHwMfYFhUf7aMYjYcmM24+Aj40c="
VECTOR_ID = "wh_685c059ae39c8190af8c71ed1022a24d"
VECTOR_TS = 1750861210
VECTOR_BODY = (
    b'{"id": "evt_685c059ae3a481909bdc86819b066fb6", "object": "event", '
    b'"created_at": 1750861210, "type": "response.completed", "data": {"id": "resp_123"}}'
)
VECTOR_SIGNATURE = "v1,gUAg4R2hWouRZqRQG4uJypNS8YK885G838+EHb4nKBY="
OTHER_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def vector_headers(**changes: str) -> dict[str, str]:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    headers.update(changes)
    return headers


def verify(body: bytes = VECTOR_BODY, headers: dict[str, str] | None = None, **kw: object) -> None:
    kw.setdefault("secrets", [VECTOR_SECRET])
    kw.setdefault("tolerance", 300)
    kw.setdefault("now", VECTOR_TS)
    signing.verify(body, vector_headers() if headers is None else headers, **kw)  # type: ignore[arg-type]


# --- the reference vector -----------------------------------------------------------


def test_reference_vector_verifies() -> None:
    verify()


def test_sign_reproduces_the_reference_vector() -> None:
    assert signing.sign(
        VECTOR_BODY, secret=VECTOR_SECRET, msg_id=VECTOR_ID, timestamp=VECTOR_TS
    ) == (vector_headers())


def test_header_names_are_case_insensitive() -> None:
    verify(headers={k.title(): v for k, v in vector_headers().items()})
    verify(headers={k.upper(): v for k, v in vector_headers().items()})


# --- cross-checks with the standardwebhooks reference implementation ---------------


@pytest.mark.parametrize("secret", [VECTOR_SECRET, OTHER_SECRET])
def test_we_accept_what_standardwebhooks_signs(secret: str) -> None:
    now = int(time.time())
    body = b'{"type": "realtime.call.incoming", "data": {"call_id": "rtc_x"}}'
    signature = Webhook(secret).sign(
        "msg_ref", datetime.fromtimestamp(now, tz=timezone.utc), body.decode()
    )
    headers = {
        "webhook-id": "msg_ref",
        "webhook-timestamp": str(now),
        "webhook-signature": signature,
    }
    signing.verify(body, headers, [secret], tolerance=300)


@pytest.mark.parametrize("secret", [VECTOR_SECRET, OTHER_SECRET])
def test_standardwebhooks_accepts_what_we_sign(secret: str) -> None:
    body = b'{"type": "response.completed", "data": {"id": "resp_1"}}'
    headers = signing.sign(body, secret=secret, msg_id="msg_ours", timestamp=int(time.time()))
    assert Webhook(secret).verify(body, headers) == {
        "type": "response.completed",
        "data": {"id": "resp_1"},
    }


def test_standardwebhooks_refuses_what_we_sign_with_another_secret() -> None:
    body = b"{}"
    headers = signing.sign(body, secret=OTHER_SECRET, msg_id="msg_x", timestamp=int(time.time()))
    with pytest.raises(ReferenceError_):
        Webhook(VECTOR_SECRET).verify(body, headers)


# --- tampering ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "changes"),
    [
        pytest.param(VECTOR_BODY.replace(b"resp_123", b"resp_124"), {}, id="body"),
        pytest.param(VECTOR_BODY + b" ", {}, id="body-whitespace"),
        pytest.param(VECTOR_BODY, {"webhook-id": VECTOR_ID + "x"}, id="id"),
        pytest.param(VECTOR_BODY, {"webhook-timestamp": str(VECTOR_TS + 1)}, id="timestamp"),
        pytest.param(
            VECTOR_BODY,
            {"webhook-signature": "v1,gUAg4R2hWouRZqRQG4uJypNS8YK885G838+EHb4nKBZ="},
            id="signature",
        ),
        pytest.param(VECTOR_BODY, {"webhook-signature": VECTOR_SIGNATURE[3:]}, id="no-version"),
        pytest.param(
            VECTOR_BODY,
            {"webhook-signature": "v1a," + VECTOR_SIGNATURE[3:]},
            id="asymmetric-version",
        ),
        pytest.param(VECTOR_BODY, {"webhook-signature": "v1,"}, id="empty-signature"),
        pytest.param(VECTOR_BODY, {"webhook-signature": "v1,!!!not base64!!!"}, id="garbage"),
    ],
)
def test_tampering_is_refused(body: bytes, changes: dict[str, str]) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(body, vector_headers(**changes))


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(secrets=[OTHER_SECRET])


# --- timestamps ---------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_inside_the_tolerance_pass(offset: int) -> None:
    verify(now=VECTOR_TS - offset)


@pytest.mark.parametrize(
    ("now", "reason"), [(VECTOR_TS + 301, "too old"), (VECTOR_TS - 301, "in the future")]
)
def test_stale_and_future_timestamps_are_refused(now: int, reason: str) -> None:
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(now=now)


def test_tolerance_is_the_callers() -> None:
    verify(now=VECTOR_TS + 3600, tolerance=3600)
    with pytest.raises(WebhookVerificationError):
        verify(now=VECTOR_TS + 11, tolerance=10)


def test_default_clock_is_now() -> None:
    with pytest.raises(WebhookVerificationError, match="too old"):
        signing.verify(VECTOR_BODY, vector_headers(), [VECTOR_SECRET], tolerance=300)


@pytest.mark.parametrize(
    "value", ["", " ", "12.5", "+1750861210", "1_750_861_210", "abc", "1" * 13]
)
def test_malformed_timestamps_are_refused(value: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(headers=vector_headers(**{"webhook-timestamp": value}))


# --- several signatures, rotation ------------------------------------------------------


def test_any_v1_entry_of_a_multi_signature_header_may_match() -> None:
    wrong = "v1," + base64.b64encode(b"x" * 32).decode()
    for header in (
        f"{wrong} {VECTOR_SIGNATURE}",
        f"{VECTOR_SIGNATURE} {wrong}",
        f"v1a,{VECTOR_SIGNATURE[3:]}  {wrong}\t{VECTOR_SIGNATURE}",
    ):
        verify(headers=vector_headers(**{"webhook-signature": header}))


def test_rotation_any_configured_secret_may_match() -> None:
    verify(secrets=[OTHER_SECRET, VECTOR_SECRET])
    verify(secrets=[VECTOR_SECRET, OTHER_SECRET])


def test_rotation_sender_signing_with_both_secrets() -> None:
    old = signing.sign(VECTOR_BODY, secret=VECTOR_SECRET, msg_id="m", timestamp=VECTOR_TS)
    new = signing.sign(VECTOR_BODY, secret=OTHER_SECRET, msg_id="m", timestamp=VECTOR_TS)
    both = {**old, "webhook-signature": f"{new['webhook-signature']} {old['webhook-signature']}"}
    for secrets in ([VECTOR_SECRET], [OTHER_SECRET]):
        signing.verify(VECTOR_BODY, both, secrets, tolerance=300, now=VECTOR_TS)


def test_too_many_signatures_are_refused() -> None:
    header = " ".join([VECTOR_SIGNATURE] * (signing.MAX_SIGNATURES + 1))
    with pytest.raises(WebhookVerificationError, match="too many"):
        verify(headers=vector_headers(**{"webhook-signature": header}))


# --- missing headers, secrets -----------------------------------------------------------


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(name: str) -> None:
    headers = vector_headers()
    del headers[name]
    with pytest.raises(WebhookVerificationError, match=f"{name} header is missing"):
        verify(headers=headers)


@pytest.mark.parametrize("msg_id", ["wh 1", "x" * 129, "wh\n1"])
def test_malformed_ids_are_refused(msg_id: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(headers=vector_headers(**{"webhook-id": msg_id}))


def test_no_secret_configured_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="no webhook secret"):
        verify(secrets=[])


@pytest.mark.parametrize("secret", ["whsec_***not-base64***", "whsec_", "whsec_===="])
def test_malformed_secret_is_refused_without_echoing_it(secret: str) -> None:
    with pytest.raises(WebhookVerificationError) as info:
        verify(secrets=[secret])
    if secret[6:]:
        assert secret[6:] not in str(info.value)


def test_unpadded_secret_is_accepted_like_the_reference() -> None:
    verify(secrets=[VECTOR_SECRET.rstrip("=")])


def test_reasons_never_contain_the_secret_or_key() -> None:
    key_b64 = VECTOR_SECRET[6:]
    cases = [
        {"secrets": [VECTOR_SECRET], "now": VECTOR_TS + 1000},
        {"secrets": [OTHER_SECRET]},
        {"secrets": ["whsec_" + key_b64[:-2] + "!!"]},
    ]
    for kw in cases:
        with pytest.raises(WebhookVerificationError) as info:
            verify(**kw)  # type: ignore[arg-type]
        for secret in kw["secrets"]:  # type: ignore[attr-defined]
            assert secret not in str(info.value)
            assert secret[6:16] not in str(info.value)


def test_verification_error_is_a_suspicious_operation() -> None:
    from django.core.exceptions import SuspiciousOperation

    assert issubclass(WebhookVerificationError, SuspiciousOperation)
