"""Standard Webhooks signatures, as OpenAI sends them: verify and sign (pure).

The scheme (https://www.standardwebhooks.com/, specification at
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):

* headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
  ``webhook-signature``, a space-separated list of ``v1,<base64>`` entries (several
  during a secret rotation; other versions such as ``v1a,`` are ignored here);
* the signature is ``base64(HMAC-SHA256(key, "{id}.{timestamp}.{raw body}"))``, the
  key being the base64-decoded part of the ``whsec_...`` secret after the prefix.

Nothing here reads settings, touches the database or logs: the caller passes the
secrets and the tolerance. Functions handling key material are marked with
:func:`~django.views.decorators.debug.sensitive_variables` so that Django's error
reports (for instance the ``mail_admins`` e-mail for a ``django.security`` error)
never show a secret in a traceback frame.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence

from django.views.decorators.debug import sensitive_variables

from .exceptions import WebhookVerificationError

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "is_valid_secret",
    "sign",
    "verify",
]

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"

#: Caps on attacker-controlled header sizes: generous for real deliveries (one
#: signature per active secret), small enough that parsing costs nothing.
MAX_ID_LENGTH = 128  # also the width of WebhookEvent.webhook_id
MAX_SIGNATURE_HEADER_LENGTH = 4096
MAX_SIGNATURES = 16

# Digits only: int() would also accept " 12", "+12" and "1_2", which a signer never sends.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
# The id is part of the signed content and later a database key: printable ASCII, no spaces.
_ID_RE = re.compile(r"[\x21-\x7e]+")


def _header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive lookup that works for Django's ``request.headers`` and plain dicts."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                value = candidate
                break
    if value is None or value == "":
        raise WebhookVerificationError(f"Webhook refused: the {name} header is missing.")
    return str(value)


@sensitive_variables("secret", "encoded", "key")
def _key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; a bare base64 secret is accepted too."""
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    encoded = encoded.strip().rstrip("=")
    try:
        # Padding is optional, as in the Standard Webhooks libraries (``standardwebhooks``).
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        # Never include the secret (nor a slice of it) in the message.
        raise WebhookVerificationError(
            "Webhook refused: a configured webhook secret is not whsec_ + base64."
        ) from err
    if not key:
        raise WebhookVerificationError("Webhook refused: a configured webhook secret is empty.")
    return key


@sensitive_variables("secret")
def is_valid_secret(secret: object) -> bool:
    """Whether ``secret`` can verify deliveries: the one rule, used by :func:`verify` and
    the ``django_realtime.E006`` system check. ``whsec_`` + base64 (padding optional)
    or bare base64, decoding to at least one byte."""
    if not isinstance(secret, str):
        return False
    try:
        _key(secret)
    except WebhookVerificationError:
        return False
    return True


@sensitive_variables("key")
def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def _candidates(header: str) -> list[str]:
    """The ``v1`` signatures of a ``webhook-signature`` header, other versions ignored."""
    if len(header) > MAX_SIGNATURE_HEADER_LENGTH:
        raise WebhookVerificationError("Webhook refused: the webhook-signature header is too long.")
    entries = header.split()
    if len(entries) > MAX_SIGNATURES:
        raise WebhookVerificationError("Webhook refused: too many webhook signatures.")
    found = []
    for entry in entries:
        version, sep, value = entry.partition(",")
        if sep and version == SIGNATURE_VERSION and value:
            found.append(value)
    if not found:
        raise WebhookVerificationError("Webhook refused: no v1 signature in webhook-signature.")
    return found


@sensitive_variables("secrets", "secret", "keys", "key", "expected")
def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Check a delivery's Standard Webhooks signature over its **raw** body.

    ``headers`` is any mapping (``request.headers`` or a dict; names are matched
    case-insensitively). The delivery is accepted when any ``v1`` signature of the
    header matches any of ``secrets`` (so a secret can be rotated without downtime)
    and its timestamp is within ``tolerance`` seconds of ``now`` (default: the clock),
    in either direction. Raises :class:`WebhookVerificationError` with the reason
    otherwise; the reason never contains a secret.
    """
    if not secrets:
        raise WebhookVerificationError("Webhook refused: no webhook secret is configured.")
    msg_id = _header(headers, HEADER_ID)
    timestamp = _header(headers, HEADER_TIMESTAMP).strip()
    signature_header = _header(headers, HEADER_SIGNATURE)
    if len(msg_id) > MAX_ID_LENGTH or not _ID_RE.fullmatch(msg_id):
        raise WebhookVerificationError("Webhook refused: malformed webhook-id.")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise WebhookVerificationError("Webhook refused: malformed webhook-timestamp.")
    current = time.time() if now is None else now
    sent_at = int(timestamp)
    if current - sent_at > tolerance:
        raise WebhookVerificationError("Webhook refused: the timestamp is too old.")
    if sent_at - current > tolerance:
        raise WebhookVerificationError("Webhook refused: the timestamp is in the future.")
    candidates = _candidates(signature_header)
    keys = [_key(secret) for secret in secrets]
    matched = False
    for key in keys:
        expected = _signature(key, msg_id, timestamp, body).encode("ascii")
        for candidate in candidates:
            # compare_digest on every pair, no early exit: the time taken does not
            # depend on which entry (if any) matched.
            matched |= hmac.compare_digest(expected, candidate.encode("ascii", "replace"))
    if not matched:
        raise WebhookVerificationError("Webhook refused: no signature matches.")


@sensitive_variables("secret", "key")
def sign(body: bytes, *, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """The three headers a sender would attach to ``body``; for tests of your own site.

    >>> sign(b"{}", secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", msg_id="msg_1",
    ...      timestamp=1700000000)["webhook-signature"].startswith("v1,")
    True
    """
    key = _key(secret)
    stamp = str(int(timestamp))
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: stamp,
        HEADER_SIGNATURE: f"{SIGNATURE_VERSION},{_signature(key, msg_id, stamp, body)}",
    }
