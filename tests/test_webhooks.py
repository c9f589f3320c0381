"""The OpenAI webhook view: verification before anything else, idempotency, SIP handling.

Concurrency proof (see ``test_concurrent_deliveries_*``): real threads, each with its
own database connection, POST the same ``webhook-id`` through the full Django stack
at once (``transaction=True`` tests, so every thread sees committed rows). The
upstream stand-in counts ``accept`` requests: exactly one reaches it. What makes this
hold is the unique constraint on ``WebhookEvent.webhook_id`` (one INSERT wins) plus a
conditional UPDATE for takeovers, both enforced by the database, not by Python locks,
so the same argument holds across processes (``test_two_processes_*`` runs two
``manage.py``-like processes against one SQLite file).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.views.debug import ExceptionReporter

from django_realtime import signing
from django_realtime.models import AuditLogEntry, SessionPreset, WebhookEvent
from django_realtime.signals import webhook_received
from django_realtime.sip.models import SipCall, SipRoute
from django_realtime.sip.signals import call_accepted, call_action_failed, call_incoming
from django_realtime.testing.fake import FakeRealtimeAPI

# Imported so these tests do not depend on a conftest enabling the plugin.
from django_realtime.testing.pytest_plugin import realtime_fake  # noqa: F401
from tests.sip_helpers import (
    SECRET,
    CallControlAPI,
    incoming_event,
    install_call_api,
    post_webhook,
    signed_headers,
    validate_against,
    webhook_url,
)

VECTOR_ID = "wh_685c059ae39c8190af8c71ed1022a24d"
VECTOR_TS = 1750861210
VECTOR_BODY = (
    b'{"id": "evt_685c059ae3a481909bdc86819b066fb6", "object": "event", '
    b'"created_at": 1750861210, "type": "response.completed", "data": {"id": "resp_123"}}'
)
VECTOR_SIGNATURE = "v1,gUAg4R2hWouRZqRQG4uJypNS8YK885G838+EHb4nKBY="


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def csrf_client() -> Client:
    """CSRF enforced, as in production: proves the view is csrf_exempt."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def no_retries(settings: Any) -> None:
    """One upstream request per action, so counts are exact and nothing sleeps."""
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": 0}


@pytest.fixture
def call_api(no_retries: None) -> Iterator[CallControlAPI]:
    api = install_call_api()
    yield api
    from django_realtime import client

    client.set_transport(None)


@pytest.fixture
def accept_route(db: None) -> SipRoute:
    return _make_accept_route()


def _make_accept_route() -> SipRoute:
    preset = SessionPreset(
        slug="sip-agent",
        name="SIP agent",
        model="gpt-realtime",
        instructions="You answer the phone for Example Ltd.",
        voice="marin",
        turn_detection="server_vad",
        turn_detection_options={
            "threshold": 0.6,
            "silence_duration_ms": 400,
            "idle_timeout_ms": 6000,
        },
    )
    preset.full_clean()
    preset.save()
    route = SipRoute(
        name="Main line",
        match_field="to",
        match_type="exact",
        pattern="+14155550123",
        action="accept",
        preset=preset,
    )
    route.full_clean()
    route.save()
    return route


@pytest.fixture
def file_accept_route(concurrent_db: None) -> SipRoute:
    """``accept_route`` in the concurrency database."""
    return _make_accept_route()


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    """Every signal sent during the test, as ``{"signal": name, **kwargs}``."""
    log: list[dict[str, Any]] = []
    receivers = {}
    for name, signal in [
        ("webhook_received", webhook_received),
        ("call_incoming", call_incoming),
        ("call_accepted", call_accepted),
        ("call_action_failed", call_action_failed),
    ]:

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            log.append({"signal": _name, "sender": sender, **kwargs})

        receivers[name] = (signal, receiver)
        signal.connect(receiver, weak=False)
    yield log
    for signal, receiver in receivers.values():
        signal.disconnect(receiver)


