"""Crash-safe records: the audit row exists before the upstream call, a dead process's
rows and webhook claims expire after ``PROCESSING_TIMEOUT``, anonymous floods are
counted, not stored.

"Crashing" in-process: the upstream stand-in raises ``BaseException`` (what a
``SystemExit``/``KeyboardInterrupt`` or a killed thread looks like to the view) while
the secret has been minted; the row must already be there. The real SIGKILL of a
server process is in ``tests/scaleout/test_crash.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import httpx
import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_realtime import checks
from django_realtime.audit import mark_abandoned
from django_realtime.models import AuditLogEntry, RefusedTraffic, SessionPreset, WebhookEvent
from django_realtime.sip.models import SipCall
from django_realtime.webhooks import processing_lease
from tests.api_helpers import assert_error
from tests.conftest import MINTED, CheckedAPIClient, Upstream, secret_response
from tests.sip_helpers import post_webhook, signed_headers, webhook_url

MINT = "/realtime/client-secrets/"

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """Stands in for the process dying during the upstream call."""


# --- 11. the row exists before the upstream call ------------------------------------------


def test_mint_row_is_written_before_the_upstream_call(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    seen: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(list(AuditLogEntry.objects.values_list("outcome", flat=True)))
        return secret_response()

    upstream.queue(answer)
    response = api_client.post(MINT, {"preset": "assistant"}, format="json")
    assert response.status_code == 201
    assert seen == [["pending"]]
    row = AuditLogEntry.objects.get()
    assert (row.outcome, row.username) == ("issued", "alice")
    assert row.secret_fingerprint


def test_a_crash_mid_call_leaves_a_pending_row_that_prune_marks_abandoned(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    def die(request: httpx.Request) -> httpx.Response:
        MINTED.append("ek_never_seen")  # minted upstream, never answered
        raise Killed()

    upstream.queue(die)
    with pytest.raises(Killed):
        api_client.post(MINT, {"preset": "assistant"}, format="json")
    row = AuditLogEntry.objects.get()
    assert (row.outcome, row.username, row.preset_slug) == ("pending", "alice", "assistant")
    assert row.session_payload is not None

    # Not yet past the timeout: left alone.
    assert mark_abandoned() == 0
    AuditLogEntry.objects.update(created_at=timezone.now() - timedelta(hours=1))
    out = StringIO()
    call_command("realtime_prune", "--abandon-only", stdout=out)
    assert "Marked 1 unfinished audit log entries abandoned." in out.getvalue()
    row.refresh_from_db()
    assert (row.outcome, row.error_code) == ("abandoned", "abandoned")
    assert mark_abandoned() == 0  # idempotent


def test_prune_keeps_pending_rows_however_old(preset: SessionPreset) -> None:
    old = timezone.now() - timedelta(days=90)
    pending = AuditLogEntry.objects.create(action="mint", outcome="pending")
    done = AuditLogEntry.objects.create(action="mint", outcome="issued")
    AuditLogEntry.objects.filter(pk__in=[pending.pk, done.pk]).update(created_at=old)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "django_realtime.management.commands.realtime_prune.mark_abandoned", lambda: 0
        )
        call_command("realtime_prune", "--audit-days", "30", stdout=StringIO())
    assert list(AuditLogEntry.objects.values_list("outcome", flat=True)) == ["pending"]


def test_failures_after_the_pending_row_finish_it_once(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    upstream.error(500, times=3)
    response = api_client.post(MINT, {"preset": "assistant"}, format="json")
    assert_error(response, 502, "upstream_error")
    row = AuditLogEntry.objects.get()
    assert (row.outcome, row.upstream_status) == ("upstream_error", 500)


def test_crash_safe_audit_costs_one_query_per_mint(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    api_client.post(MINT, {"preset": "assistant"}, format="json")  # warm the session
    with CaptureQueriesContext(connection) as queries:
        response = api_client.post(MINT, {"preset": "assistant"}, format="json")
    assert response.status_code == 201
    audit = [q["sql"] for q in queries.captured_queries if "auditlogentry" in q["sql"].lower()]
    assert [sql.split()[0] for sql in audit] == ["INSERT", "UPDATE"]


def test_sip_action_row_is_written_before_the_upstream_call(preset: SessionPreset) -> None:
    from django_realtime import client as upstream_client
    from django_realtime.sip import actions

    call = SipCall.objects.create(call_id="rtc_crash_1", webhook_id="wh_rtc_crash_1")
    seen: list[list[tuple[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(list(AuditLogEntry.objects.values_list("outcome", "call_id")))
        raise Killed()

    upstream_client.set_transport(httpx.MockTransport(handler))
    with pytest.raises(Killed):
        actions.reject(call, 486)
    assert seen == [[("pending", "rtc_crash_1")]]
    assert AuditLogEntry.objects.get().action == "sip.reject"


# --- 12. a crashed webhook's claim expires with PROCESSING_TIMEOUT --------------------------


def _delivery(msg_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "test.event", "data": {}}).encode()
    return body, signed_headers(body, msg_id=msg_id)


def test_processing_lease_is_the_processing_timeout(settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "PROCESSING_TIMEOUT": 45}
    assert processing_lease() == timedelta(seconds=45)
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "PROCESSING_TIMEOUT": None}
    # TIMEOUT 10 x 3 attempts + RETRY_AFTER_CAP 60 x 2 retries + 60.
    assert processing_lease() == timedelta(seconds=210)


def test_redelivery_takes_over_a_dead_claim_after_the_timeout(settings: Any) -> None:
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "PROCESSING_TIMEOUT": 40,
        "TIMEOUT": 5,
        "MAX_RETRIES": 0,
    }
    WebhookEvent.objects.create(webhook_id="wh_dead", event_type="test.event")
    body, headers = _delivery("wh_dead")
    client = Client()

    WebhookEvent.objects.update(updated_at=timezone.now() - timedelta(seconds=30))
    busy = post_webhook(client, body, headers=headers)
    assert busy.status_code == 409
    assert busy.json()["code"] == "webhook_in_progress"
    assert busy["Cache-Control"] == "no-store"

    WebhookEvent.objects.update(updated_at=timezone.now() - timedelta(seconds=41))
    taken = post_webhook(client, body, headers=headers)
    assert taken.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == ("done", 2)


@pytest.mark.parametrize(
    ("value", "fails"), [(0, True), (-5, True), (10, True), (90, False), (None, False)]
)
def test_processing_timeout_is_checked_against_one_upstream_call(
    settings: Any, value: Any, fails: bool
) -> None:
    # TIMEOUT 10, MAX_RETRIES 2, RETRY_AFTER_CAP 20: one call may take 10 x 3 + 20 x 2 = 70 s.
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "TIMEOUT": 10,
        "MAX_RETRIES": 2,
        "RETRY_AFTER_CAP": 20,
        "PROCESSING_TIMEOUT": value,
    }
    ids = [m.id for m in checks.check_settings()]
    assert ("django_realtime.E016" in ids) is fails


# --- 9. anonymous traffic is budgeted per address -----------------------------------------


def test_anonymous_flood_is_counted_not_stored(
    anon_client: CheckedAPIClient,
    preset: SessionPreset,
    upstream: Upstream,
    settings: Any,
    freeze_minute: Callable[[], None],
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "ANONYMOUS_RATE": "5/m"}
    freeze_minute()
    statuses = [
        anon_client.post(MINT, {"preset": "assistant"}, format="json").status_code
        for _ in range(40)
    ]
    assert statuses == [403] * 5 + [429] * 35
    assert AuditLogEntry.objects.count() == 5
    assert set(AuditLogEntry.objects.values_list("outcome", flat=True)) == {"forbidden"}
    refused = RefusedTraffic.objects.get()
    assert (refused.client_ip, refused.count) == ("127.0.0.1", 35)
    assert upstream.calls == 0
    over = anon_client.post(MINT, {"preset": "assistant"}, format="json")
    assert_error(over, 429, "rate_limited")
    assert int(over["Retry-After"]) >= 1


def test_anonymous_budget_is_per_address(
    preset: SessionPreset, settings: Any, freeze_minute: Callable[[], None]
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "ANONYMOUS_RATE": "2/m"}
    freeze_minute()
    first, second = Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")
    codes = [first.post(MINT).status_code for _ in range(3)]
    codes += [second.post(MINT).status_code for _ in range(3)]
    assert codes == [403, 403, 429, 403, 403, 429]
    assert AuditLogEntry.objects.count() == 4
    assert dict(RefusedTraffic.objects.values_list("client_ip", "count")) == {
        "10.0.0.1": 1,
        "10.0.0.2": 1,
    }


def test_signed_in_users_do_not_touch_the_anonymous_budget(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream, settings: Any
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "ANONYMOUS_RATE": "1/m"}
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert api_client.post(MINT, {"preset": "assistant"}, format="json").status_code == 201
    assert not RefusedTraffic.objects.exists()
    assert not any("refusedtraffic" in q["sql"].lower() for q in queries.captured_queries)


def test_webhook_refusals_write_nothing() -> None:
    response = Client().post(webhook_url(), b"{}", content_type="application/json")
    assert response.status_code == 400
    assert not AuditLogEntry.objects.exists()
    assert not RefusedTraffic.objects.exists()


@pytest.fixture
def freeze_minute() -> Iterator[Callable[[], None]]:
    """Stop the clock in the middle of a minute: django-ratelimit's window does not roll
    over and every refused attempt falls in one ``RefusedTraffic`` minute."""
    travellers: list[Any] = []

    def freeze() -> None:
        now = (int(time.time()) // 60) * 60 + 30
        traveller = time_machine.travel(now, tick=False)
        traveller.start()
        travellers.append(traveller)

    yield freeze
    for traveller in travellers:
        traveller.stop()


def test_anonymous_budget_without_a_client_address(preset: SessionPreset) -> None:
    # Some in-process WSGI/ASGI callers send no REMOTE_ADDR: still counted, not a 503.
    response = Client(REMOTE_ADDR="").post(MINT)
    assert_error(response, 403, "not_authenticated")
    assert AuditLogEntry.objects.get().client_ip is None


def test_refused_traffic_is_readable_in_the_admin(make_user: Callable[..., Any]) -> None:
    RefusedTraffic.objects.create(client_ip="10.0.0.9", minute=timezone.now(), count=7)
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get("/admin/django_realtime/refusedtraffic/")
    assert page.status_code == 200
    assert b"10.0.0.9" in page.content
    assert browser.get("/admin/django_realtime/refusedtraffic/add/").status_code == 403
