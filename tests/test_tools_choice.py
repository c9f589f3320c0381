"""A preset's ``tool_choice`` may name one of its server tools (issue 10): the model, the
admin form and the rules accept it, and every session carries the GA shape
``{"type": "function", "name": ...}`` beside the tool's definition."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from django_realtime import payloads, rules
from django_realtime.admin.presets import SessionPresetForm
from django_realtime.exceptions import SessionConfigError
from django_realtime.models import SessionPreset
from django_realtime.testing import FakeRealtimeAPI
from tests.conftest import CheckedAPIClient
from tests.test_admin import admin_client_logged, preset_form

__all__ = ["admin_client_logged"]  # the fixture, re-used

pytestmark = pytest.mark.django_db

SPELL = {"type": "function", "name": "spell"}
OWN_TOOL = {"type": "function", "name": "lookup", "description": "Look it up.", "parameters": {}}


def test_the_rules_accept_a_server_tools_name() -> None:
    assert rules.tool_choice_value("spell", [], ["spell"]) == SPELL
    assert rules.tool_choice_value("lookup", [OWN_TOOL], ["spell"]) == {
        "type": "function",
        "name": "lookup",
    }
    with pytest.raises(SessionConfigError, match="not a function tool or a server tool"):
        rules.tool_choice_value("whoami", [OWN_TOOL], ["spell"])


def test_a_preset_naming_its_server_tool_is_valid_and_sessions_carry_it(
    make_preset: Callable[..., SessionPreset],
) -> None:
    preset = make_preset("speller", server_tools=["spell"], tool_choice="spell")  # full_clean
    for session in (payloads.build_session(preset), payloads.build_sip_accept_session(preset)):
        assert session["tool_choice"] == SPELL
        assert [tool["name"] for tool in session["tools"]] == ["spell"]


def test_a_registered_tool_the_preset_does_not_offer_is_refused() -> None:
    preset = SessionPreset(
        slug="speller", name="Speller", model="gpt-realtime", server_tools=["spell"]
    )
    preset.tool_choice = "whoami"  # registered, but not among this preset's server tools
    with pytest.raises(ValidationError) as refused:
        preset.full_clean()
    assert "tool_choice" in refused.value.message_dict


def test_the_admin_form_checks_the_choice_against_the_chosen_server_tools() -> None:
    accepted = SessionPresetForm(data=preset_form(server_tools=["spell"], tool_choice="spell"))
    assert accepted.is_valid(), accepted.errors
    refused = SessionPresetForm(data=preset_form(server_tools=["whoami"], tool_choice="spell"))
    assert not refused.is_valid()
    assert list(refused.errors) == ["tool_choice"]


def test_the_admin_saves_it(admin_client_logged) -> None:
    url = reverse("admin:django_realtime_sessionpreset_add")
    response = admin_client_logged.post(
        url, preset_form(server_tools=["spell"], tool_choice="spell")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = SessionPreset.objects.get(slug="helper")
    assert (saved.server_tools, saved.tool_choice) == (["spell"], "spell")


def test_the_mint_sends_the_choice_upstream(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    realtime_fake: FakeRealtimeAPI,
) -> None:
    make_preset("speller", server_tools=["spell"], tool_choice="spell")
    response = api_client.post("/realtime/client-secrets/", {"preset": "speller"}, format="json")
    assert response.status_code == 201, response.content
    [sent] = realtime_fake.requests_to("/realtime/client_secrets")
    assert sent.json["session"]["tool_choice"] == SPELL
    assert "spell" in [tool["name"] for tool in sent.json["session"]["tools"]]
    assert response.json()["session"]["tool_choice"] == SPELL  # the fake accepted it


def test_a_server_tool_gone_since_is_left_out_of_the_choice_too(
    make_preset: Callable[..., SessionPreset], caplog: pytest.LogCaptureFixture
) -> None:
    preset = make_preset("speller", server_tools=["spell"], tool_choice="spell")
    SessionPreset.objects.filter(pk=preset.pk).update(server_tools=["gone"], tool_choice="gone")
    preset.refresh_from_db()
    with caplog.at_level(logging.WARNING):
        session = payloads.build_session(preset)
    assert "tool_choice" not in session
    assert "tools" not in session
    assert "names no tool of the session" in caplog.text
