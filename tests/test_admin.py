from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from django_realtime import client as upstream_client
from django_realtime.models import AuditLogEntry, SessionPreset

API_KEY = "sk-test-0123456789abcdef-SERVER-KEY"


@pytest.fixture
def admin_client_logged(db, client):
    User.objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.fixture
def preset(db):
    return SessionPreset.objects.create(
        slug="assistant",
        name="Assistant",
        model="gpt-realtime",
        instructions="Be brief.",
        voice="marin",
        ttl_seconds=120,
    )


@pytest.fixture
def upstream():
    calls: list[httpx.Request] = []
    state = {
        "response": httpx.Response(
            200,
            json={"value": "ek_admin_secret_value", "expires_at": 1893456000, "session": {}},
            headers={"x-request-id": "req_admin_1"},
        )
    }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return state["response"]

    upstream_client.set_transport(httpx.MockTransport(handler))
    yield calls, state
    upstream_client.set_transport(None)


def preset_form(**extra):
    data = {
        "name": "Helper",
        "slug": "helper",
        "description": "",
        "is_active": "on",
        "session_type": "realtime",
        "model": "gpt-realtime",
        "instructions": "Hi",
        "voice": "",
        "output_modalities": "",
        "input_audio_format": "",
        "output_audio_format": "",
        "noise_reduction": "",
        "turn_detection": "",
        "turn_detection_options": "",
        "transcription_model": "",
        "transcription_language": "",
        "transcription_prompt": "",
        "speed": "",
        "max_output_tokens": "",
        "tools": "",
        "tool_choice": "",
        "extra_session": "",
        "ttl_seconds": "60",
        "rate": "",
    }
    data.update(extra)
    return data


def test_create_preset_with_empty_json_fields(admin_client_logged):
    url = reverse("admin:django_realtime_sessionpreset_add")
    response = admin_client_logged.post(
        url, preset_form(allowed_overrides=["voice", "instructions"])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    preset = SessionPreset.objects.get(slug="helper")
    assert preset.tools == []
    assert preset.extra_session == {}
    assert preset.allowed_overrides == ["voice", "instructions"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "whisper-1"}, "transcription model"),
        ({"speed": "2"}, "1.5"),
        ({"ttl_seconds": "5"}, "10"),
        (
            {"session_type": "transcription", "model": "", "instructions": ""},
            "needs a transcription model",
        ),
        (
            {"session_type": "transcription", "model": "", "transcription_model": "whisper-1"},
            "no instructions",
        ),
        ({"voice": "robot"}, "Unknown voice"),
    ],
)
def test_admin_rejects_what_the_api_would(admin_client_logged, fields, message):
    url = reverse("admin:django_realtime_sessionpreset_add")
    response = admin_client_logged.post(url, preset_form(**fields))
    assert response.status_code == 200
    # The form's errors, not the page: help texts ("10-7200") show the limits anyway.
    errors = response.context["adminform"].form.errors.as_data()
    messages = [m for field in errors.values() for e in field for m in e.messages]
    assert any(message in m for m in messages), messages
    assert not SessionPreset.objects.exists()


def test_change_page_previews_exact_request(admin_client_logged, preset):
    url = reverse("admin:django_realtime_sessionpreset_change", args=[preset.pk])
    page = admin_client_logged.get(url).content.decode()
    assert "POST /v1/realtime/client_secrets" in page
    assert "&quot;seconds&quot;: 120" in page
    assert "&quot;voice&quot;: &quot;marin&quot;" in page


def test_version_bumps_on_admin_save(admin_client_logged, preset):
    url = reverse("admin:django_realtime_sessionpreset_change", args=[preset.pk])
    data = preset_form(name="Assistant", slug="assistant", voice="cedar")
    assert admin_client_logged.post(url, data).status_code == 302
    preset.refresh_from_db()
    assert (preset.voice, preset.version) == ("cedar", 2)


def test_duplicate_action_makes_inactive_copy(admin_client_logged, preset):
    url = reverse("admin:django_realtime_sessionpreset_changelist")
    response = admin_client_logged.post(
        url, {"action": "duplicate_presets", "_selected_action": [preset.pk]}
    )
    assert response.status_code == 302
    copy = SessionPreset.objects.get(slug="assistant-copy")
    assert copy.is_active is False
    assert copy.instructions == preset.instructions
    assert copy.version == 1


