from __future__ import annotations

from datetime import timedelta
from io import StringIO

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_realtime import client as upstream_client
from django_realtime.models import AuditLogEntry, SessionPreset


@pytest.fixture
def upstream():
    seen: list[httpx.Request] = []
    state = {"status": 200}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if state["status"] != 200:
            return httpx.Response(
                state["status"],
                json={
                    "error": {
                        "message": "boom",
                        "type": "server_error",
                        "code": None,
                        "param": None,
                    }
                },
                headers={"x-request-id": "req_fail"},
            )
        return httpx.Response(
            200,
            json={"value": "ek_cli_value_123", "expires_at": 1893456000, "session": {}},
            headers={"x-request-id": "req_cli"},
        )

    upstream_client.set_transport(httpx.MockTransport(handler))
    monkey = upstream_client.sleep
    upstream_client.sleep = lambda s: None
    yield seen, state
    upstream_client.sleep = monkey
    upstream_client.set_transport(None)


@pytest.fixture
def setup_data(db):
    User.objects.create_user("ops")
    return SessionPreset.objects.create(
        slug="assistant", name="A", model="gpt-realtime", allowed_overrides=["voice"]
    )


def test_prune_deletes_old_rows_in_batches(db):
    now = timezone.now()
    old = [AuditLogEntry.objects.create(action="mint", outcome="issued") for _ in range(5)]
    AuditLogEntry.objects.filter(pk__in=[e.pk for e in old]).update(
        created_at=now - timedelta(days=40)
    )
    AuditLogEntry.objects.create(action="mint", outcome="issued")
    out = StringIO()
    with pytest.deprecated_call():  # the alias of realtime_prune --audit-days
        call_command(
            "realtime_prune_audit", "--older-than-days", "30", "--batch-size", "2", stdout=out
        )
    assert "Deleted 5 audit log entries older than 30 days." in out.getvalue()
    assert AuditLogEntry.objects.count() == 1


def test_prune_dry_run_deletes_nothing(db):
    entry = AuditLogEntry.objects.create(action="mint", outcome="issued")
    AuditLogEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=9))
    out = StringIO()
    with pytest.deprecated_call():
        call_command("realtime_prune_audit", "--older-than-days", "7", "--dry-run", stdout=out)
    assert "Would delete 1" in out.getvalue()
    assert AuditLogEntry.objects.count() == 1


def test_prune_rejects_negative_days(db):
    with pytest.raises(CommandError), pytest.deprecated_call():
        call_command("realtime_prune_audit", "--older-than-days", "-1")


def test_mint_hides_secret_by_default(setup_data, upstream):
    out = StringIO()
    call_command("realtime_mint", "--preset", "assistant", "--user", "ops", stdout=out)
    text = out.getvalue()
    assert "req_cli" in text
    assert "ek_cli_value_123" not in text
    entry = AuditLogEntry.objects.get()
    assert (entry.outcome, entry.username) == ("issued", "ops")
    assert entry.secret_fingerprint in text


def test_mint_show_secret_and_override(setup_data, upstream):
    seen, _ = upstream
    out = StringIO()
    call_command(
        "realtime_mint",
        "--preset",
        "assistant",
        "--user",
        "ops",
        "--override",
        "voice=cedar",
        "--show-secret",
        stdout=out,
    )
    assert "ek_cli_value_123" in out.getvalue()
    assert b'"voice":"cedar"' in seen[0].content.replace(b" ", b"")


def test_mint_refused_override_is_audited_without_upstream(setup_data, upstream):
    seen, _ = upstream
    with pytest.raises(CommandError, match="invalid_override"):
        call_command(
            "realtime_mint",
            "--preset",
            "assistant",
            "--user",
            "ops",
            "--override",
            "instructions=hi",
        )
    assert seen == []
    assert AuditLogEntry.objects.get().outcome == "invalid"


def test_mint_upstream_failure(setup_data, upstream):
    _, state = upstream
    state["status"] = 500
    with pytest.raises(CommandError, match="req_fail"):
        call_command("realtime_mint", "--preset", "assistant", "--user", "ops")
    assert AuditLogEntry.objects.get().outcome == "upstream_error"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope", "--user", "ops"], "No preset"),
        (["--preset", "assistant", "--user", "ghost"], "No user"),
    ],
)
def test_mint_unknown_names(setup_data, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("realtime_mint", *args)
