"""One-row statements (``django_realtime.rows``): the same rows as the ORM writes.

Each test writes a row both ways (the ORM's ``save`` / ``QuerySet.update`` and the
helper) and compares what the database then holds, column by column; and checks what
was sent (one statement) and when the helper steps aside (a receiver listens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext

from django_realtime import rows
from django_realtime.models import AuditLogEntry, AuditOutcome, RefusedTraffic, SessionPreset

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=timezone.utc)


def stored(pk: int) -> dict[str, Any]:
    """The row as the database holds it (every column but the key)."""
    values = AuditLogEntry.objects.filter(pk=pk).values().get()
    values.pop("id")
    return values


def audit_fields(user: User, preset: SessionPreset) -> dict[str, Any]:
    return {
        "action": "mint",
        "outcome": AuditOutcome.PENDING,
        "user": user,
        "username": user.get_username(),
        "preset": preset,
        "preset_slug": preset.slug,
        "preset_version": 3,
        "session_type": "realtime",
        "model": "gpt-realtime",
        "call_id": "",
        "duration_ms": 12,
        "client_ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0 (ünïcode)",
        "secret_expires_at": datetime(2026, 12, 2, 9, 31, tzinfo=timezone.utc),
        "session_payload": {"type": "realtime", "instructions": "Hi", "tools": [{"n": [1, None]}]},
    }


@pytest.fixture
def preset(make_preset: Callable[..., SessionPreset]) -> SessionPreset:
    return make_preset("assistant")


@pytest.fixture
def receivers() -> Iterator[list[tuple[str, bool]]]:
    heard: list[tuple[str, bool]] = []

    def before(sender: Any, instance: Any, **kwargs: Any) -> None:
        heard.append(("pre_save", instance.pk is None))

    def after(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        heard.append(("post_save", created))

    pre_save.connect(before, sender=AuditLogEntry, weak=False)
    post_save.connect(after, sender=AuditLogEntry, weak=False)
    yield heard
    pre_save.disconnect(before, sender=AuditLogEntry)
    post_save.disconnect(after, sender=AuditLogEntry)


@time_machine.travel(NOW, tick=False)
def test_insert_writes_the_row_the_orm_writes_in_one_statement(user, preset):
    by_orm = AuditLogEntry.objects.create(**audit_fields(user, preset))
    with CaptureQueriesContext(connection) as captured:
        entry = rows.insert(AuditLogEntry(**audit_fields(user, preset)))

    assert len(captured.captured_queries) == 1
    assert captured.captured_queries[0]["sql"].startswith(
        'INSERT INTO "django_realtime_auditlogentry"'
    )
    assert isinstance(entry.pk, int)
    assert entry.pk != by_orm.pk
    assert entry._state.adding is False
    assert entry._state.db == "default"
    assert entry.created_at == NOW  # auto_now_add, set on the instance as save() does
    assert stored(entry.pk) == stored(by_orm.pk)
    assert stored(entry.pk)["session_payload"] == audit_fields(user, preset)["session_payload"]
    assert stored(entry.pk)["user_id"] == user.pk


def test_insert_stores_nulls_as_the_orm_does(user, preset):
    bare = {"action": "mint", "outcome": AuditOutcome.FORBIDDEN}
    by_orm = AuditLogEntry.objects.create(**bare)
    entry = rows.insert(AuditLogEntry(**bare))
    got, want = stored(entry.pk), stored(by_orm.pk)
    got.pop("created_at"), want.pop("created_at")
    assert got == want
    assert got["user_id"] is None
    assert got["session_payload"] is None


def test_insert_leaves_it_to_save_when_a_receiver_listens(user, preset, receivers):
    entry = rows.insert(AuditLogEntry(**audit_fields(user, preset)))
    assert receivers == [("pre_save", True), ("post_save", True)]
    assert AuditLogEntry.objects.filter(pk=entry.pk).exists()


def test_insert_leaves_it_to_save_without_returning(user, preset, monkeypatch):
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    with CaptureQueriesContext(connection) as captured:
        entry = rows.insert(AuditLogEntry(**audit_fields(user, preset)))
    assert entry.pk is not None
    assert "RETURNING" not in captured.captured_queries[-1]["sql"].upper()
    assert stored(entry.pk)["preset_slug"] == "assistant"


def test_insert_leaves_a_model_without_an_auto_key_to_save():
    # A session's key is its primary key, chosen by the caller: save() inserts it.
    session = Session(session_key="k" * 32, session_data="data", expire_date=NOW)
    with CaptureQueriesContext(connection) as captured:
        assert rows.insert(session) is session
    assert "RETURNING" not in captured.captured_queries[-1]["sql"].upper()
    assert Session.objects.get(pk="k" * 32).session_data == "data"


def test_insert_of_another_auto_keyed_model():
    row = rows.insert(RefusedTraffic(client_ip="198.51.100.1", minute=NOW, count=1))
    assert RefusedTraffic.objects.get(pk=row.pk).count == 1


@time_machine.travel(NOW, tick=False)
def test_update_sends_what_queryset_update_sends(user, preset, make_user):
    first = AuditLogEntry.objects.create(**audit_fields(user, preset))
    second = AuditLogEntry.objects.create(**audit_fields(user, preset))
    other = make_user("bob")
    changes = {
        "outcome": AuditOutcome.ISSUED,
        "error_message": "",
        "upstream_status": 200,
        "secret_fingerprint": "ab" * 32,
        "user": other,  # a related object stands for its key
        "session_payload": {"changed": True},
        "secret_expires_at": None,
    }
    AuditLogEntry.objects.filter(pk=first.pk).update(**changes)
    with CaptureQueriesContext(connection) as captured:
        rows.update(AuditLogEntry, second.pk, changes)

    assert len(captured.captured_queries) == 1
    sql = captured.captured_queries[0]["sql"]
    assert sql.startswith('UPDATE "django_realtime_auditlogentry" SET "outcome" = ')
    assert '"preset_slug"' not in sql  # only the named columns
    got, want = stored(second.pk), stored(first.pk)
    assert got == want
    assert got["user_id"] == other.pk
    assert got["outcome"] == "issued"


def test_update_touches_one_row_and_nothing_without_values(user, preset):
    first = AuditLogEntry.objects.create(**audit_fields(user, preset))
    second = AuditLogEntry.objects.create(**audit_fields(user, preset))
    before = stored(second.pk)
    with CaptureQueriesContext(connection) as captured:
        rows.update(AuditLogEntry, first.pk, {})
    assert captured.captured_queries == []
    rows.update(AuditLogEntry, first.pk, {"outcome": AuditOutcome.ERROR})
    assert stored(first.pk)["outcome"] == "error"
    assert stored(second.pk) == before


def test_statements_are_built_once_per_model_and_column_set(user, preset):
    rows._insert_sql.clear()
    rows._update_sql.clear()
    for _ in range(3):
        entry = rows.insert(AuditLogEntry(**audit_fields(user, preset)))
        rows.update(AuditLogEntry, entry.pk, {"outcome": "issued", "duration_ms": 5})
    rows.update(AuditLogEntry, entry.pk, {"outcome": "error"})
    assert list(rows._insert_sql) == [("default", AuditLogEntry)]
    assert sorted(key[2] for key in rows._update_sql) == [("outcome",), ("outcome", "duration_ms")]


def test_a_model_with_a_database_default_is_left_to_save(user, preset, monkeypatch):
    # The compiler leaves such a column out when the instance holds no value: per row.
    from django.db.models import Value

    field = AuditLogEntry._meta.get_field("model")
    monkeypatch.setattr(field, "db_default", Value(""), raising=False)  # Django 5.0+
    monkeypatch.setattr(rows, "_insert_sql", {})
    entry = rows.insert(AuditLogEntry(**audit_fields(user, preset)))
    assert rows._insert_sql == {("default", AuditLogEntry): None}
    assert stored(entry.pk)["model"] == "gpt-realtime"