def row_counts() -> dict[str, int]:
    return {
        "events": WebhookEvent.objects.count(),
        "calls": SipCall.objects.count(),
        "audit": AuditLogEntry.objects.count(),
    }


ZERO = {"events": 0, "calls": 0, "audit": 0}


# --- method, CSRF, the reference vector ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head"])
def test_only_post_is_allowed(csrf_client: Client, method: str) -> None:
    response = getattr(csrf_client, method)(webhook_url())
    assert response.status_code == 405
    assert row_counts() == ZERO


@pytest.mark.django_db
def test_reference_vector_through_the_view(
    csrf_client: Client, monkeypatch: pytest.MonkeyPatch, received: list[dict[str, Any]]
) -> None:
    # The vector's timestamp is in 2025: freeze the verifier's clock there.
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: VECTOR_TS + 10))
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    response = post_webhook(csrf_client, VECTOR_BODY, headers=headers)
    assert response.status_code == 200
    assert response.content == b""
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.event_type, event.status) == (
        VECTOR_ID,
        "response.completed",
        "done",
    )
    assert [r["signal"] for r in received] == ["webhook_received"]
    assert received[0]["event"] == json.loads(VECTOR_BODY)
    assert received[0]["event_type"] == "response.completed"
    assert received[0]["webhook_id"] == VECTOR_ID


@pytest.mark.django_db
def test_unhandled_event_type_is_acknowledged_and_signalled(
    csrf_client: Client, received: list[dict[str, Any]]
) -> None:
    payload = {
        "id": "evt_1",
        "object": "event",
        "type": "batch.completed",
        "created_at": 1,
        "data": {"id": "batch_1"},
    }
    response = post_webhook(csrf_client, payload, msg_id="wh_unhandled")
    assert response.status_code == 200
    assert [r["signal"] for r in received] == ["webhook_received"]
    assert received[0]["event"] == payload
    assert row_counts() == {"events": 1, "calls": 0, "audit": 0}


# --- refusals: 400, logged on django.security, nothing written ---------------------------


