"""A site with ``ATOMIC_REQUESTS = True``: mint, relay and webhook still answer as
usual and write their rows, and an upstream failure keeps its audit row: DRF rolls back
the request's transaction when it turns an exception into an error answer, so our views
are ``non_atomic_requests``."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections
from django.test import Client

from django_realtime.models import AuditLogEntry, SessionPreset, WebhookEvent
from tests.conftest import OFFER_SDP, CheckedAPIClient, Upstream
from tests.sip_helpers import post_webhook


@pytest.fixture(autouse=True)
def atomic_requests(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Django's handler reads this per request (BaseHandler.make_view_atomic). A
    # transactional database: inside the test's own atomic block DRF's error handler
    # would mark that block for rollback, which no real request has around it.
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)


@pytest.fixture
def no_retries(settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": 0}


def outcomes() -> list[str]:
    return list(AuditLogEntry.objects.order_by("pk").values_list("outcome", flat=True))


def test_mint_issues_and_audits(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    response = api_client.post("/realtime/client-secrets/", {"preset": "assistant"}, format="json")
    assert response.status_code == 201
    assert outcomes() == ["issued"]


def test_mint_upstream_failure_keeps_its_audit_row(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream, no_retries: None
) -> None:
    upstream.error(500, message="boom")
    response = api_client.post("/realtime/client-secrets/", {"preset": "assistant"}, format="json")
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_error"
    assert outcomes() == ["upstream_error"]


def test_relay_connects_and_audits(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream
) -> None:
    response = api_client.post(
        "/realtime/calls/?preset=assistant", data=OFFER_SDP, content_type="application/sdp"
    )
    assert response.status_code == 201
    assert len(outcomes()) == 1


def test_relay_upstream_failure_keeps_its_audit_row(
    api_client: CheckedAPIClient, preset: SessionPreset, upstream: Upstream, no_retries: None
) -> None:
    upstream.error(500, message="boom")
    response = api_client.post(
        "/realtime/calls/?preset=assistant", data=OFFER_SDP, content_type="application/sdp"
    )
    assert response.status_code == 502
    assert outcomes() == ["upstream_error"]


def test_webhook_records_its_event() -> None:
    event = {"id": "evt_1", "object": "event", "type": "response.completed", "data": {}}
    assert post_webhook(Client(), event, msg_id="wh_atomic").status_code == 200
    assert WebhookEvent.objects.get().status == "done"