def test_test_mint_reports_outcome_never_secret(admin_client_logged, preset, upstream):
    calls, _ = upstream
    url = reverse("admin:django_realtime_sessionpreset_changelist")
    response = admin_client_logged.post(
        url, {"action": "test_mint", "_selected_action": [preset.pk]}, follow=True
    )
    page = response.content.decode()
    assert "req_admin_1" in page
    assert "succeeded" in page
    assert "ek_admin_secret_value" not in page
    assert len(calls) == 1
    assert json.loads(calls[0].content)["expires_after"] == {"anchor": "created_at", "seconds": 120}
    entry = AuditLogEntry.objects.get()
    assert (entry.action, entry.outcome, entry.username) == ("mint", "issued", "root")


def test_test_mint_reports_upstream_error(admin_client_logged, preset, upstream):
    _, state = upstream
    state["response"] = httpx.Response(
        400,
        json={
            "error": {
                "message": "Unknown parameter",
                "type": "invalid_request_error",
                "code": "unknown_parameter",
                "param": "session.x",
            }
        },
        headers={"x-request-id": "req_bad"},
    )
    url = reverse("admin:django_realtime_sessionpreset_changelist")
    page = admin_client_logged.post(
        url, {"action": "test_mint", "_selected_action": [preset.pk]}, follow=True
    ).content.decode()
    assert "failed" in page
    assert "req_bad" in page
    entry = AuditLogEntry.objects.get()
    assert (entry.outcome, entry.upstream_status, entry.error_code) == (
        "upstream_error",
        400,
        "unknown_parameter",
    )


def _entry(**kwargs):
    defaults = {"action": "mint", "outcome": "issued", "username": "bob", "preset_slug": "a"}
    defaults.update(kwargs)
    return AuditLogEntry.objects.create(**defaults)


def test_audit_log_is_read_only(admin_client_logged):
    entry = _entry()
    add = reverse("admin:django_realtime_auditlogentry_add")
    change = reverse("admin:django_realtime_auditlogentry_change", args=[entry.pk])
    delete = reverse("admin:django_realtime_auditlogentry_delete", args=[entry.pk])
    assert admin_client_logged.get(add).status_code == 403
    assert admin_client_logged.get(change).status_code == 200  # view only
    assert admin_client_logged.post(change, {"outcome": "invalid"}).status_code == 403
    assert admin_client_logged.post(delete, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.outcome == "issued"


def test_audit_changelist_filters_and_search(admin_client_logged, preset):
    alice = User.objects.create_user("alice")
    _entry(username="alice", user=alice, outcome="issued", preset=preset)
    _entry(username="bob", outcome="rate_limited")
    url = reverse("admin:django_realtime_auditlogentry_changelist")
    cell = '<td class="field-username">{}</td>'
    page = admin_client_logged.get(url, {"outcome__exact": "rate_limited"}).content.decode()
    assert cell.format("bob") in page
    assert cell.format("alice") not in page
    page = admin_client_logged.get(url, {"q": "alice"}).content.decode()
    assert cell.format("alice") in page
    assert cell.format("bob") not in page
    # every advertised filter renders
    page = admin_client_logged.get(url).content.decode()
    for title in ("outcome", "action", "preset", "user", "time"):
        assert f"By {title}" in page


def test_audit_csv_export(admin_client_logged):
    first = _entry(username="=cmd()", user_agent="UA")
    second = _entry(username="carol", outcome="forbidden")
    url = reverse("admin:django_realtime_auditlogentry_changelist")
    response = admin_client_logged.post(
        url, {"action": "export_csv", "_selected_action": [first.pk, second.pk]}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["created_at", "action", "outcome"]
    assert len(rows) == 3
    usernames = {row[3] for row in rows[1:]}
    assert usernames == {"'=cmd()", "carol"}  # formula neutralised


def test_every_model_is_in_the_admin():
    from django.contrib import admin

    from django_realtime.models import WebhookEvent
    from django_realtime.sip.models import SipCall, SipRoute

    for model in (SessionPreset, AuditLogEntry, SipRoute, SipCall, WebhookEvent):
        assert admin.site.is_registered(model), model
