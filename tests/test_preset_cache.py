"""Presets served from process memory, invalidated through the shared cache's version.

"Another process" here is what another process shares with this one: the database
and the cache. A change made behind this process's back (``QuerySet.update()``,
which sends no signal) stays invisible until the shared version changes, which is
what a save on any process does; the cross-process proof with real processes is
in ``tests/scaleout/test_fast_paths.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_realtime import preset_cache
from django_realtime.models import AuditLogEntry, SessionPreset
from django_realtime.testing import FakeRealtimeAPI
from tests.conftest import CheckedAPIClient

URL = "/realtime/client-secrets/"

pytestmark = pytest.mark.django_db


def mint(api: CheckedAPIClient, slug: str = "assistant") -> Any:
    return api.post(URL, {"preset": slug}, format="json")


def preset_queries(api: CheckedAPIClient, slug: str = "assistant") -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = mint(api, slug)
    sql = [q["sql"] for q in captured.captured_queries if "sessionpreset" in q["sql"]]
    return response, sql


def test_second_mint_reads_no_preset_row(
    api_client: CheckedAPIClient, preset: SessionPreset, realtime_fake: FakeRealtimeAPI
) -> None:
    first, first_sql = preset_queries(api_client)
    second, second_sql = preset_queries(api_client)

    assert (first.status_code, second.status_code) == (201, 201)
    assert len(first_sql) == 2  # the preset, its groups
    assert second_sql == []
    assert AuditLogEntry.objects.filter(outcome="issued").count() == 2


def test_a_change_elsewhere_shows_once_the_shared_version_changes(
    api_client: CheckedAPIClient, preset: SessionPreset, realtime_fake: FakeRealtimeAPI
) -> None:
    assert mint(api_client).json()["model"] == "gpt-realtime"
    before = cache.get(preset_cache.VERSION_KEY)
    # Another process's write: the row changes, this process is not told.
    SessionPreset.objects.filter(pk=preset.pk).update(model="gpt-realtime-mini")
    assert mint(api_client).json()["model"] == "gpt-realtime"  # served from memory

    preset_cache.invalidate()  # what that process's save does to the shared cache

    assert cache.get(preset_cache.VERSION_KEY) != before
    assert mint(api_client).json()["model"] == "gpt-realtime-mini"


def test_save_is_seen_by_the_next_request(
    api_client: CheckedAPIClient, preset: SessionPreset, realtime_fake: FakeRealtimeAPI
) -> None:
    assert mint(api_client).status_code == 201
    preset.model = "gpt-realtime-mini"
    preset.save()
    assert mint(api_client).json()["model"] == "gpt-realtime-mini"
    preset.is_active = False
    preset.save()
    response = mint(api_client)
    assert (response.status_code, response.json()["code"]) == (404, "preset_not_found")


def test_delete_is_seen_by_the_next_request(
    api_client: CheckedAPIClient, preset: SessionPreset, realtime_fake: FakeRealtimeAPI
) -> None:
    assert mint(api_client).status_code == 201
    preset.delete()
    assert mint(api_client).status_code == 404


def test_group_changes_invalidate(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    user: User,
    realtime_fake: FakeRealtimeAPI,
) -> None:
    teachers = Group.objects.create(name="teachers")
    assert mint(api_client).status_code == 201

    preset.allowed_groups.add(teachers)  # m2m_changed
    refused = mint(api_client)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")

    user.groups.add(teachers)  # the user's own groups are never cached
    assert mint(api_client).status_code == 201

    user.groups.remove(teachers)
    assert mint(api_client).status_code == 403
    teachers.delete()  # no m2m_changed: the group's delete invalidates
    assert mint(api_client).status_code == 201


def test_version_survives_a_cache_flush(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    realtime_fake: FakeRealtimeAPI,
) -> None:
    preset = make_preset("assistant")
    assert mint(api_client).status_code == 201
    cache.clear()  # Redis restarted: a new version is made, the memo starts again
    SessionPreset.objects.filter(pk=preset.pk).update(model="gpt-realtime-mini")
    assert mint(api_client).json()["model"] == "gpt-realtime-mini"


def test_unreadable_cache_reads_the_database(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert preset_cache.active_preset("assistant") == preset

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", broken)
    SessionPreset.objects.filter(pk=preset.pk).update(model="gpt-realtime-mini")
    with CaptureQueriesContext(connection) as captured:
        found = preset_cache.active_preset("assistant")
    assert found is not None
    assert found.model == "gpt-realtime-mini"
    assert len(captured.captured_queries) == 2
    assert preset_cache.active_preset("nope") is None
