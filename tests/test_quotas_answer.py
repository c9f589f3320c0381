"""The mint answer carries ``remaining_minutes`` (issue 10): what the quota check found,
at no extra query; ``null`` without a minute limit. (A relay answers SDP, no JSON.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_realtime import quotas
from django_realtime.models import RealtimeCall, SessionPreset, UsageLimit
from django_realtime.testing import FakeRealtimeAPI
from tests.conftest import CheckedAPIClient

pytestmark = pytest.mark.django_db

MINT = "/realtime/client-secrets/"
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=ZoneInfo("UTC"))


def mint(api: CheckedAPIClient, slug: str = "voice") -> Any:
    return api.post(MINT, {"preset": slug}, format="json")


def talked(user: User, preset: SessionPreset, minutes: float, call_id: str) -> None:
    start = timezone.now() - timedelta(minutes=minutes)
    RealtimeCall.objects.create(
        call_id=call_id,
        origin="relay",
        user=user,
        preset=preset,
        status="ended",
        attached_at=start,
        ended_at=timezone.now(),
    )


@pytest.fixture
def voice(make_preset: Callable[..., SessionPreset]) -> SessionPreset:
    return make_preset("voice")


def test_no_minute_limit_answers_null(
    api_client: CheckedAPIClient, voice: SessionPreset, realtime_fake: FakeRealtimeAPI
) -> None:
    response = mint(api_client)
    assert response.status_code == 201
    assert response.json()["remaining_minutes"] is None
    UsageLimit.objects.create(max_concurrent_calls=3)  # a limit, but not on minutes
    assert mint(api_client).json()["remaining_minutes"] is None


def test_the_minutes_left_under_the_most_generous_row(
    api_client: CheckedAPIClient, voice: SessionPreset, realtime_fake: FakeRealtimeAPI, user: User
) -> None:
    with time_machine.travel(NOON, tick=False):
        UsageLimit.objects.create(minutes_per_day=10)
        talked(user, voice, 3.5, "rtc_a")
        answer = mint(api_client).json()
        assert answer["remaining_minutes"] == 6.5
        assert answer["remaining_minutes"] == round(quotas.remaining_minutes(user, voice) or 0, 1)
        pro = Group.objects.create(name="pro")
        UsageLimit.objects.create(group=pro, preset=voice, minutes_per_day=30)
        user.groups.add(pro)
        assert mint(api_client).json()["remaining_minutes"] == 26.5
        talked(user, voice, 26.5, "rtc_b")  # the pro row's 30 minutes used up: refused
        assert mint(api_client).status_code == 429


def test_the_figure_costs_no_query_of_its_own(
    api_client: CheckedAPIClient, voice: SessionPreset, realtime_fake: FakeRealtimeAPI
) -> None:
    def limit_queries(expected: float | None) -> list[str]:
        mint(api_client)  # warm the preset and limit memo
        with CaptureQueriesContext(connection) as captured:
            assert mint(api_client).json()["remaining_minutes"] == expected
        return [q["sql"] for q in captured.captured_queries if "usagelimit" in q["sql"]]

    assert limit_queries(None) == []  # no limits on the site: the memo says so, no look-up
    UsageLimit.objects.create(minutes_per_day=10)
    # The quota check's own look-up, and nothing after the upstream call for the figure.
    assert len(limit_queries(10.0)) == 1


def test_minutes_left_rounds_to_a_tenth_and_never_goes_below_zero() -> None:
    assert quotas.minutes_left(None) is None
    assert quotas.minutes_left(90) == 1.5
    assert quotas.minutes_left(100) == 1.7
    assert quotas.minutes_left(-30) == 0.0
