"""A site without usage limits spends no query on quotas per mint, and a limit saved or
deleted applies from the next request (the preset cache's shared version moves)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_realtime import preset_cache
from django_realtime.models import SessionPreset, UsageLimit
from django_realtime.testing import FakeRealtimeAPI
from tests.api_helpers import assert_error
from tests.conftest import CheckedAPIClient

MINT = "/realtime/client-secrets/"


def limit_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "usagelimit" in q["sql"]]


@pytest.mark.django_db
def test_no_limit_rows_means_no_quota_query_and_a_new_limit_applies_at_once(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    realtime_fake: FakeRealtimeAPI,
) -> None:
    make_preset("voice")
    preset_cache.clear_local()
    assert api_client.post(MINT, {"preset": "voice"}, format="json").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        answer = api_client.post(MINT, {"preset": "voice"}, format="json")
    assert answer.status_code == 201
    assert limit_queries(queries) == []  # memoised: no limits, no lookup
    limit = UsageLimit.objects.create(minutes_per_day=0)  # the save moves the version
    with CaptureQueriesContext(connection) as queries:
        refused = api_client.post(MINT, {"preset": "voice"}, format="json")
    assert_error(refused, 429, "quota_exceeded")
    assert limit_queries(queries) != []  # the gate read the limits again
    limit.delete()
    assert api_client.post(MINT, {"preset": "voice"}, format="json").status_code == 201
    assert len(realtime_fake.requests_to("/realtime/client_secrets")) == 3


@pytest.mark.django_db
def test_an_unreadable_version_means_limits_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preset_cache, "current_version", lambda: None)
    assert preset_cache.usage_limits_exist() is True  # cannot know: let quotas look
