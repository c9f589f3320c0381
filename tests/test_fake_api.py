"""The fake Realtime API (``django_realtime.testing``) behaves like the GA contract.

HTTP behaviour through the in-process transport and through the uvicorn server;
acceptance cross-checked against OpenAI's published schema; one real WebRTC
handshake with an aiortc client peer (loopback only, bounded by timeouts).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from django_realtime import client as upstream_client
from django_realtime.exceptions import UpstreamRateLimited, UpstreamTimeout
from django_realtime.testing import FakeRealtimeAPI, FakeRealtimeServer
from django_realtime.testing.server import main as server_main

SERVER_KEY = "sk-test-fake-0123456789-SERVER"
AUTH = {"Authorization": f"Bearer {SERVER_KEY}"}
BASE = "https://api.openai.test/v1"
SCHEMAS = Path(__file__).parent / "data" / "openapi_realtime_schemas.json"

#: A syntactically complete offer (aiortc is not involved when ``webrtc=False``).
OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
    "a=rtpmap:111 opus/48000/2\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\na=mid:1\r\na=sctp-port:5000\r\n"
)

REALTIME = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}
TRANSCRIPTION = {
    "type": "transcription",
    "audio": {
        "input": {
            "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": None,
        }
    },
}

VALID_BODIES = [
    pytest.param({}, id="empty"),
    pytest.param({"session": REALTIME}, id="realtime-minimal"),
    pytest.param(
        {"expires_after": {"anchor": "created_at", "seconds": 120}, "session": REALTIME},
        id="realtime-ttl",
    ),
    pytest.param({"expires_after": {"seconds": 10}, "session": TRANSCRIPTION}, id="transcription"),
    pytest.param(
        {
            "expires_after": {"anchor": "created_at", "seconds": 7200},
            "session": {
                "type": "realtime",
                "model": "gpt-realtime-mini",
                "output_modalities": ["text"],
                "max_output_tokens": 4096,
                "tool_choice": "auto",
                "truncation": "auto",
                "tools": [
                    {
                        "type": "function",
                        "name": "lookup",
                        "description": "d",
                        "parameters": {"type": "object", "properties": {}},
                    }
                ],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "noise_reduction": {"type": "near_field"},
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
                    },
                    "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.5},
                },
            },
        },
        id="realtime-full",
    ),
    pytest.param(
        {
            "session": {
                "type": "realtime",
                "max_output_tokens": "inf",
                "audio": {"output": {"speed": 0.25, "voice": "cedar"}},
            }
        },
        id="realtime-limits",
    ),
]

#: (body, param, code, how the published schema sees it). "schema": the schema as
#: published refuses it. "strict": only once ``additionalProperties: false`` is added
#: (the API answers ``unknown_parameter``, the schema just does not say so). "api": a
#: rule the schema cannot express (reference §1.2: no text+audio, 1..4096 tokens).
INVALID_BODIES = [
    pytest.param(
        {"expires_after": {"ttl": 60}}, "expires_after.ttl", "unknown_parameter", "strict", id="ttl"
    ),
    pytest.param(
        {"expires_after": 60}, "expires_after", "invalid_type", "schema", id="bare-int-expires"
    ),
    pytest.param(
        {"expires_after": {"anchor": "now", "seconds": 60}},
        "expires_after.anchor",
        "invalid_value",
        "schema",
        id="anchor",
    ),
    pytest.param(
        {"expires_after": {"seconds": 9}},
        "expires_after.seconds",
        "integer_below_min_value",
        "schema",
        id="seconds-low",
    ),
    pytest.param(
        {"expires_after": {"seconds": 7201}},
        "expires_after.seconds",
        "integer_above_max_value",
        "schema",
        id="seconds-high",
    ),
    pytest.param(
        {"model": "gpt-realtime", "session": REALTIME},
        "model",
        "unknown_parameter",
        "strict",
        id="top-level-model",
    ),
    pytest.param(
        {"session": {**TRANSCRIPTION, "model": "gpt-4o-transcribe"}},
        "session.model",
        "unknown_parameter",
        "strict",
        id="transcription-model",
    ),
    pytest.param(
        {"session": {"type": "translation"}},
        "session.type",
        "invalid_value",
        "schema",
        id="unknown-type",
    ),
    pytest.param(
        {"session": {"model": "gpt-realtime"}},
        "session.type",
        "missing_required_parameter",
        "schema",
        id="no-type",
    ),
    pytest.param(
        {"session": {**REALTIME, "output_modalities": ["text", "audio"]}},
        "session.output_modalities",
        "invalid_value",
        "api",
        id="text-and-audio",
    ),
    pytest.param(
        {"session": {**REALTIME, "audio": {"output": {"speed": 1.6}}}},
        "session.audio.output.speed",
        "decimal_above_max_value",
        "schema",
        id="speed-high",
    ),
    pytest.param(
        {"session": {**REALTIME, "audio": {"output": {"speed": 0.2}}}},
        "session.audio.output.speed",
        "decimal_below_min_value",
        "schema",
        id="speed-low",
    ),
    pytest.param(
        {"session": {**REALTIME, "max_output_tokens": 0}},
        "session.max_output_tokens",
        "integer_below_min_value",
        "api",
        id="tokens-low",
    ),
    pytest.param(
        {"session": {**REALTIME, "max_output_tokens": 4097}},
        "session.max_output_tokens",
        "integer_above_max_value",
        "api",
        id="tokens-high",
    ),
    pytest.param(
        {"session": {**REALTIME, "max_output_tokens": "lots"}},
        "session.max_output_tokens",
        "invalid_value",
        "schema",
        id="tokens-string",
    ),
    *[
        pytest.param(
            {"session": {**REALTIME, name: value}},
            f"session.{name}",
            "unknown_parameter",
            "strict",
            id=f"beta-{name}",
        )
        for name, value in [
            ("voice", "alloy"),
            ("modalities", ["audio"]),
            ("turn_detection", None),
            ("input_audio_format", "pcm16"),
            ("temperature", 0.8),
        ]
    ],
]


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
def fake() -> Any:
    with FakeRealtimeAPI(webrtc=False) as api:
        yield api


@pytest.fixture
def http(fake: FakeRealtimeAPI) -> Any:
    with httpx.Client(transport=fake.transport, base_url=BASE) as session:
        yield session


def mint(http: httpx.Client, body: Any = None, **kw: Any) -> httpx.Response:
    return http.post("/realtime/client_secrets", json=body or {}, headers=kw.pop("headers", AUTH))


def assert_error(
    response: httpx.Response, status: int, code: str | None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def _schemas() -> dict[str, Any]:
    return json.loads(SCHEMAS.read_text())


def _strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever properties are listed."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _drop_nulls(value: Any) -> Any:
    """The spec is OpenAPI 3.0: ``null`` is allowed by ``nullable``/``default: null``, which
    JSON Schema does not read; so compare the response with its null fields left out."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _validator(name: str, *, strict: bool = False) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schemas = _strict(_schemas()) if strict else _schemas()
    root = {**schemas, "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(root)


# --- client_secrets ----------------------------------------------------------------------


@pytest.mark.parametrize("body", VALID_BODIES)
def test_mint_accepts_valid_bodies_and_echoes_the_effective_session(
    http: httpx.Client, fake: FakeRealtimeAPI, body: dict[str, Any]
) -> None:
    before = int(time.time())
    response = mint(http, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"].startswith("req_")
    data = response.json()
    assert data["value"].startswith("ek_")
    assert len(data["value"]) > 20
    seconds = body.get("expires_after", {}).get("seconds", 600)
    assert before + seconds <= data["expires_at"] <= int(time.time()) + seconds
    session = data["session"]
    requested = body.get("session", {"type": "realtime"})
    assert session["type"] == requested["type"]
    assert session["id"].startswith("sess_")
    assert session["object"] == (
        "realtime.session" if requested["type"] == "realtime" else "realtime.transcription_session"
    )
    for key in ("model", "instructions", "output_modalities", "max_output_tokens"):
        if key in requested:
            assert session[key] == requested[key]
    if "speed" in requested.get("audio", {}).get("output", {}):
        assert session["audio"]["output"]["speed"] == requested["audio"]["output"]["speed"]
    if requested["type"] == "transcription":
        assert "model" not in session
        assert "output" not in session["audio"]
        assert session["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
        assert session["audio"]["input"]["turn_detection"] is None
    # What the fake accepts, the published schema accepts; what it answers fits too.
    _validator("RealtimeCreateClientSecretRequest").validate(body)
    _validator("RealtimeCreateClientSecretResponse").validate(_drop_nulls(data))
    assert data["value"] in fake.secrets


@pytest.mark.parametrize(("body", "param", "code", "schema_view"), INVALID_BODIES)
def test_mint_refuses_what_the_api_refuses(
    http: httpx.Client,
    fake: FakeRealtimeAPI,
    body: Any,
    param: str,
    code: str,
    schema_view: str,
) -> None:
    error = assert_error(mint(http, body), 400, code, param)
    assert error["type"] == "invalid_request_error"
    assert not fake.secrets
    published = _validator("RealtimeCreateClientSecretRequest")
    strict = _validator("RealtimeCreateClientSecretRequest", strict=True)
    if schema_view == "schema":
        assert not published.is_valid(body)
    elif schema_view == "strict":
        assert published.is_valid(body)  # the published schema is open-ended here...
        assert not strict.is_valid(body)  # ...but the field is unknown to it
    else:
        assert strict.is_valid(body)  # a live-API rule the schema cannot express


def test_mint_error_messages_name_beta_fields(http: httpx.Client) -> None:
    error = assert_error(
        mint(http, {"session": {**REALTIME, "voice": "alloy"}}),
        400,
        "unknown_parameter",
        "session.voice",
    )
    assert "beta" in error["message"]


def test_mint_refuses_a_body_that_is_not_json(http: httpx.Client) -> None:
    response = http.post(
        "/realtime/client_secrets",
        content=b"{nope",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-key"),
        pytest.param({"Authorization": "Bearer ek_not_a_server_key"}, 401, id="ephemeral"),
        pytest.param({"Authorization": "Bearer nope"}, 401, id="not-sk"),
        pytest.param({"api-key": "azure-key-123"}, 200, id="azure"),
        pytest.param(AUTH, 200, id="bearer-sk"),
    ],
)
def test_mint_needs_a_server_key(http: httpx.Client, headers: dict[str, str], status: int) -> None:
    response = mint(http, {"session": REALTIME}, headers=headers)
    assert response.status_code == status
    if status == 401:
        error = assert_error(response, 401, response.json()["error"]["code"])
        assert "ek_not_a_server_key" not in error["message"]


def test_only_configured_keys_when_any_sk_key_is_off() -> None:
    api = FakeRealtimeAPI(webrtc=False, api_keys=["sk-only-this"], accept_any_sk_key=False)
    with api, httpx.Client(transport=api.transport, base_url=BASE) as session:
        assert mint(session, headers=AUTH).status_code == 401
        good = {"Authorization": "Bearer sk-only-this"}
        assert mint(session, headers=good).status_code == 200


# --- /realtime/calls -------------------------------------------------------------------------


def post_offer(http: httpx.Client, key: str, sdp: str = OFFER) -> httpx.Response:
    return http.post(
        "/realtime/calls",
        content=sdp.encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"},
    )


def test_ephemeral_key_lifecycle(http: httpx.Client, fake: FakeRealtimeAPI) -> None:
    assert_error(post_offer(http, "ek_unknown"), 401, "invalid_api_key")
    value = mint(http, {"expires_after": {"seconds": 10}, "session": REALTIME}).json()["value"]

    answer = post_offer(http, value)
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/sdp"
    assert answer.text.startswith("v=0")
    call_id = answer.headers["location"].rsplit("/", 1)[-1]
    assert answer.headers["location"] == f"/v1/realtime/calls/{call_id}"
    assert call_id.startswith("rtc_")
    call = fake.get_call(call_id)
    assert call.key_was_minted
    assert call.auth == "ephemeral"
    assert call.client_secret == value
    assert call.session["instructions"] == "Be brief."  # the session comes from the secret

    assert post_offer(http, value).status_code == 201  # several sessions until it expires
    fake.advance_clock(11)
    error = assert_error(post_offer(http, value), 401, "invalid_api_key")
    assert "expired" in error["message"]


def test_calls_refuse_what_is_not_an_offer(http: httpx.Client) -> None:
    value = mint(http, {"session": REALTIME}).json()["value"]
    for body in ("hello", '{"sdp": "v=0"}', "v=0\r\nm=application 9 UDP/DTLS/SCTP x\r\n"):
        assert_error(post_offer(http, value, body), 400, "invalid_offer")


def test_calls_refuse_other_content_types(http: httpx.Client) -> None:
    response = http.post("/realtime/calls", json={"sdp": OFFER}, headers=AUTH)
    assert_error(response, 400, "invalid_content_type")


def test_calls_multipart_with_a_server_key(http: httpx.Client, fake: FakeRealtimeAPI) -> None:
    files = {
        "sdp": (None, OFFER.encode(), "application/sdp"),
        "session": (None, json.dumps(REALTIME).encode(), "application/json"),
    }
    response = http.post("/realtime/calls", files=files, headers=AUTH)
    assert response.status_code == 201, response.text
    call = fake.get_call(response.headers["location"].rsplit("/", 1)[-1])
    assert call.auth == "server"
    assert not call.key_was_minted
    assert call.client_secret is None
    assert call.session["instructions"] == "Be brief."
    assert call.session["id"].startswith("sess_")
    logged = fake.requests[-1]
    assert logged.parts is not None
    assert logged.parts["session"] == REALTIME
    assert logged.parts["sdp"].startswith("v=0")

    files["session"] = (None, json.dumps(TRANSCRIPTION).encode(), "application/json")
    response = http.post("/realtime/calls", files=files, headers=AUTH)
    assert response.status_code == 201
    assert fake.last_call is not None
    assert fake.last_call.session_type == "transcription"


@pytest.mark.parametrize(
    ("parts", "code", "param"),
    [
        pytest.param(
            {"session": json.dumps(REALTIME)}, "missing_required_parameter", "sdp", id="no-sdp"
        ),
        pytest.param({"sdp": "not sdp"}, "invalid_offer", None, id="bad-sdp"),
        pytest.param(
            {"sdp": OFFER, "session": json.dumps({**REALTIME, "voice": "ash"})},
            "unknown_parameter",
            "session.voice",
            id="beta-session",
        ),
        pytest.param({"sdp": OFFER, "session": "{"}, "invalid_json", None, id="bad-json"),
    ],
)
def test_calls_multipart_refusals(
    http: httpx.Client, parts: dict[str, str], code: str, param: str | None
) -> None:
    types = {"sdp": "application/sdp", "session": "application/json"}
    files = {name: (None, value.encode(), types[name]) for name, value in parts.items()}
    assert_error(http.post("/realtime/calls", files=files, headers=AUTH), 400, code, param)


def test_calls_multipart_needs_a_server_key(http: httpx.Client) -> None:
    files = {"sdp": (None, OFFER.encode(), "application/sdp")}
    headers = {"Authorization": "Bearer nope"}
    assert_error(http.post("/realtime/calls", files=files, headers=headers), 401, "invalid_api_key")


# --- call control ------------------------------------------------------------------------------


def control(
    http: httpx.Client,
    call_id: str,
    verb: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": headers or AUTH}
    if body is not None:
        kwargs["json"] = body
    return http.post(f"/realtime/calls/{call_id}/{verb}", **kwargs)


def test_control_endpoints_on_a_sip_call(http: httpx.Client, fake: FakeRealtimeAPI) -> None:
    call = fake.add_sip_call("rtc_sip_1", sip_headers=[{"name": "From", "value": "sip:a@b"}])
    accepted = control(http, call.id, "accept", {**REALTIME, "instructions": "Hi caller."})
    assert accepted.status_code == 200
    assert accepted.content == b""
    assert accepted.headers["x-request-id"].startswith("req_")
    assert call.state == "accepted"
    assert call.session["instructions"] == "Hi caller."

    assert control(http, call.id, "refer", {"target_uri": "tel:+14155550123"}).status_code == 200
    assert call.refer_target == "tel:+14155550123"
    assert call.state == "referred"
    assert control(http, call.id, "hangup").status_code == 200
    assert call.state == "ended"
    assert [a["action"] for a in call.actions] == ["accept", "refer", "hangup"]

    other = fake.add_sip_call()
    assert control(http, other.id, "reject", {"status_code": 486}).status_code == 200
    assert other.reject_status == 486
    assert other.state == "rejected"
    third = fake.add_sip_call()
    assert control(http, third.id, "reject").status_code == 200
    assert third.reject_status == 603


@pytest.mark.parametrize(
    ("verb", "body", "code", "param"),
    [
        pytest.param(
            "accept",
            {"model": "gpt-realtime"},
            "missing_required_parameter",
            "type",
            id="accept-no-type",
        ),
        pytest.param("accept", TRANSCRIPTION, "invalid_value", "type", id="accept-transcription"),
        pytest.param(
            "accept", {**REALTIME, "voice": "alloy"}, "unknown_parameter", "voice", id="accept-beta"
        ),
        pytest.param(
            "reject",
            {"status_code": 486, "reason": "busy"},
            "unknown_parameter",
            "reason",
            id="reject-extra",
        ),
        pytest.param(
            "reject", {"status_code": "486"}, "invalid_type", "status_code", id="reject-type"
        ),
        pytest.param("refer", {}, "missing_required_parameter", "target_uri", id="refer-none"),
        pytest.param(
            "refer", {"target_uri": "https://x"}, "invalid_value", "target_uri", id="refer-scheme"
        ),  # the schema only says "tel: or sip:" in prose
    ],
)
def test_control_refusals(
    http: httpx.Client, fake: FakeRealtimeAPI, verb: str, body: Any, code: str, param: str
) -> None:
    call = fake.add_sip_call()
    assert_error(control(http, call.id, verb, body), 400, code, param)
    assert call.state == "incoming"
    assert not call.actions
    schema = {
        "accept": "RealtimeSessionCreateRequestGA",
        "reject": "RealtimeCallRejectRequest",
        "refer": "RealtimeCallReferRequest",
    }[verb]
    if param != "target_uri" or "target_uri" not in body:
        assert not _validator(schema, strict=True).is_valid(body)


@pytest.mark.parametrize("verb", ["accept", "reject", "refer", "hangup"])
def test_control_unknown_call_and_auth(
    http: httpx.Client, fake: FakeRealtimeAPI, verb: str
) -> None:
    body = {"accept": REALTIME, "refer": {"target_uri": "sip:a@b"}}.get(verb)
    assert_error(control(http, "rtc_nope", verb, body), 404, "call_id_not_found")
    call = fake.add_sip_call()
    value = mint(http).json()["value"]
    response = control(http, call.id, verb, body, headers={"Authorization": f"Bearer {value}"})
    assert response.status_code == 401
    assert control(http, call.id, verb, body).status_code == 200


# --- faults, latency, the log ----------------------------------------------------------------


def test_faults_answer_the_next_requests_then_stop(
    http: httpx.Client, fake: FakeRealtimeAPI
) -> None:
    fake.rate_limit_next("/realtime/client_secrets", retry_after=3, times=2)
    for _ in range(2):
        response = mint(http)
        assert_error(response, 429, "rate_limit_exceeded")
        assert response.headers["retry-after"] == "3"
    assert mint(http).status_code == 200

    fake.fail_next("/v1/realtime/client_secrets", 500)
    assert mint(http).status_code == 500
    fake.refuse_next_offer("Invalid SDP offer: no ICE credentials.")
    value = mint(http).json()["value"]
    error = assert_error(post_offer(http, value), 400, "invalid_offer")
    assert error["message"] == "Invalid SDP offer: no ICE credentials."
    fake.add_fault(
        "/realtime/calls/*/accept",
        status=503,
        json={"oops": 1},
        headers={"x-should-retry": "false"},
    )
    call = fake.add_sip_call()
    response = control(http, call.id, "accept", REALTIME)
    assert response.status_code == 503
    assert response.json() == {"oops": 1}
    assert response.headers["x-should-retry"] == "false"
    assert post_offer(http, value).status_code == 201


def test_timeout_fault_in_process(http: httpx.Client, fake: FakeRealtimeAPI) -> None:
    fake.timeout_next("/realtime/client_secrets")
    with pytest.raises(httpx.ReadTimeout):
        mint(http)
    assert mint(http).status_code == 200


def _record_sleeps(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[float]:
    """Every ``time.sleep(seconds)`` from now on (still really slept), any thread."""
    real_sleep = time.sleep
    recorded: list[float] = []

    def sleep(value: float) -> None:
        if value == seconds:
            recorded.append(value)
        real_sleep(value)

    monkeypatch.setattr(time, "sleep", sleep)
    return recorded


def test_latency_is_added_to_every_request(
    http: httpx.Client, fake: FakeRealtimeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.latency = 0.0123
    slept = _record_sleeps(monkeypatch, 0.0123)
    mint(http)
    control(http, "rtc_nope", "hangup")
    assert slept == [0.0123, 0.0123]
    fake.latency = 0
    mint(http)
    assert len(slept) == 2


def test_request_log_redacts_keys(http: httpx.Client, fake: FakeRealtimeAPI) -> None:
    value = mint(http, {"session": REALTIME}).json()["value"]
    post_offer(http, value)
    http.post("/realtime/client_secrets", json={}, headers={"api-key": "azure-secret-key-42"})
    first, second, third = fake.requests
    assert (first.method, first.path, first.status) == ("POST", "/realtime/client_secrets", 200)
    assert first.json == {"session": REALTIME}
    assert first.headers["authorization"] == "Bearer sk-tes…"
    assert second.path == "/realtime/calls"
    assert second.status == 201
    assert second.text is not None
    assert second.text.startswith("v=0")
    assert second.headers["authorization"] == f"Bearer {value[:6]}…"
    assert third.headers["api-key"] == "azure-…"
    dumped = json.dumps(fake.stats()["requests"])
    assert SERVER_KEY not in dumped
    assert value not in dumped
    assert "azure-secret" not in dumped
    assert [r.path for r in fake.requests_to("/realtime/calls")] == ["/realtime/calls"]


def test_reset_forgets_everything(http: httpx.Client, fake: FakeRealtimeAPI) -> None:
    mint(http)
    fake.fail_next("/realtime/*", 500)
    fake.latency = 1
    fake.add_sip_call()
    fake.reset()
    assert not (fake.secrets)
    assert not (fake.calls)
    assert not (fake.requests)
    assert not (fake.faults)
    assert fake.latency == 0
    assert mint(http).status_code == 200


# --- the transport, sync and async, and our own client -------------------------------------------


def test_transport_with_a_sync_client(fake: FakeRealtimeAPI) -> None:
    with httpx.Client(transport=fake.transport) as session:
        response = session.post(f"{BASE}/realtime/client_secrets", json={}, headers=AUTH)
    assert response.status_code == 200
    assert fake.transport.fake is fake


@pytest.mark.anyio
async def test_transport_with_an_async_client(fake: FakeRealtimeAPI) -> None:
    async with httpx.AsyncClient(transport=fake.transport, base_url=BASE) as session:
        minted = await session.post(
            "/realtime/client_secrets", json={"session": REALTIME}, headers=AUTH
        )
        assert minted.status_code == 200
        fake.timeout_next("/realtime/calls")
        with pytest.raises(httpx.ReadTimeout):
            await session.post(
                "/realtime/calls",
                content=OFFER,
                headers={
                    "Authorization": f"Bearer {minted.json()['value']}",
                    "Content-Type": "application/sdp",
                },
            )
    assert [r.status for r in fake.requests] == [200, None]


def test_realtime_fake_fixture_drives_our_client(
    realtime_fake: FakeRealtimeAPI,
    sleeps: list[float],
) -> None:
    realtime_fake.webrtc = False
    secret = upstream_client.create_client_secret({"session": REALTIME})
    assert secret.value in realtime_fake.secrets
    assert secret.request_id is not None
    assert secret.request_id.startswith("req_")
    answer = upstream_client.create_call(OFFER, REALTIME)
    assert answer.call_id == realtime_fake.last_call.id  # type: ignore[union-attr]

    realtime_fake.rate_limit_next("/realtime/client_secrets", retry_after=2, times=1)
    assert upstream_client.create_client_secret({}).status_code == 200
    assert sleeps == [2.0]
    realtime_fake.rate_limit_next("/realtime/client_secrets", retry_after=2, times=5)
    with pytest.raises(UpstreamRateLimited):
        upstream_client.create_client_secret({})
    realtime_fake.clear_faults()
    realtime_fake.timeout_next("/realtime/client_secrets", times=5)
    with pytest.raises(UpstreamTimeout):
        upstream_client.create_client_secret({})
    call = realtime_fake.add_sip_call()
    assert upstream_client.reject_call(call.id, 486).status_code == 200
    assert call.reject_status == 486


@pytest.mark.anyio
async def test_realtime_fake_fixture_drives_our_async_client(
    realtime_fake: FakeRealtimeAPI,
) -> None:
    secret = await upstream_client.acreate_client_secret({"session": TRANSCRIPTION})
    assert secret.session["type"] == "transcription"
    assert realtime_fake.requests[-1].json == {"session": TRANSCRIPTION}


# --- the server ---------------------------------------------------------------------------------


def test_server_cors_and_control_api(
    realtime_server: FakeRealtimeServer,
) -> None:
    server = realtime_server
    assert server.url.startswith("http://127.0.0.1:")
    assert server.url.endswith("/v1")
    origin = "http://127.0.0.1:9999"
    with httpx.Client(base_url=server.url, timeout=5) as session:
        preflight = session.options(
            "/realtime/calls",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["x-request-id"].startswith("req_")
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        response = session.post(
            "/realtime/client_secrets", json={}, headers={**AUTH, "Origin": origin}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "location" in exposed
        assert "x-request-id" in exposed
        assert session.get("/nothing").status_code == 404

        root = server.origin + "/_fake"
        session.post(
            f"{root}/faults", json={"path": "/realtime/client_secrets", "status": 502, "times": 1}
        )
        assert session.post("/realtime/client_secrets", json={}, headers=AUTH).status_code == 502
        sip = session.post(f"{root}/sip_calls", json={"call_id": "rtc_remote"}).json()
        assert sip["state"] == "incoming"
        hangup = session.post("/realtime/calls/rtc_remote/hangup", headers=AUTH)
        assert hangup.status_code == 200
        stats = session.get(f"{root}/stats").json()
        assert stats["calls"]["rtc_remote"]["state"] == "ended"
        assert [r["status"] for r in stats["requests"]] == [200, 404, 502, 200]


def test_server_timeout_holds_until_the_client_gives_up(
    realtime_server: FakeRealtimeServer,
) -> None:
    fake = realtime_server.fake
    fake.timeout_next("/realtime/client_secrets", seconds=30)
    with httpx.Client(base_url=realtime_server.url, timeout=0.3) as session:
        with pytest.raises(httpx.ReadTimeout):
            session.post("/realtime/client_secrets", json={}, headers=AUTH)
        # The fault was one request's: the next is answered.
        assert session.post("/realtime/client_secrets", json={}, headers=AUTH).status_code == 200
    assert len(fake.requests_to("/realtime/client_secrets")) == 2


def test_server_timeout_a_patient_client_outlasts_is_a_504(
    realtime_server: FakeRealtimeServer,
) -> None:
    realtime_server.fake.timeout_next("/realtime/client_secrets", seconds=0.05)
    with httpx.Client(base_url=realtime_server.url, timeout=30) as session:
        response = session.post("/realtime/client_secrets", json={}, headers=AUTH)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"


def test_server_latency_and_settings(
    realtime_server: FakeRealtimeServer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.DJANGO_REALTIME["API_BASE"] == realtime_server.url
    assert settings.DJANGO_REALTIME["CONNECT_URL"] == realtime_server.calls_url
    realtime_server.fake.latency = 0.0125
    slept = _record_sleeps(monkeypatch, 0.0125)
    upstream_client.create_client_secret({"session": REALTIME})
    assert slept == [0.0125]


def test_server_refuses_other_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        FakeRealtimeServer(host="0.0.0.0")
    with pytest.raises(SystemExit):
        server_main(["--host", "0.0.0.0", "--port", "0"])
    assert "127.0.0.1" in capsys.readouterr().err


def test_http_only_fake_imports_without_aiortc() -> None:
    script = (
        "import sys; sys.modules['aiortc'] = None; sys.modules['uvicorn'] = None\n"
        "import httpx\n"
        "from django_realtime.testing import FakeRealtimeAPI, FakeRealtimeServer, "
        "MissingExtraError\n"
        "fake = FakeRealtimeAPI()\n"
        "c = httpx.Client(transport=fake.transport)\n"
        "auth = {'Authorization': 'Bearer sk-x'}\n"
        "r = c.post('http://t/v1/realtime/client_secrets', json={}, headers=auth)\n"
        "assert r.status_code == 200\n"
        f"sdp = {OFFER!r}\n"
        "try:\n"
        "    c.post('http://t/v1/realtime/calls', content=sdp, headers={**auth, "
        "'Content-Type': 'application/sdp'})\n"
        "except MissingExtraError as e:\n"
        "    assert 'django-openai-realtime[testing]' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no MissingExtraError for the peer')\n"
        "try:\n"
        "    FakeRealtimeServer().start()\n"
        "except MissingExtraError as e:\n"
        "    assert 'uvicorn' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no MissingExtraError for the server')\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout


# --- a real WebRTC handshake (aiortc on both sides, loopback only) --------------------------------


async def _connect(fake: FakeRealtimeAPI, session: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """aiortc client: mic track + ``oai-events`` -> mint -> offer -> answer."""
    aiortc = pytest.importorskip("aiortc")
    from django_realtime.testing.peer import ToneTrack
    from django_realtime.testing.state import FakeCall

    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    pc.addTrack(ToneTrack(FakeCall("client", kind="webrtc", session={}), 330))
    channel = pc.createDataChannel("oai-events")
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    channel.on("message", lambda message: events.put_nowait(json.loads(message)))
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(transport=fake.transport, base_url=BASE) as http:
        minted = await http.post(
            "/realtime/client_secrets", json={"session": session}, headers=AUTH
        )
        answer = await http.post(
            "/realtime/calls",
            content=pc.localDescription.sdp,
            headers={
                "Authorization": f"Bearer {minted.json()['value']}",
                "Content-Type": "application/sdp",
            },
        )
    assert answer.status_code == 201, answer.text
    await pc.setRemoteDescription(aiortc.RTCSessionDescription(sdp=answer.text, type="answer"))
    call = fake.get_call(answer.headers["location"].rsplit("/", 1)[-1])
    return pc, channel, events, call


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _next_event(events: Any, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = await asyncio.wait_for(events.get(), max(0.01, deadline - time.monotonic()))
        if event["type"] == event_type:
            return event  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_webrtc_handshake_in_process() -> None:
    from django_realtime.testing.loopback import loopback_only

    with loopback_only(), FakeRealtimeAPI() as fake:
        pc, channel, events, call = await _connect(fake, REALTIME)
        try:
            created = await _next_event(events, "session.created")
            assert created["event_id"]
            assert created["session"]["instructions"] == "Be brief."
            assert created["session"]["type"] == "realtime"
            assert created["session"]["id"].startswith("sess_")
            answer_sdp = pc.remoteDescription.sdp
            assert "a=candidate:" in answer_sdp
            candidates = [
                line.split()[4]
                for line in answer_sdp.splitlines()
                if line.startswith("a=candidate:")
            ]
            assert set(candidates) == {"127.0.0.1"}

            channel.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "event_id": "evt_1",
                        "session": {"type": "realtime", "instructions": "New."},
                    }
                )
            )
            updated = await _next_event(events, "session.updated")
            assert updated["session"]["instructions"] == "New."
            channel.send(json.dumps({"type": "session.update", "session": {"voice": "ash"}}))
            error = await _next_event(events, "error")
            assert error["error"]["code"] == "missing_required_parameter"

            await _until(lambda: call.audio_frames_received > 10 and call.audio_frames_sent > 10)
            assert call.data_channel_label == "oai-events"
            assert call.connection_state == "connected"
            assert call.state == "active"
            assert call.client_event_types == ["session.update", "session.update"]
            done = await _next_event(events, "response.output_audio_transcript.done")
            assert done["transcript"] == fake.peer_options.assistant_transcript
            assert call.nonsilent_frames_received >= fake.peer_options.transcript_after_frames
            heard = "conversation.item.input_audio_transcription.completed"
            assert heard in call.server_event_types
            assert call.stats()["key_was_minted"] is True

            # A hang-up closes the fake's peer, and the call is over.
            async with httpx.AsyncClient(transport=fake.transport, base_url=BASE) as http:
                hangup = await http.post(f"/realtime/calls/{call.id}/hangup", headers=AUTH)
            assert hangup.status_code == 200
            await _until(lambda: call.connection_state == "closed")
            assert call.state == "ended"
        finally:
            await pc.close()


@pytest.mark.anyio
async def test_webrtc_transcription_session_sends_no_audio_and_drop_call() -> None:
    from django_realtime.testing.loopback import loopback_only

    with loopback_only(), FakeRealtimeAPI() as fake:
        pc, channel, events, call = await _connect(fake, TRANSCRIPTION)
        try:
            created = await _next_event(events, "session.created")
            assert created["session"]["type"] == "transcription"
            assert "a=recvonly" in pc.remoteDescription.sdp  # the fake never speaks
            heard = await _next_event(
                events, "conversation.item.input_audio_transcription.completed"
            )
            assert heard["content_index"] == 0
            assert heard["transcript"]
            assert heard["item_id"]
            assert call.audio_frames_sent == 0
            assert call.audio_frames_received > 0
            assert "response.output_audio_transcript.done" not in call.server_event_types

            fake.drop_call(call.id)  # the server side goes away without a hang-up
            await _until(lambda: call.connection_state == "closed")
            await _until(lambda: channel.readyState == "closed")
            assert call.state == "dropped"
        finally:
            await pc.close()