def _tampered(kind: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(incoming_event("rtc_forged")).encode()
    headers = signed_headers(body)
    if kind == "no-headers":
        return body, {}
    if kind.startswith("missing-"):
        headers.pop(kind.removeprefix("missing-"))
    elif kind == "body":
        body = body.replace(b"rtc_forged", b"rtc_forgee")
    elif kind == "id":
        headers["webhook-id"] += "x"
    elif kind == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
    elif kind == "signature":
        headers["webhook-signature"] = "v1," + "A" * 43 + "="
    elif kind == "wrong-secret":
        headers = signed_headers(body, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    # 310, not 301: the timestamp is whole seconds taken before the request runs, so a
    # second boundary in between would bring 301 back inside the 300 s tolerance.
    elif kind == "stale":
        headers = signed_headers(body, timestamp=int(headers["webhook-timestamp"]) - 310)
    elif kind == "future":
        headers = signed_headers(body, timestamp=int(headers["webhook-timestamp"]) + 310)
    elif kind == "not-json":
        body = b"call me maybe"
        headers = signed_headers(body)
    elif kind == "json-not-object":
        body = b'["realtime.call.incoming"]'
        headers = signed_headers(body)
    elif kind == "no-type":
        body = b'{"data": {"call_id": "rtc_1"}}'
        headers = signed_headers(body)
    return body, headers


REFUSALS = [
    "no-headers",
    "missing-webhook-id",
    "missing-webhook-timestamp",
    "missing-webhook-signature",
    "body",
    "id",
    "timestamp",
    "signature",
    "wrong-secret",
    "stale",
    "future",
    "not-json",
    "json-not-object",
    "no-type",
]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", REFUSALS)
def test_refused_deliveries_answer_400_log_and_write_nothing(
    csrf_client: Client,
    call_api: CallControlAPI,
    accept_route: SipRoute,
    caplog: pytest.LogCaptureFixture,
    received: list[dict[str, Any]],
    kind: str,
) -> None:
    body, headers = _tampered(kind)
    with caplog.at_level(logging.DEBUG):
        response = post_webhook(csrf_client, body, headers=headers)
    assert response.status_code == 400
    assert row_counts() == ZERO
    assert call_api.requests == []
    assert received == []
    security = [r for r in caplog.records if r.name.startswith("django.security.")]
    assert [r.name for r in security] == ["django.security.WebhookVerificationError"]
    _assert_secret_never_shown(caplog.records)


def _assert_secret_never_shown(records: list[logging.LogRecord]) -> None:
    """Neither the secret nor its key bytes appear in any record, nor in the error
    report Django would e-mail to ADMINS for it (traceback frames included)."""
    key_b64 = SECRET.removeprefix("whsec_")
    forbidden = [SECRET, key_b64, key_b64.rstrip("=")]
    for record in records:
        texts = [record.getMessage()]
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
            request = getattr(record, "request", None)
            texts.append(ExceptionReporter(request, *record.exc_info).get_traceback_text())
        for text in texts:
            for secret in forbidden:
                assert secret not in text, record.name


@pytest.mark.django_db
def test_no_secret_configured_refuses_everything(
    csrf_client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "WEBHOOK_SECRETS": []}
    response = post_webhook(csrf_client, {"type": "batch.completed"})
    assert response.status_code == 400
    assert row_counts() == ZERO
    assert any("no webhook secret" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_rotation_second_secret_is_accepted(csrf_client: Client, settings: Any) -> None:
    new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "WEBHOOK_SECRETS": [new, SECRET]}
    assert post_webhook(csrf_client, {"type": "a"}, secret=SECRET).status_code == 200
    assert post_webhook(csrf_client, {"type": "b"}, secret=new).status_code == 200


@pytest.mark.django_db
def test_oversized_body_is_refused_unread(csrf_client: Client, settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "WEBHOOK_MAX_BYTES": 1024}
    payload = {"type": "batch.completed", "data": {"pad": "x" * 2000}}
    response = post_webhook(csrf_client, payload)
    assert response.status_code == 413
    assert row_counts() == ZERO
    # Just under the cap passes.
    small = {"type": "batch.completed", "data": "x" * 900}
    assert post_webhook(csrf_client, small).status_code == 200


@pytest.mark.django_db
def test_oversized_body_without_content_length_is_refused(settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "WEBHOOK_MAX_BYTES": 64}
    from django.test import RequestFactory

    from django_realtime.webhooks import OpenAIWebhookView

    body = json.dumps({"type": "x", "pad": "y" * 100}).encode()
    request = RequestFactory().post(
        webhook_url(), data=body, content_type="application/json", headers=signed_headers(body)
    )
    request.META.pop("CONTENT_LENGTH")
    request._body = body  # a chunked upload: the length is only known once read
    assert OpenAIWebhookView.as_view()(request).status_code == 413
    assert row_counts() == ZERO


# --- realtime.call.incoming ----------------------------------------------------------------


@pytest.mark.django_db
def test_incoming_call_is_accepted_with_the_route_preset(
    csrf_client: Client,
    call_api: CallControlAPI,
    accept_route: SipRoute,
    received: list[dict[str, Any]],
) -> None:
    event = incoming_event("rtc_accept_1")
    validate_against("WebhookRealtimeCallIncoming", event)
    response = post_webhook(csrf_client, event, msg_id="wh_accept_1")
    assert response.status_code == 200

    [request] = call_api.requests
    assert request.method == "POST"
    assert request.url.path == "/v1/realtime/calls/rtc_accept_1/accept"
    body = json.loads(request.content)
    validate_against("RealtimeSessionCreateRequestGA", body)
    assert body["type"] == "realtime"
    assert body["model"] == "gpt-realtime"
    assert body["instructions"] == "You answer the phone for Example Ltd."
    turn = body["audio"]["input"]["turn_detection"]
    assert turn["type"] == "server_vad"
    # Refused for SIP sessions: dropped; the others are kept.
    assert not {"threshold", "prefix_padding_ms", "silence_duration_ms"} & set(turn)
    assert turn["idle_timeout_ms"] == 6000

    call = SipCall.objects.get()
    assert (call.call_id, call.webhook_id, call.status) == (
        "rtc_accept_1",
        "wh_accept_1",
        "accepted",
    )
    assert call.route == accept_route
    assert call.preset == accept_route.preset
    assert call.from_header == '"Alice" <sip:+14155550100@pstn.example.com>;tag=abc'
    assert call.sip_headers[0] == {"name": "From", "value": call.from_header}
    audit = AuditLogEntry.objects.get()
    assert (audit.action, audit.outcome, audit.call_id) == (
        "sip.accept",
        "succeeded",
        "rtc_accept_1",
    )
    assert audit.upstream_status == 200
    assert audit.upstream_request_id.startswith("req_accept_")
    assert audit.preset_slug == "sip-agent"
    assert audit.session_payload == body
    assert audit.user is None
    assert [r["signal"] for r in received] == ["webhook_received", "call_incoming", "call_accepted"]
    assert received[1]["call"].call_id == "rtc_accept_1"
    assert received[2]["audit"] == audit
    assert received[2]["decision"].route == accept_route
    assert WebhookEvent.objects.get().status == "done"


@pytest.mark.django_db
def test_redelivery_of_a_handled_event_is_a_no_op(
    csrf_client: Client,
    call_api: CallControlAPI,
    accept_route: SipRoute,
    received: list[dict[str, Any]],
) -> None:
    event = incoming_event("rtc_replay")
    for _ in range(3):
        # Each redelivery is signed afresh (new timestamp), same webhook-id.
        assert post_webhook(csrf_client, event, msg_id="wh_replay").status_code == 200
    assert len(call_api.to("accept")) == 1
    assert row_counts() == {"events": 1, "calls": 1, "audit": 1}
    assert [r["signal"] for r in received].count("webhook_received") == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        # The same codes as the mint path: one upstream failure, one code.
        (
            httpx.Response(500, json={"error": {"message": "boom", "code": None}}),
            "upstream_error",
        ),
        (httpx.Response(503, headers={"retry-after": "1"}), "upstream_error"),
        (
            httpx.Response(429, json={"error": {"message": "slow", "code": "rate_limit_exceeded"}}),
            "upstream_unavailable",
        ),
        (httpx.ConnectError("refused"), "upstream_error"),
        (httpx.ReadTimeout("slow"), "upstream_timeout"),
    ],
    ids=["500", "503", "429", "connect-error", "timeout"],
)
def test_transient_failure_then_redelivery_accepts_exactly_once(
    csrf_client: Client,
    call_api: CallControlAPI,
    accept_route: SipRoute,
    received: list[dict[str, Any]],
    failure: Any,
    outcome: str,
) -> None:
    call_api.answer_next("accept", failure)
    event = incoming_event("rtc_flaky")

    first = post_webhook(csrf_client, event, msg_id="wh_flaky")
    assert first.status_code == 503
    assert WebhookEvent.objects.get().status == "failed"
    call = SipCall.objects.get()
    assert call.status == "incoming"  # still routable by the redelivery
    failed_audit = AuditLogEntry.objects.get()
    assert (failed_audit.action, failed_audit.outcome) == ("sip.accept", outcome)
    [failure_signal] = [r for r in received if r["signal"] == "call_action_failed"]
    assert failure_signal["transient"] is True
    assert failure_signal["action"] == "accept"

    second = post_webhook(csrf_client, event, msg_id="wh_flaky")
    assert second.status_code == 200
    third = post_webhook(csrf_client, event, msg_id="wh_flaky")
    assert third.status_code == 200

    assert len(call_api.to("accept")) == 2  # the failed one and one success, never more
    assert SipCall.objects.get().status == "accepted"
    outcomes = list(AuditLogEntry.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == [outcome, "succeeded"]
    event_row = WebhookEvent.objects.get()
    assert (event_row.status, event_row.attempts) == ("done", 2)
    assert [r["signal"] for r in received].count("call_incoming") == 1
    assert [r["signal"] for r in received].count("call_accepted") == 1


@pytest.mark.django_db
def test_permanent_failure_is_recorded_and_acknowledged(
    csrf_client: Client,
    call_api: CallControlAPI,
    accept_route: SipRoute,
    received: list[dict[str, Any]],
) -> None:
    call_api.fail_next("accept", 404, "call_id_not_found")
    event = incoming_event("rtc_gone")
    assert post_webhook(csrf_client, event, msg_id="wh_gone").status_code == 200
    call = SipCall.objects.get()
    assert call.status == "failed"
    assert "404" in call.status_detail
    audit = AuditLogEntry.objects.get()
    assert (audit.action, audit.outcome, audit.upstream_status, audit.error_code) == (
        "sip.accept",
        "upstream_error",
        404,
        "call_id_not_found",
    )
    assert audit.upstream_request_id == "req_failed"
    [failure] = [r for r in received if r["signal"] == "call_action_failed"]
    assert failure["transient"] is False
    # OpenAI stops redelivering; if it did not, nothing more happens.
    assert post_webhook(csrf_client, event, msg_id="wh_gone").status_code == 200
    assert len(call_api.requests) == 1


@pytest.mark.django_db
def test_signal_receiver_error_leaves_the_event_reprocessable(
    call_api: CallControlAPI, accept_route: SipRoute
) -> None:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)

    def explode(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    webhook_received.connect(explode)
    try:
        assert post_webhook(client, incoming_event("rtc_sig"), msg_id="wh_sig").status_code == 500
    finally:
        webhook_received.disconnect(explode)
    assert WebhookEvent.objects.get().status == "failed"
    assert post_webhook(client, incoming_event("rtc_sig"), msg_id="wh_sig").status_code == 200
    assert len(call_api.to("accept")) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("call_id", [None, "", "rtc/../../x", "x" * 200, 42])
def test_unusable_call_id_is_acknowledged_without_action(
    csrf_client: Client, call_api: CallControlAPI, call_id: Any
) -> None:
    event = incoming_event("rtc_x")
    event["data"]["call_id"] = call_id
    assert post_webhook(csrf_client, event).status_code == 200
    assert call_api.requests == []
    assert SipCall.objects.count() == 0


@pytest.mark.django_db
def test_hostile_sip_headers_are_stored_capped(
    csrf_client: Client, call_api: CallControlAPI
) -> None:
    event = incoming_event("rtc_hostile")
    event["data"]["sip_headers"] = [
        {"name": "From", "value": "<sip:" + "9" * 5000 + "@evil.example>"},
        {"name": "To\r\nX-Injected", "value": "sip:+1@x\r\n"},
        {"name": 7, "value": "x"},
        "not an object",
        *[{"name": f"X-{i}", "value": "v"} for i in range(500)],
    ]
    assert post_webhook(csrf_client, event).status_code == 200
    call = SipCall.objects.get()
    assert len(call.from_header) <= 512
    assert len(call.sip_headers) <= 64
    assert all(set(h) == {"name", "value"} for h in call.sip_headers)
    assert call.sip_headers[1] == {"name": "ToX-Injected", "value": "sip:+1@x"}
    # No route: the default action (reject 603) was applied.
    assert call_api.bodies("reject") == [{"status_code": 603}]


# --- concurrency ---------------------------------------------------------------------------


@pytest.fixture
def concurrent_db(transactional_db: None, tmp_path: Path) -> Iterator[None]:
    """A database where concurrent writers wait for each other, as on PostgreSQL.

    The test settings use a shared-cache in-memory SQLite database, where a second
    writer fails at once with "database table is locked" instead of waiting: an
    artefact of that mode, not of the app. For these tests only, the default alias
    points at a fresh SQLite *file* (real file locks, a busy timeout). On any other
    database (e.g. PostgreSQL in CI) the configured one is used as is.
    """
    from django.core.management import call_command
    from django.db import connections

    alias = connections.settings["default"]
    in_memory = alias["ENGINE"].endswith("sqlite3") and "memory" in str(alias["NAME"])
    if not in_memory:
        yield
        return
    saved_settings = {**alias}
    saved_connection = connections["default"]  # kept open: closing it drops the memory DB
    alias["NAME"] = str(tmp_path / "concurrency.sqlite3")
    alias["OPTIONS"] = {**alias.get("OPTIONS", {}), "timeout": 20}
    connections["default"] = connections.create_connection("default")
    try:
        call_command("migrate", verbosity=0)
        yield
    finally:
        connections["default"].close()
        alias.clear()
        alias.update(saved_settings)
        connections["default"] = saved_connection


def _deliver_in_threads(
    n: int, event: dict[str, Any], msg_id: str, *, hold: CallControlAPI | None = None
) -> list[int]:
    """POST the same delivery from ``n`` threads released together; their status codes.

    With ``hold``, the first ``accept`` upstream is held open until the other ``n - 1``
    deliveries have answered, so every one of them overlaps the one in flight."""
    body = json.dumps(event).encode()
    headers = signed_headers(body, msg_id=msg_id)
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    errors: list[BaseException] = []
    answered = threading.Semaphore(0)
    if hold is not None:
        hold.gate = threading.Event()

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            response = Client(enforce_csrf_checks=True).post(
                webhook_url(), data=body, content_type="application/json", headers=headers
            )
            statuses.append(response.status_code)
        except BaseException as err:  # surfaced in the main thread below
            errors.append(err)
        finally:
            connection.close()  # each thread has its own connection
            answered.release()

    threads = [threading.Thread(target=deliver) for _ in range(n)]
    for thread in threads:
        thread.start()
    if hold is not None and hold.gate is not None:
        try:
            assert hold.entered.wait(timeout=10), "no delivery reached upstream"
            for _ in range(n - 1):  # a second accept would block here: the test fails
                assert answered.acquire(timeout=10), "a delivery waited on the one in flight"
        finally:
            hold.gate.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return statuses


def test_concurrent_deliveries_of_one_id_accept_once(
    concurrent_db: None, call_api: CallControlAPI, file_accept_route: SipRoute
) -> None:
    statuses = _deliver_in_threads(8, incoming_event("rtc_race"), "wh_race", hold=call_api)
    # The winner's accept is held upstream until the seven others have answered, so
    # each of them overlapped it and answers 409 ("being handled": OpenAI redelivers
    # later, and that redelivery is a no-op).
    assert sorted(statuses) == [200] + [409] * 7
    assert len(call_api.to("accept")) == 1
    assert row_counts() == {"events": 1, "calls": 1, "audit": 1}
    assert WebhookEvent.objects.get().status == "done"


def test_concurrent_delivery_while_the_first_is_in_flight(
    concurrent_db: None, call_api: CallControlAPI, file_accept_route: SipRoute
) -> None:
    """Deterministic interleaving: the second delivery arrives while the first one's
    accept request is held open upstream."""
    call_api.gate = threading.Event()
    event = incoming_event("rtc_inflight")
    results: dict[str, int] = {}

    def first() -> None:
        try:
            results["first"] = post_webhook(Client(), event, msg_id="wh_inflight").status_code
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert call_api.entered.wait(timeout=10)
    try:
        second = post_webhook(Client(), event, msg_id="wh_inflight")
    finally:
        call_api.gate.set()
        thread.join(timeout=30)
    assert second.status_code == 409
    assert results["first"] == 200
    assert post_webhook(Client(), event, msg_id="wh_inflight").status_code == 200
    assert len(call_api.to("accept")) == 1
    assert SipCall.objects.get().status == "accepted"


def test_concurrent_redeliveries_after_a_transient_failure_accept_once(
    concurrent_db: None, call_api: CallControlAPI, file_accept_route: SipRoute
) -> None:
    call_api.fail_next("accept", 500)
    event = incoming_event("rtc_race_retry")
    assert post_webhook(Client(), event, msg_id="wh_race_retry").status_code == 503
    statuses = _deliver_in_threads(6, event, "wh_race_retry", hold=call_api)
    assert sorted(statuses) == [200] + [409] * 5
    accepts = call_api.to("accept")
    assert len(accepts) == 2  # the failed one, then exactly one more
    assert SipCall.objects.get().status == "accepted"
    assert WebhookEvent.objects.get().attempts == 2


TWO_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import django
    from django.conf import settings
    import tests.settings as base

    db_path, body_path, msg_id, gate_path, log_path = sys.argv[1:6]
    values = {k: getattr(base, k) for k in dir(base) if k.isupper()}
    values["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db_path,
                                       "OPTIONS": {"timeout": 20}}}
    values["DJANGO_REALTIME"] = {**base.DJANGO_REALTIME, "MAX_RETRIES": 0}
    settings.configure(**values)
    django.setup()
    import httpx
    from django.test import Client
    from django_realtime import client

    def answer(request):
        with open(log_path, "a") as log:  # O_APPEND: one line per request, both processes
            log.write(request.url.path + "\\n")
        # Held in flight until the test opens the gate (it does once the other
        # process has answered, or once a second accept shows the dedupe failed).
        deadline = time.monotonic() + 30
        while not os.path.exists(gate_path) and time.monotonic() < deadline:
            time.sleep(0.01)
        return httpx.Response(200, headers={"x-request-id": "req_proc"})

    client.set_transport(httpx.MockTransport(answer))
    body = open(body_path, "rb").read()
    from django_realtime import signing
    headers = signing.sign(body, secret=base.DJANGO_REALTIME["WEBHOOK_SECRETS"][0],
                           msg_id=msg_id, timestamp=int(time.time()))
    response = Client().post("/realtime/webhooks/openai/", data=body,
                             content_type="application/json", headers=headers)
    print(response.status_code)
    """
)


@pytest.mark.django_db
def test_two_processes_deliver_one_id_accept_once(tmp_path: Path) -> None:
    """Two OS processes, one SQLite file (real file locks), the same delivery: the
    first accept is held upstream (a file gate) until the other process has answered,
    so the two overlap; one accept upstream. Schema and route are created first."""
    import time

    db_path = tmp_path / "db.sqlite3"
    setup = textwrap.dedent(
        """
        import sys, django
        from django.conf import settings
        import tests.settings as base
        values = {k: getattr(base, k) for k in dir(base) if k.isupper()}
        values["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3",
                                           "NAME": sys.argv[1]}}
        settings.configure(**values)
        django.setup()
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        from django_realtime.models import SessionPreset
        from django_realtime.sip.models import SipRoute
        preset = SessionPreset.objects.create(slug="p", name="P", model="gpt-realtime")
        SipRoute.objects.create(name="all", match_type="any", action="accept", preset=preset)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    subprocess.run([sys.executable, "-c", setup, str(db_path)], check=True, env=env, timeout=60)
    body_path = tmp_path / "event.json"
    body_path.write_text(json.dumps(incoming_event("rtc_two_procs")))
    log_path = tmp_path / "upstream.log"
    log_path.touch()
    gate_path = tmp_path / "gate"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                TWO_PROCESS_SCRIPT,
                str(db_path),
                str(body_path),
                "wh_two_procs",
                str(gate_path),
                str(log_path),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        accepts = [ln for ln in log_path.read_text().splitlines() if ln.endswith("/accept")]
        if len(accepts) > 1 or (accepts and any(p.poll() is not None for p in procs)):
            break
        time.sleep(0.01)
    gate_path.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    statuses = sorted(int(out.strip().splitlines()[-1]) for out, _ in outputs)
    accepts = [line for line in log_path.read_text().splitlines() if line.endswith("/accept")]
    assert accepts == ["/v1/realtime/calls/rtc_two_procs/accept"]
    assert statuses == [200, 409]


