"""``POST /realtime/calls/?preset=slug``: the server relays the browser's SDP offer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest import mock
from urllib.parse import quote

import httpx
import pytest
import time_machine
from django.contrib.auth.models import Group, User

from django_realtime import payloads
from django_realtime.models import SessionPreset
from django_realtime.testing import FakeRealtimeAPI
from tests.api_helpers import assert_error, only_audit_row
from tests.conftest import API_KEY, OFFER_SDP, CheckedAPIClient, Upstream

URL = "/realtime/calls/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(realtime_fake: FakeRealtimeAPI) -> FakeRealtimeAPI:
    """The fake API answering offers with a static SDP (no WebRTC peer needed here)."""
    realtime_fake.webrtc = False
    return realtime_fake


def offer(
    api: CheckedAPIClient,
    query: str = "?preset=assistant",
    body: str | bytes = OFFER_SDP,
    content_type: str = "application/sdp",
) -> Any:
    return api.post(URL + query, data=body, content_type=content_type)


def test_relay_happy_path(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    fake: FakeRealtimeAPI,
    user: User,
    issued: mock.Mock,
) -> None:
    preset = make_preset(
        "assistant",
        instructions="Hello there.",
        voice="ash",
        turn_detection="server_vad",
        turn_detection_options={"silence_duration_ms": 300},
    )

    response = offer(api_client)

    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/sdp"
    assert response["Cache-Control"] == "no-store"
    call = fake.last_call
    assert call is not None
    assert response["X-Realtime-Call-Id"] == call.id
    assert response.content.decode().startswith("v=0")
    assert call.auth == "server"
    assert call.key_was_minted is False

    [sent] = fake.requests_to("/realtime/calls")
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.parts == {
        "sdp": OFFER_SDP,
        "session": {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Hello there.",
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}},
                "output": {"voice": "ash"},
            },
        },
    }
    assert sent.parts["session"] == payloads.build_session(preset)
    assert API_KEY not in json.dumps(sent.headers)  # the fake's log keeps only a prefix

    row = only_audit_row()
    assert (row.action, row.outcome, row.call_id) == ("call", "issued", call.id)
    assert (row.user, row.preset, row.preset_slug) == (user, preset, "assistant")
    assert row.upstream_status == 201
    assert row.upstream_request_id == sent.request_id
    assert row.session_payload == sent.parts["session"]
    assert row.secret_fingerprint == ""

    issued.assert_called_once()
    assert issued.call_args.kwargs["call_id"] == call.id
    assert issued.call_args.kwargs["expires_at"] is None


def test_relay_with_overrides_in_the_query(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    fake: FakeRealtimeAPI,
) -> None:
    make_preset("assistant", allowed_overrides=["voice"])
    query = "?preset=assistant&overrides=" + quote(json.dumps({"voice": "sage"}))
    assert offer(api_client, query).status_code == 201
    [sent] = fake.requests_to("/realtime/calls")
    assert sent.parts["session"]["audio"] == {"output": {"voice": "sage"}}


def test_relay_transcription_preset(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    fake: FakeRealtimeAPI,
) -> None:
    make_preset("dictation", session_type="transcription", transcription_model="whisper-1")
    assert offer(api_client, "?preset=dictation").status_code == 201
    [sent] = fake.requests_to("/realtime/calls")
    assert sent.parts["session"] == {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "whisper-1"}}},
    }
    assert only_audit_row().model == "whisper-1"


def test_relay_uses_the_default_preset(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
    settings: Any,
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "DEFAULT_PRESET": "assistant"}
    response = offer(api_client, "")
    assert response.status_code == 201
    assert response["X-Realtime-Call-Id"] == "rtc_test123"
    assert only_audit_row().call_id == "rtc_test123"


# --- bad offers: 400, never relayed ------------------------------------------------------

NO_AUDIO = OFFER_SDP.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=video 9 UDP/TLS/RTP/SAVPF 96")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (OFFER_SDP, "application/json"),
        (OFFER_SDP, "text/plain"),
        ("sdp=v%3D0", "application/x-www-form-urlencoded"),
        (
            '--b\r\nContent-Disposition: form-data; name="sdp"\r\n\r\nv=0\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
        ("not an sdp at all", "application/sdp"),
        ("", "application/sdp"),
        (json.dumps({"sdp": OFFER_SDP}), "application/sdp"),
        (NO_AUDIO, "application/sdp"),
        ("o=- 1 2 IN IP4 127.0.0.1\r\nm=audio 9 RTP/AVP 0\r\n", "application/sdp"),
        (b"v=0\r\nm=audio 9 RTP/AVP 0\r\n\xff\xfe", "application/sdp"),
    ],
)
def test_bad_offers_are_400_without_upstream_call(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
    body: str | bytes,
    content_type: str,
) -> None:
    assert_error(offer(api_client, body=body, content_type=content_type), 400, "invalid")
    assert upstream.calls == 0
    row = only_audit_row()
    assert (row.action, row.outcome) == ("call", "invalid")


def test_content_type_parameters_are_tolerated(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
) -> None:
    response = offer(api_client, content_type="application/sdp; charset=utf-8")
    assert response.status_code == 201


def test_oversized_offer_is_400(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
    settings: Any,
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "SDP_MAX_BYTES": len(OFFER_SDP)}
    assert offer(api_client).status_code == 201
    big = OFFER_SDP + "a=x\r\n"
    response = offer(api_client, body=big)
    assert_error(response, 400, "invalid")
    assert "larger than" in response.json()["detail"]
    assert upstream.calls == 1


def test_overrides_must_be_json(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
) -> None:
    assert_error(offer(api_client, "?preset=assistant&overrides={voice"), 400, "invalid")
    assert upstream.calls == 0


def test_not_whitelisted_override_is_400(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
) -> None:
    query = "?preset=assistant&overrides=" + quote(json.dumps({"instructions": "obey me"}))
    assert_error(offer(api_client, query), 400, "invalid_override")
    assert upstream.calls == 0


# --- access --------------------------------------------------------------------------------


def test_unauthenticated_is_403(
    anon_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
) -> None:
    assert_error(offer(anon_client), 403, "not_authenticated")
    assert upstream.calls == 0
    assert only_audit_row().outcome == "forbidden"


def test_missing_csrf_is_403(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
) -> None:
    api_client.credentials()
    assert_error(offer(api_client), 403, "permission_denied")
    assert upstream.calls == 0


def test_group_restricted_is_403(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    group: Group,
    upstream: Upstream,
) -> None:
    make_preset("staff", groups=(group,))
    assert_error(offer(api_client, "?preset=staff"), 403, "permission_denied")
    assert upstream.calls == 0


def test_unknown_preset_is_404(api_client: CheckedAPIClient, upstream: Upstream) -> None:
    assert_error(offer(api_client, "?preset=ghost"), 404, "preset_not_found")
    assert upstream.calls == 0


def test_relay_is_rate_limited_before_the_upstream(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    upstream: Upstream,
    frozen_clock: time_machine.Coordinates,
) -> None:
    make_preset("assistant", rate="1/m")
    assert offer(api_client).status_code == 201
    response = offer(api_client)
    assert_error(response, 429, "rate_limited")
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    assert upstream.calls == 1
    # Retry-After is the truth: a second early is still refused, then the budget is back.
    frozen_clock.shift(wait - 1)
    assert_error(offer(api_client), 429, "rate_limited")
    frozen_clock.shift(1)
    assert offer(api_client).status_code == 201
    assert upstream.calls == 2


# --- upstream failures ---------------------------------------------------------------------


def test_upstream_refuses_the_offer(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    fake: FakeRealtimeAPI,
) -> None:
    fake.refuse_next_offer()
    response = offer(api_client)
    assert_error(response, 502, "upstream_error")
    assert "WHIP" not in response.content.decode()
    row = only_audit_row()
    assert (row.outcome, row.upstream_status, row.error_code) == (
        "upstream_error",
        400,
        "invalid_offer",
    )
    assert len(fake.requests_to("/realtime/calls")) == 1


def test_upstream_timeout_is_504(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    fake: FakeRealtimeAPI,
) -> None:
    fake.timeout_next("/realtime/calls", times=3)
    assert_error(offer(api_client), 504, "upstream_timeout")
    assert len(fake.requests_to("/realtime/calls")) == 3
    assert only_audit_row().outcome == "upstream_timeout"


def test_upstream_rate_limit_is_503(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    fake: FakeRealtimeAPI,
) -> None:
    fake.rate_limit_next("/realtime/calls", retry_after=4, times=3)
    response = offer(api_client)
    assert_error(response, 503, "upstream_unavailable")
    assert response["Retry-After"] == "4"


def test_upstream_answer_that_is_not_sdp_is_502(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
) -> None:
    upstream.queue(httpx.Response(201, json={"ok": True}, headers={"x-request-id": "req_x"}))
    assert_error(offer(api_client), 502, "upstream_error")
    assert only_audit_row().upstream_request_id == "req_x"


def test_missing_api_key_is_503(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "API_KEY": ""}
    assert_error(offer(api_client), 503, "not_configured")
    assert upstream.calls == 0
