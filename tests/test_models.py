"""SessionPreset.clean(), version bumps, availability; the audit log stays secret-free."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.exceptions import ValidationError

from django_realtime.models import SessionPreset
from tests.presets import realtime, transcription

FUNCTION_TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


def clean_errors(preset: SessionPreset) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        preset.clean()
    return info.value.message_dict


@pytest.mark.parametrize(
    "preset",
    [
        realtime(),
        realtime(
            model="gpt-realtime-mini-2025-12-15",
            voice="cedar",
            speed=0.25,
            max_output_tokens=4096,
            ttl_seconds=10,
        ),
        realtime(voice="voice_abc", speed=1.5, max_output_tokens=1, ttl_seconds=7200),
        realtime(tools=[FUNCTION_TOOL], tool_choice="lookup"),
        realtime(tool_choice="required"),
        realtime(turn_detection="semantic_vad", turn_detection_options={"eagerness": "high"}),
        realtime(turn_detection="server_vad", turn_detection_options={"idle_timeout_ms": 5000}),
        realtime(
            transcription_model="whisper-1",
            transcription_language="en",
            transcription_prompt="Acme",
        ),
        realtime(allowed_overrides=["instructions", "voice", "speed", "turn_detection"]),
        transcription(),
        transcription(transcription_model="gpt-realtime-whisper", turn_detection="none"),
        transcription(allowed_overrides=["transcription_language", "noise_reduction"]),
        realtime(extra_session={"tracing": "auto"}),
    ],
)
def test_valid_presets(preset: SessionPreset) -> None:
    preset.clean()


@pytest.mark.parametrize(
    ("preset", "field"),
    [
        (realtime(model="gpt-4o-transcribe"), "model"),
        (realtime(model="whisper-1"), "model"),
        (realtime(model=""), "model"),
        (realtime(model="gpt realtime"), "model"),
        (realtime(speed=0.2), "speed"),
        (realtime(speed=1.51), "speed"),
        (realtime(max_output_tokens=0), "max_output_tokens"),
        (realtime(max_output_tokens=4097), "max_output_tokens"),
        (realtime(voice="robot"), "voice"),
        (realtime(ttl_seconds=9), "ttl_seconds"),
        (realtime(ttl_seconds=7201), "ttl_seconds"),
        (realtime(tool_choice="missing"), "tool_choice"),
        (realtime(tools=[FUNCTION_TOOL], tool_choice="other"), "tool_choice"),
        (realtime(tools={"type": "function"}), "tools"),
        (realtime(tools=[{"type": "function"}]), "tools"),
        (realtime(tools=["lookup"]), "tools"),
        (
            realtime(turn_detection="server_vad", turn_detection_options={"eagerness": "low"}),
            "turn_detection_options",
        ),
        (
            realtime(turn_detection="semantic_vad", turn_detection_options={"threshold": 0.5}),
            "turn_detection_options",
        ),
        (
            realtime(turn_detection="none", turn_detection_options={"threshold": 0.5}),
            "turn_detection_options",
        ),
        (
            realtime(turn_detection="server_vad", turn_detection_options={"idle_timeout_ms": 100}),
            "turn_detection_options",
        ),
        (realtime(transcription_model="gpt-realtime-whisper"), "turn_detection"),
        (transcription(transcription_model="gpt-realtime-whisper"), "turn_detection"),
        (
            transcription(transcription_model="gpt-realtime-whisper", turn_detection="server_vad"),
            "turn_detection",
        ),
        (
            transcription(
                transcription_model="gpt-realtime-whisper",
                turn_detection="none",
                transcription_prompt="names",
            ),
            "transcription_prompt",
        ),
        (transcription(instructions="Be brief."), "instructions"),
        (transcription(voice="alloy"), "voice"),
        (transcription(model="gpt-realtime"), "model"),
        (transcription(speed=1.0), "speed"),
        (transcription(output_modalities="text"), "output_modalities"),
        (transcription(tools=[FUNCTION_TOOL]), "tools"),
        (transcription(transcription_model=""), "transcription_model"),
        (transcription(extra_session={"model": "gpt-realtime"}), "extra_session"),
        (realtime(extra_session={"type": "transcription"}), "extra_session"),
        (realtime(extra_session=["tracing"]), "extra_session"),
        (realtime(transcription_language="en"), "transcription_model"),
        (
            realtime(transcription_model="whisper-1", transcription_language="english"),
            "transcription_language",
        ),
        (transcription(allowed_overrides=["voice"]), "allowed_overrides"),
        (transcription(allowed_overrides=["instructions"]), "allowed_overrides"),
        (realtime(allowed_overrides=["model"]), "allowed_overrides"),
        (realtime(allowed_overrides="voice"), "allowed_overrides"),
    ],
)
def test_clean_rejects_what_the_api_would_reject(preset: SessionPreset, field: str) -> None:
    assert set(clean_errors(preset)) == {field}


@pytest.mark.django_db
def test_full_clean_runs_the_field_validators_too() -> None:
    with pytest.raises(ValidationError) as info:
        realtime(speed=3.0, ttl_seconds=1).full_clean()
    assert {"speed", "ttl_seconds"} <= set(info.value.message_dict)


@pytest.mark.django_db
def test_version_bumps_on_every_save() -> None:
    preset = realtime()
    preset.save()
    assert preset.version == 1
    preset.instructions = "v2"
    preset.save()
    assert preset.version == 2
    preset.save()
    assert preset.version == 3
    assert SessionPreset.objects.get(pk=preset.pk).version == 3


@pytest.mark.django_db
def test_concurrent_saves_never_share_a_version() -> None:
    preset = realtime()
    preset.save()
    one = SessionPreset.objects.get(pk=preset.pk)
    two = SessionPreset.objects.get(pk=preset.pk)
    one.save()
    two.save()
    assert {one.version, two.version} == {2, 3}


@pytest.mark.django_db
def test_availability(
    make_preset: Callable[..., SessionPreset], make_user: Callable[..., User], group: Group
) -> None:
    open_preset = make_preset("open")
    restricted = make_preset("staff-only", groups=(group,))
    inactive = make_preset("off", is_active=False)
    member = make_user("member", groups=(group,))
    outsider = make_user("outsider")

    assert list(SessionPreset.available_to(member).order_by("slug")) == [open_preset, restricted]
    assert list(SessionPreset.available_to(outsider)) == [open_preset]
    assert list(SessionPreset.available_to(AnonymousUser())) == []

    assert restricted.is_available_to(member)
    assert not restricted.is_available_to(outsider)
    assert open_preset.is_available_to(outsider)
    assert not inactive.is_available_to(member)
    assert not open_preset.is_available_to(AnonymousUser())


@pytest.mark.django_db
def test_available_to_has_no_duplicates_with_several_shared_groups(
    make_preset: Callable[..., SessionPreset], make_user: Callable[..., User]
) -> None:
    a, b = Group.objects.create(name="a"), Group.objects.create(name="b")
    preset = make_preset("both", groups=(a, b))
    user = make_user("carol", groups=(a, b))
    assert list(SessionPreset.available_to(user)) == [preset]