# --- against the project's fake Realtime API (django_realtime.testing) ------------------------


@pytest.fixture
def fake(no_retries: None, realtime_fake: FakeRealtimeAPI) -> FakeRealtimeAPI:  # noqa: F811
    return realtime_fake


@pytest.mark.django_db
def test_fake_api_accepts_a_registered_sip_call(
    csrf_client: Client, fake: FakeRealtimeAPI, accept_route: SipRoute
) -> None:
    fake.add_sip_call("rtc_fake_ok")
    assert post_webhook(csrf_client, incoming_event("rtc_fake_ok")).status_code == 200
    call = fake.get_call("rtc_fake_ok")
    assert call.state == "accepted"
    assert [a["action"] for a in call.actions] == ["accept"]
    assert call.actions[0]["body"]["type"] == "realtime"
    assert SipCall.objects.get().status == "accepted"


@pytest.mark.django_db
def test_fake_api_unknown_call_is_a_permanent_failure(
    csrf_client: Client, fake: FakeRealtimeAPI, accept_route: SipRoute
) -> None:
    assert post_webhook(csrf_client, incoming_event("rtc_fake_gone")).status_code == 200
    assert SipCall.objects.get().status == "failed"
    audit = AuditLogEntry.objects.get()
    assert (audit.outcome, audit.upstream_status, audit.error_code) == (
        "upstream_error",
        404,
        "call_id_not_found",
    )
    assert audit.upstream_request_id


