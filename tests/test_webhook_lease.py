"""A delivery claimed by a worker that died mid-event is taken over once its lease ends.

The dead worker is a ``processing`` row nobody will finish. Time is moved with
time-machine rather than waited for: a redelivery inside the lease answers 409 and
calls nothing upstream; one a day later (far past any sensible lease) takes the event
over, accepts the call once and finishes the row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import Client

from django_realtime import client as upstream_client
from django_realtime.models import SessionPreset, WebhookEvent, WebhookEventStatus
from django_realtime.sip.models import SipCall, SipRoute
from tests.sip_helpers import CallControlAPI, incoming_event, install_call_api, post_webhook

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def call_api(settings: Any) -> Iterator[CallControlAPI]:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": 0}
    api = install_call_api()
    yield api
    upstream_client.set_transport(None)


@pytest.fixture
def route(db: None) -> SipRoute:
    preset = SessionPreset.objects.create(slug="sip", name="SIP", model="gpt-realtime")
    return SipRoute.objects.create(name="all", match_type="any", action="accept", preset=preset)


@pytest.mark.django_db
def test_a_stale_claim_is_taken_over_by_a_redelivery(
    call_api: CallControlAPI, route: SipRoute
) -> None:
    event = incoming_event("rtc_orphan")
    with time_machine.travel(START, tick=False) as clock:
        # What a worker that claimed the event and then died leaves behind.
        WebhookEvent.objects.create(
            webhook_id="wh_orphan",
            event_type="realtime.call.incoming",
            status=WebhookEventStatus.PROCESSING,
        )
        clock.shift(dt.timedelta(seconds=1))
        assert post_webhook(Client(), event, msg_id="wh_orphan").status_code == 409
        assert call_api.to("accept") == []

        clock.shift(dt.timedelta(days=1))
        assert post_webhook(Client(), event, msg_id="wh_orphan").status_code == 200
        assert len(call_api.to("accept")) == 1
        row = WebhookEvent.objects.get()
        assert (row.status, row.attempts) == (WebhookEventStatus.DONE, 2)
        assert row.updated_at == START + dt.timedelta(days=1, seconds=1)
        assert SipCall.objects.get().status == "accepted"

        # Taken over and finished: a further redelivery is a no-op.
        assert post_webhook(Client(), event, msg_id="wh_orphan").status_code == 200
        assert len(call_api.to("accept")) == 1
