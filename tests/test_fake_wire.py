"""The fake's wire helpers: headers looked up case-insensitively, API paths with or
without a prefix, credentials redacted to a prefix, and JSON / multipart bodies refused
the way the API refuses them."""

from __future__ import annotations

import pytest

from django_realtime.testing.errors import APIError
from django_realtime.testing.wire import (
    FakeResponse,
    parse_json,
    parse_multipart,
    redact,
    route_path,
)


def test_a_response_header_is_found_whatever_its_case() -> None:
    response = FakeResponse(200, [("Content-Type", "application/sdp"), ("X-A", "1")])
    assert response.header("content-type") == "application/sdp"
    assert response.header("x-a") == "1"
    assert response.header("location") is None


@pytest.mark.parametrize(
    ("path", "routed"),
    [
        ("/v1/realtime/calls", "/realtime/calls"),
        ("/openai/v1/realtime/client_secrets", "/realtime/client_secrets"),
        ("/_fake/stats", "/_fake/stats"),
    ],
)
def test_paths_are_routed_without_their_prefix(path: str, routed: str) -> None:
    assert route_path(path) == routed


def test_a_credential_is_cut_to_a_short_prefix() -> None:
    key = "sk-proj-" + "x" * 40
    assert redact(f"Bearer {key}").startswith("Bearer sk-")
    assert key not in redact(f"Bearer {key}")
    assert redact("ek_abcd") == "ek_…"  # never more than half of a short token
    assert "x" * 10 not in redact(key)


def test_json_bodies_empty_required_or_malformed() -> None:
    assert parse_json(b"  ", required=False) is None
    assert parse_json(b'{"a": 1}', required=True) == {"a": 1}
    for body in (b"", b"{not json", b"\xff\xfe"):
        with pytest.raises(APIError) as refused:
            parse_json(body, required=True)
        assert (refused.value.status, refused.value.code) == (400, "invalid_json")


def test_multipart_bodies_give_their_named_parts_or_a_400() -> None:
    body = (
        b"--XX\r\n"
        b'Content-Disposition: form-data; name="sdp"\r\n'
        b"Content-Type: application/sdp\r\n\r\n"
        b"v=0\r\n"
        b"\r\n--XX\r\n"
        b'Content-Disposition: form-data; name="session"\r\n'
        b"Content-Type: application/json\r\n\r\n"
        b'{"type": "realtime"}'
        b"\r\n--XX--\r\n"
    )
    parts = parse_multipart("multipart/form-data; boundary=XX", body)
    assert parts["sdp"][0] == "application/sdp"
    assert parts["sdp"][1].startswith(b"v=0")
    assert parts["session"] == ("application/json", b'{"type": "realtime"}')
    with pytest.raises(APIError) as refused:
        parse_multipart("text/plain", b"hello")
    assert (refused.value.status, refused.value.code) == (400, "invalid_multipart")
