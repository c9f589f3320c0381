"""``GET /realtime/presets/``: the presets this user may use, and nothing private."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User

from django_realtime.models import AuditLogEntry, SessionPreset
from tests.conftest import CheckedAPIClient

URL = "/realtime/presets/"

pytestmark = pytest.mark.django_db


def slugs(api: CheckedAPIClient) -> list[str]:
    response = api.get(URL)
    assert response.status_code == 200, response.content
    return [p["slug"] for p in response.json()]


def test_listing_shape_and_no_private_fields(
    api_client: CheckedAPIClient, make_preset: Callable[..., SessionPreset]
) -> None:
    make_preset(
        "concierge",
        name="Concierge",
        description="Front desk",
        instructions="SECRET SYSTEM PROMPT",
        tools=[{"type": "function", "name": "internal_lookup", "parameters": {}}],
        allowed_overrides=["voice"],
        rate="5/m",
    )
    response = api_client.get(URL)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == [
        {
            "slug": "concierge",
            "name": "Concierge",
            "description": "Front desk",
            "session_type": "realtime",
            "allowed_overrides": ["voice"],
            "modes": ["ephemeral", "relay"],
            "remaining_minutes": None,  # issue 10: no minute limit
        }
    ]
    assert b"SECRET SYSTEM PROMPT" not in response.content
    assert b"internal_lookup" not in response.content


def test_group_restrictions_and_inactive_presets(
    client_for: Callable[[User | None], CheckedAPIClient],
    make_user: Callable[..., User],
    make_preset: Callable[..., SessionPreset],
    group: Group,
) -> None:
    other = Group.objects.create(name="others")
    make_preset("b-open", name="B open")
    make_preset("a-staff", name="A staff", groups=(group,))
    make_preset("c-both", name="C both", groups=(group, other))
    make_preset("d-others", name="D others", groups=(other,))
    make_preset("e-off", name="E off", is_active=False)
    make_preset(
        "f-dictation",
        name="F dictation",
        session_type="transcription",
        transcription_model="whisper-1",
    )

    member = client_for(make_user("member", groups=(group,)))
    outsider = client_for(make_user("outsider"))

    assert slugs(member) == ["a-staff", "b-open", "c-both", "f-dictation"]  # by name
    assert slugs(outsider) == ["b-open", "f-dictation"]


def test_listing_and_minting_agree(
    client_for: Callable[[User | None], CheckedAPIClient],
    make_user: Callable[..., User],
    make_preset: Callable[..., SessionPreset],
    group: Group,
    upstream: object,
) -> None:
    make_preset("open")
    make_preset("staff", groups=(group,))
    make_preset("off", is_active=False)
    outsider = client_for(make_user("outsider"))
    listed = set(slugs(outsider))
    for slug in ("open", "staff", "off"):
        status = outsider.post(
            "/realtime/client-secrets/", {"preset": slug}, format="json"
        ).status_code
        assert (status == 201) == (slug in listed), slug


def test_unauthenticated_is_403(anon_client: CheckedAPIClient, preset: SessionPreset) -> None:
    response = anon_client.get(URL)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }


def test_listing_writes_no_audit_row(api_client: CheckedAPIClient, preset: SessionPreset) -> None:
    api_client.get(URL)
    assert not AuditLogEntry.objects.exists()


def test_post_is_not_allowed(api_client: CheckedAPIClient) -> None:
    response = api_client.post(URL, {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_permission_classes_come_from_settings(
    anon_client: CheckedAPIClient, preset: SessionPreset, settings: object
) -> None:
    settings.DJANGO_REALTIME = {  # type: ignore[attr-defined]
        **settings.DJANGO_REALTIME,  # type: ignore[attr-defined]
        "PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    }
    # anonymous users may now list, but available_to() still shows them nothing
    response = anon_client.get(URL)
    assert response.status_code == 200
    assert response.json() == []


def test_a_preset_that_requires_the_controller_allows_relay_only(
    api_client: CheckedAPIClient, make_preset: Callable[..., SessionPreset]
) -> None:
    make_preset("leashed", require_control=True)
    [listed] = api_client.get(URL).json()
    assert listed["modes"] == ["relay"]


def test_remaining_minutes_under_a_limit(
    api_client: CheckedAPIClient, make_preset: Callable[..., SessionPreset], user: User
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from django_realtime.models import RealtimeCall, UsageLimit

    preset = make_preset("voice")
    UsageLimit.objects.create(preset=preset, minutes_per_day=10)
    now = timezone.now()
    RealtimeCall.objects.create(
        call_id="rtc_used",
        origin="relay",
        user=user,
        preset=preset,
        status="ended",
        attached_at=now - timedelta(minutes=4),
        ended_at=now,
    )
    [answer] = api_client.get(URL).json()
    assert answer["remaining_minutes"] == 6.0


def test_the_widget_shows_the_remaining_minutes(
    make_preset: Callable[..., SessionPreset], user: User
) -> None:
    from django.template import Context, Template
    from django.test import RequestFactory

    from django_realtime.models import UsageLimit

    make_preset("voice")
    request = RequestFactory().get("/")
    request.user = user
    page = Template("{% load django_realtime %}{% realtime_widget 'voice' %}")
    assert "data-realtime-quota" not in page.render(Context({"request": request}))
    UsageLimit.objects.create(minutes_per_day=10)
    html = page.render(Context({"request": request}))
    assert (
        '<p class="realtime-widget__quota" data-realtime-quota data-minutes="10.0"'
        ' data-label-one="{n} minute left today" data-label-other="{n} minutes left today">'
        "10 minutes left today</p>"
    ) in html
