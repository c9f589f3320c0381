"""The upstream client: request shape, headers, retries, error translation, async twins."""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from django_realtime import __version__, client
from django_realtime.exceptions import (
    RealtimeConfigurationError,
    UpstreamAuthenticationError,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from tests.conftest import ANSWER_SDP, API_BASE, API_KEY, OFFER_SDP, Upstream, secret_response

PAYLOAD = {
    "expires_after": {"anchor": "created_at", "seconds": 60},
    "session": {"type": "realtime", "model": "gpt-realtime"},
}


def multipart(request: httpx.Request) -> dict[str, tuple[str, bytes]]:
    """name -> (content type, payload) of a multipart/form-data request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_content_type(), part.get_payload(decode=True))
    return parts


# --- the request ---------------------------------------------------------------------


def test_create_client_secret_request_and_result(upstream: Upstream) -> None:
    secret = client.create_client_secret(PAYLOAD)

    assert upstream.calls == 1
    request = upstream.last
    assert request.method == "POST"
    assert str(request.url) == f"{API_BASE}/realtime/client_secrets"
    assert json.loads(request.content) == PAYLOAD
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert "openai-beta" not in request.headers
    assert "api-key" not in request.headers
    assert "openai-organization" not in request.headers
    assert "openai-project" not in request.headers
    assert "x-stainless-retry-count" not in request.headers

    assert secret.value.startswith("ek_")
    assert secret.request_id == "req_0001"
    assert secret.status_code == 200
    assert secret.session["type"] == "realtime"
    assert isinstance(secret.expires_at, int)
    assert secret.value not in repr(secret)


def test_user_agent_is_versioned(upstream: Upstream) -> None:
    client.create_client_secret(PAYLOAD)
    agent = upstream.last.headers["user-agent"]
    assert agent.startswith(f"django-openai-realtime/{__version__} ")
    assert f"httpx/{httpx.__version__}" in agent
    assert "python/" in agent


def test_azure_api_key_header(upstream: Upstream, settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "AUTH_STYLE": "api-key"}
    client.create_client_secret(PAYLOAD)
    assert upstream.last.headers["api-key"] == API_KEY
    assert "authorization" not in upstream.last.headers


def test_organization_and_project_headers(upstream: Upstream, settings: Any) -> None:
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "ORGANIZATION": "org-123",
        "PROJECT": "proj_456",
    }
    client.create_client_secret(PAYLOAD)
    assert upstream.last.headers["openai-organization"] == "org-123"
    assert upstream.last.headers["openai-project"] == "proj_456"


def test_timeouts_come_from_settings(upstream: Upstream, settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "TIMEOUT": 7.5, "CONNECT_TIMEOUT": 2}
    client.create_client_secret(PAYLOAD)
    assert upstream.last.extensions["timeout"] == {
        "connect": 2.0,
        "read": 7.5,
        "write": 7.5,
        "pool": 7.5,
    }


def test_api_base_trailing_slash(upstream: Upstream, settings: Any) -> None:
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "API_BASE": "https://res.openai.azure.com/openai/v1/",
    }
    client.create_client_secret(PAYLOAD)
    assert (
        str(upstream.last.url) == "https://res.openai.azure.com/openai/v1/realtime/client_secrets"
    )


def test_missing_api_key_fails_before_any_request(
    upstream: Upstream, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "API_KEY": None}
    with pytest.raises(RealtimeConfigurationError, match=r"DJANGO_REALTIME\['API_KEY'\]"):
        client.create_client_secret(PAYLOAD)
    assert upstream.calls == 0


def test_environment_key_is_the_fallback(
    upstream: Upstream, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environment")
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "API_KEY": ""}
    client.create_client_secret(PAYLOAD)
    assert upstream.last.headers["authorization"] == "Bearer sk-from-environment"


def test_the_pooled_client_is_reused_until_reset(upstream: Upstream) -> None:
    first = client.get_client()
    assert client.get_client() is first
    client.reset()
    assert client.get_client() is not first


# --- success parsing ---------------------------------------------------------------------


def test_missing_session_is_tolerated(upstream: Upstream) -> None:
    upstream.queue(secret_response("ek_nosession", session=None))
    secret = client.create_client_secret(PAYLOAD)
    assert secret.session == {}
    assert secret.request_id == "req_ok"


def test_extra_and_legacy_nested_fields_are_tolerated(upstream: Upstream) -> None:
    upstream.queue(
        secret_response(
            "ek_top",
            session={"type": "realtime", "client_secret": {"value": "ek_nested"}},
            unexpected=True,
        )
    )
    assert client.create_client_secret(PAYLOAD).value == "ek_top"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"<html>gateway</html>"),
        httpx.Response(200, content=b"\xff\xfe"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"expires_at": 1}),
        httpx.Response(200, json={"value": "", "expires_at": 1}),
        httpx.Response(200, json={"value": "ek_x", "expires_at": "soon"}),
        httpx.Response(200, json={"client_secret": {"value": "ek_x", "expires_at": 1}}),
    ],
)
def test_malformed_success_body(upstream: Upstream, answer: httpx.Response) -> None:
    answer.headers["x-request-id"] = "req_bad"
    upstream.queue(answer)
    with pytest.raises(UpstreamBadResponse) as info:
        client.create_client_secret(PAYLOAD)
    assert info.value.request_id == "req_bad"
    assert info.value.status_code == 200
    assert upstream.calls == 1


# --- retries ---------------------------------------------------------------------------


def test_attempts_are_max_retries_plus_one(upstream: Upstream, sleeps: list[float]) -> None:
    upstream.error(500, "server_error", times=3, headers={"x-request-id": "req_last"})
    with pytest.raises(UpstreamHTTPError) as info:
        client.create_client_secret(PAYLOAD)
    assert upstream.calls == 3
    assert len(sleeps) == 2
    assert info.value.status_code == 500
    assert info.value.request_id == "req_last"
    assert info.value.error_code == "server_error"


@pytest.mark.parametrize("max_retries", [0, 1, 4])
def test_max_retries_setting(
    upstream: Upstream, settings: Any, sleeps: list[float], max_retries: int
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": max_retries}
    upstream.respond(503, times=10)
    with pytest.raises(UpstreamHTTPError):
        client.create_client_secret(PAYLOAD)
    assert upstream.calls == max_retries + 1
    assert len(sleeps) == max_retries


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(upstream: Upstream, status: int) -> None:
    upstream.respond(status)
    secret = client.create_client_secret(PAYLOAD)
    assert upstream.calls == 2
    assert secret.value.startswith("ek_")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_not_retried(upstream: Upstream, sleeps: list[float], status: int) -> None:
    upstream.error(status, "nope", times=3)
    with pytest.raises(UpstreamHTTPError) as info:
        client.create_client_secret(PAYLOAD)
    assert upstream.calls == 1
    assert sleeps == []
    assert info.value.status_code == status


def test_x_should_retry_true_forces_a_retry(upstream: Upstream) -> None:
    upstream.respond(400, headers={"x-should-retry": "true"})
    client.create_client_secret(PAYLOAD)
    assert upstream.calls == 2


def test_x_should_retry_false_prevents_a_retry(upstream: Upstream) -> None:
    upstream.respond(500, headers={"x-should-retry": "false"})
    with pytest.raises(UpstreamHTTPError):
        client.create_client_secret(PAYLOAD)
    assert upstream.calls == 1


def test_retry_count_header(upstream: Upstream) -> None:
    upstream.respond(500, times=2)
    client.create_client_secret(PAYLOAD)
    counts = [r.headers.get("x-stainless-retry-count") for r in upstream.requests]
    assert counts == [None, "1", "2"]


def test_retry_after_seconds_is_honoured(upstream: Upstream, sleeps: list[float]) -> None:
    upstream.respond(429, headers={"retry-after": "3"})
    upstream.respond(503, headers={"retry-after": "1"})
    client.create_client_secret(PAYLOAD)
    assert sleeps == [3.0, 1.0]


def test_retry_after_ms_wins(upstream: Upstream, sleeps: list[float]) -> None:
    upstream.respond(429, headers={"retry-after-ms": "1500", "retry-after": "9"})
    client.create_client_secret(PAYLOAD)
    assert sleeps == [1.5]


def test_retry_after_http_date(upstream: Upstream, sleeps: list[float]) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=5)
    upstream.respond(503, headers={"retry-after": format_datetime(when, usegmt=True)})
    client.create_client_secret(PAYLOAD)
    assert 3.0 < sleeps[0] <= 5.0


def test_retry_after_above_the_cap_is_not_retried(
    upstream: Upstream, sleeps: list[float], settings: Any
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "RETRY_AFTER_CAP": 30}
    upstream.respond(429, headers={"retry-after": "31"})
    with pytest.raises(UpstreamRateLimited) as info:
        client.create_client_secret(PAYLOAD)
    assert upstream.calls == 1
    assert sleeps == []
    assert info.value.retry_after == 31.0


@pytest.mark.parametrize("header", [{"retry-after": "0"}, {"retry-after": "soon"}, {}])
def test_unusable_retry_after_falls_back_to_backoff(
    upstream: Upstream, sleeps: list[float], header: dict[str, str]
) -> None:
    upstream.respond(503, headers=header)
    client.create_client_secret(PAYLOAD)
    assert 0.375 <= sleeps[0] <= 0.5


def test_exponential_backoff_bounds(upstream: Upstream, sleeps: list[float], settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": 6}
    upstream.respond(500, times=6)
    client.create_client_secret(PAYLOAD)
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(sleeps) == 6
    for delay, ceiling in zip(sleeps, ceilings, strict=True):
        assert 0.75 * ceiling <= delay <= ceiling


@pytest.mark.parametrize(("rand", "expected"), [(0.0, [0.5, 1.0]), (1.0, [0.375, 0.75])])
def test_backoff_jitter_extremes(
    upstream: Upstream,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
    rand: float,
    expected: list[float],
) -> None:
    monkeypatch.setattr(client.retry.random, "random", lambda: rand)
    upstream.respond(500, times=2)
    client.create_client_secret(PAYLOAD)
    assert sleeps == expected


@pytest.mark.parametrize(
    ("exc", "translated"),
    [
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout),
        (httpx.ConnectError("refused"), UpstreamConnectionError),
        (httpx.RemoteProtocolError("eof"), UpstreamConnectionError),
    ],
)
def test_transport_failures_are_retried_then_translated(
    upstream: Upstream, sleeps: list[float], exc: Exception, translated: type[UpstreamError]
) -> None:
    upstream.queue(exc, exc, exc)
    with pytest.raises(translated) as info:
        client.create_client_secret(PAYLOAD)
    assert upstream.calls == 3
    assert len(sleeps) == 2
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, type(exc))


def test_timeout_then_success(upstream: Upstream) -> None:
    upstream.queue(httpx.ReadTimeout("slow"))
    assert client.create_client_secret(PAYLOAD).value.startswith("ek_")
    assert upstream.calls == 2
    assert upstream.requests[1].headers["x-stainless-retry-count"] == "1"


# --- errors ----------------------------------------------------------------------------


def test_error_body_is_parsed(upstream: Upstream) -> None:
    upstream.error(
        400,
        "unknown_parameter",
        "Unknown parameter: 'session.ttl'.",
        headers={"x-request-id": "req_400"},
    )
    with pytest.raises(UpstreamHTTPError) as info:
        client.create_client_secret(PAYLOAD)
    err = info.value
    assert type(err) is UpstreamHTTPError
    assert (err.status_code, err.error_code) == (400, "unknown_parameter")
    assert err.request_id == "req_400"
    assert err.error_message == "Unknown parameter: 'session.ttl'."
    assert "status=400" in str(err)
    assert "req_400" in str(err)


def test_error_type_is_the_code_when_code_is_null(upstream: Upstream) -> None:
    upstream.respond(
        400, json={"error": {"message": "bad", "type": "invalid_request_error", "code": None}}
    )
    with pytest.raises(UpstreamHTTPError) as info:
        client.create_client_secret(PAYLOAD)
    assert info.value.error_code == "invalid_request_error"


def test_non_json_error_body(upstream: Upstream) -> None:
    upstream.respond(400, content=b"<html>Bad gateway</html>")
    with pytest.raises(UpstreamHTTPError) as info:
        client.create_client_secret(PAYLOAD)
    assert info.value.error_code is None
    assert info.value.body == "<html>Bad gateway</html>"


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_logs_an_error_without_the_key(
    upstream: Upstream, log_records: list[logging.LogRecord], status: int
) -> None:
    upstream.error(
        status,
        "invalid_api_key",
        f"Incorrect API key provided: {API_KEY[:6]}***",
        headers={"x-request-id": "req_auth"},
    )
    with pytest.raises(UpstreamAuthenticationError) as info:
        client.create_client_secret(PAYLOAD)
    assert info.value.status_code == status
    assert info.value.request_id == "req_auth"
    assert API_KEY not in str(info.value)
    errors = [r for r in log_records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].name == "django_realtime.client.responses"
    assert "refused this site's API key" in errors[0].getMessage()
    assert "req_auth" in errors[0].getMessage()


def test_rate_limited_carries_retry_after(upstream: Upstream) -> None:
    upstream.error(429, "rate_limit_exceeded", headers={"retry-after": "7"}, times=3)
    with pytest.raises(UpstreamRateLimited) as info:
        client.create_client_secret(PAYLOAD)
    assert info.value.retry_after == 7.0
    assert upstream.calls == 3


def test_insufficient_quota_429_without_retry_after(upstream: Upstream) -> None:
    upstream.error(429, "insufficient_quota", times=3)
    with pytest.raises(UpstreamRateLimited) as info:
        client.create_client_secret(PAYLOAD)
    assert info.value.retry_after is None
    assert info.value.error_code == "insufficient_quota"


# --- calls -----------------------------------------------------------------------------


def test_create_call_sends_multipart_sdp_and_session(upstream: Upstream) -> None:
    session = {"type": "realtime", "model": "gpt-realtime", "instructions": "Hi"}
    answer = client.create_call(OFFER_SDP, session)

    request = upstream.last
    assert str(request.url) == f"{API_BASE}/realtime/calls"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["accept"] == "application/sdp"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    parts = multipart(request)
    assert set(parts) == {"sdp", "session"}
    assert parts["sdp"] == ("application/sdp", OFFER_SDP.encode())
    assert parts["session"][0] == "application/json"
    assert json.loads(parts["session"][1]) == session

    assert answer.sdp == ANSWER_SDP
    assert answer.call_id == "rtc_test123"
    assert answer.status_code == 201
    assert answer.request_id == "req_0001"


def test_create_call_refuses_an_answer_that_is_not_sdp(upstream: Upstream) -> None:
    upstream.respond(201, json={"ok": True}, headers={"location": "/v1/realtime/calls/rtc_1"})
    with pytest.raises(UpstreamBadResponse):
        client.create_call(OFFER_SDP, {"type": "realtime"})


def test_create_call_without_location(upstream: Upstream) -> None:
    upstream.respond(201, content=ANSWER_SDP)
    assert client.create_call(OFFER_SDP, {"type": "realtime"}).call_id is None


@pytest.mark.parametrize(
    ("location", "call_id"),
    [
        ("/v1/realtime/calls/rtc_u1_9c65", "rtc_u1_9c65"),
        ("https://api.openai.com/v1/realtime/calls/rtc_abc/", "rtc_abc"),
        ("/v1/realtime/calls/rtc_abc?x=1", "rtc_abc"),
        ("rtc_bare", "rtc_bare"),
        ("", None),
        (None, None),
    ],
)
def test_call_id_from_location(location: str | None, call_id: str | None) -> None:
    assert client.call_id_from_location(location) == call_id


@pytest.mark.parametrize(
    ("invoke", "path", "body"),
    [
        (
            lambda: client.accept_call("rtc_1", {"type": "realtime", "model": "gpt-realtime"}),
            "/realtime/calls/rtc_1/accept",
            {"type": "realtime", "model": "gpt-realtime"},
        ),
        (
            lambda: client.reject_call("rtc_1", 486),
            "/realtime/calls/rtc_1/reject",
            {"status_code": 486},
        ),
        (lambda: client.reject_call("rtc_1"), "/realtime/calls/rtc_1/reject", None),
        (
            lambda: client.refer_call("rtc_1", "tel:+14155550123"),
            "/realtime/calls/rtc_1/refer",
            {"target_uri": "tel:+14155550123"},
        ),
        (lambda: client.hangup_call("rtc_1"), "/realtime/calls/rtc_1/hangup", None),
    ],
)
def test_call_control(upstream: Upstream, invoke: Any, path: str, body: Any) -> None:
    result = invoke()
    request = upstream.last
    assert request.method == "POST"
    assert str(request.url) == f"{API_BASE}{path}"
    assert (json.loads(request.content) if request.content else None) == body
    assert result.call_id == "rtc_1"
    assert result.status_code == 200
    assert result.request_id == "req_0001"


@pytest.mark.parametrize("call_id", ["", "rtc_1/../../x", "rtc?x", "rtc#x"])
def test_malformed_call_id_is_refused_without_a_request(upstream: Upstream, call_id: str) -> None:
    with pytest.raises(UpstreamError):
        client.hangup_call(call_id)
    assert upstream.calls == 0


def test_call_control_errors_are_translated(upstream: Upstream) -> None:
    upstream.error(404, "call_id_not_found")
    with pytest.raises(UpstreamHTTPError) as info:
        client.accept_call("rtc_gone", {"type": "realtime"})
    assert info.value.error_code == "call_id_not_found"
    assert upstream.calls == 1


# --- async twins ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_acreate_client_secret(upstream: Upstream) -> None:
    secret = await client.acreate_client_secret(PAYLOAD)
    assert secret.value.startswith("ek_")
    assert secret.request_id == "req_0001"
    assert json.loads(upstream.last.content) == PAYLOAD
    assert upstream.last.headers["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.anyio
async def test_async_retries_honour_retry_after(upstream: Upstream, sleeps: list[float]) -> None:
    upstream.respond(429, headers={"retry-after": "2"})
    upstream.respond(500, headers={"retry-after-ms": "250"})
    await client.acreate_client_secret(PAYLOAD)
    assert sleeps == [2.0, 0.25]
    assert [r.headers.get("x-stainless-retry-count") for r in upstream.requests] == [None, "1", "2"]


@pytest.mark.anyio
async def test_async_gives_up_after_max_retries(upstream: Upstream, sleeps: list[float]) -> None:
    upstream.respond(502, times=3)
    with pytest.raises(UpstreamHTTPError):
        await client.acreate_client_secret(PAYLOAD)
    assert upstream.calls == 3
    assert len(sleeps) == 2


@pytest.mark.anyio
async def test_async_does_not_retry_401(upstream: Upstream) -> None:
    upstream.error(401, "invalid_api_key")
    with pytest.raises(UpstreamAuthenticationError):
        await client.acreate_client_secret(PAYLOAD)
    assert upstream.calls == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exc", "translated"),
    [
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.ConnectError("no"), UpstreamConnectionError),
    ],
)
async def test_async_transport_failures(
    upstream: Upstream, exc: Exception, translated: type[UpstreamError]
) -> None:
    upstream.queue(exc, exc, exc)
    with pytest.raises(translated):
        await client.acreate_client_secret(PAYLOAD)
    assert upstream.calls == 3


@pytest.mark.anyio
async def test_async_malformed_body(upstream: Upstream) -> None:
    upstream.respond(200, content=b"not json")
    with pytest.raises(UpstreamBadResponse):
        await client.acreate_client_secret(PAYLOAD)


@pytest.mark.anyio
async def test_acreate_call(upstream: Upstream) -> None:
    answer = await client.acreate_call(OFFER_SDP, {"type": "realtime"})
    assert answer.call_id == "rtc_test123"
    assert answer.sdp == ANSWER_SDP
    parts = multipart(upstream.last)
    assert parts["sdp"] == ("application/sdp", OFFER_SDP.encode())
    assert json.loads(parts["session"][1]) == {"type": "realtime"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "args", "path", "body"),
    [
        ("aaccept_call", ("rtc_2", {"type": "realtime"}), "accept", {"type": "realtime"}),
        ("areject_call", ("rtc_2", 603), "reject", {"status_code": 603}),
        (
            "arefer_call",
            ("rtc_2", "sip:desk@example.com"),
            "refer",
            {"target_uri": "sip:desk@example.com"},
        ),
        ("ahangup_call", ("rtc_2",), "hangup", None),
    ],
)
async def test_async_call_control(
    upstream: Upstream, name: str, args: tuple[Any, ...], path: str, body: Any
) -> None:
    result = await getattr(client, name)(*args)
    assert str(upstream.last.url) == f"{API_BASE}/realtime/calls/rtc_2/{path}"
    assert (json.loads(upstream.last.content) if upstream.last.content else None) == body
    assert result.call_id == "rtc_2"
    assert result.status_code == 200


@pytest.mark.anyio
async def test_async_missing_key(
    upstream: Upstream, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "API_KEY": None}
    with pytest.raises(RealtimeConfigurationError):
        await client.acreate_client_secret(PAYLOAD)
    assert upstream.calls == 0