@pytest.mark.django_db
def test_fake_api_500_then_redelivery_accepts_once(
    csrf_client: Client, fake: FakeRealtimeAPI, accept_route: SipRoute
) -> None:
    fake.add_sip_call("rtc_fake_flaky")
    fake.fail_next("/realtime/calls/*/accept", 500)
    event = incoming_event("rtc_fake_flaky")
    assert post_webhook(csrf_client, event, msg_id="wh_fake_flaky").status_code == 503
    assert fake.get_call("rtc_fake_flaky").actions == []
    assert post_webhook(csrf_client, event, msg_id="wh_fake_flaky").status_code == 200
    assert post_webhook(csrf_client, event, msg_id="wh_fake_flaky").status_code == 200
    assert [a["action"] for a in fake.get_call("rtc_fake_flaky").actions] == ["accept"]
    assert len(fake.requests_to("/realtime/calls/rtc_fake_flaky/accept")) == 2


@pytest.mark.django_db
def test_fake_api_reject_and_refer_routes(csrf_client: Client, fake: FakeRealtimeAPI) -> None:
    SipRoute.objects.create(
        name="busy",
        match_field="from",
        match_type="exact",
        pattern="+14155550100",
        action="reject",
        status_code=486,
    )
    SipRoute.objects.create(
        name="desk",
        priority=200,
        match_type="any",
        action="refer",
        target_uri="sip:desk@pbx.example.com",
    )
    fake.add_sip_call("rtc_fake_busy")
    fake.add_sip_call("rtc_fake_desk")
    assert post_webhook(csrf_client, incoming_event("rtc_fake_busy")).status_code == 200
    other = incoming_event("rtc_fake_desk", from_="<sip:+442000000000@carrier.example>")
    assert post_webhook(csrf_client, other).status_code == 200
    assert fake.get_call("rtc_fake_busy").reject_status == 486
    assert fake.get_call("rtc_fake_desk").refer_target == "sip:desk@pbx.example.com"
