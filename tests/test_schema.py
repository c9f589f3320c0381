"""What we send validates against the published OpenAPI schemas (tests/data, a subset of
openai/openai-openapi), with ``$ref`` resolved through a ``referencing`` registry."""

from __future__ import annotations

from typing import Any

import pytest

from django_realtime import overrides as override_rules
from django_realtime import payloads
from django_realtime.models import SessionPreset
from tests.conftest import OFFER_SDP, assert_valid_request, schema_errors

REQUEST = "RealtimeCreateClientSecretRequest"

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def realtime(**fields: Any) -> SessionPreset:
    return SessionPreset(**{"slug": "p", "name": "P", "model": "gpt-realtime", **fields})


def transcription(**fields: Any) -> SessionPreset:
    values = {
        "slug": "t",
        "name": "T",
        "session_type": "transcription",
        "transcription_model": "gpt-4o-transcribe",
        **fields,
    }
    return SessionPreset(**values)


PRESETS = {
    "realtime-minimal": realtime(),
    "realtime-full": realtime(
        instructions="Be brief.",
        voice="cedar",
        output_modalities="audio",
        input_audio_format="audio/pcm",
        output_audio_format="audio/pcma",
        noise_reduction="far_field",
        turn_detection="server_vad",
        turn_detection_options={
            "threshold": 0.4,
            "prefix_padding_ms": 200,
            "silence_duration_ms": 600,
            "create_response": True,
            "interrupt_response": False,
            "idle_timeout_ms": 10000,
        },
        transcription_model="gpt-4o-transcribe",
        transcription_language="en",
        transcription_prompt="Expect city names.",
        speed=0.9,
        max_output_tokens=4096,
        tools=[TOOL],
        tool_choice="get_weather",
        ttl_seconds=7200,
    ),
    "realtime-text": realtime(output_modalities="text", tool_choice="none", ttl_seconds=10),
    "realtime-semantic": realtime(
        turn_detection="semantic_vad", turn_detection_options={"eagerness": "low"}
    ),
    "realtime-manual": realtime(turn_detection="none"),
    "realtime-custom-voice": realtime(voice="voice_1234"),
    "realtime-mcp": realtime(
        tools=[
            {
                "type": "mcp",
                "server_label": "docs",
                "server_url": "https://mcp.example.com/sse",
                "require_approval": "never",
            }
        ],
        tool_choice="required",
    ),
    "transcription-minimal": transcription(),
    "transcription-full": transcription(
        input_audio_format="audio/pcmu",
        noise_reduction="near_field",
        turn_detection="server_vad",
        turn_detection_options={"silence_duration_ms": 700},
        transcription_language="de",
        transcription_prompt="Fachbegriffe",
        ttl_seconds=3600,
    ),
    "transcription-whisper-realtime": transcription(
        transcription_model="gpt-realtime-whisper", turn_detection="none"
    ),
}


@pytest.mark.parametrize("name", PRESETS)
def test_built_requests_are_valid(name: str) -> None:
    preset = PRESETS[name]
    preset.clean()  # a preset clean() accepts must build a request the schema accepts
    assert_valid_request(payloads.build_client_secret_request(preset))


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        (
            "realtime-full",
            {
                "instructions": "Short answers.",
                "voice": "verse",
                "output_modalities": "text",
                "speed": 1.5,
                "max_output_tokens": "inf",
                "noise_reduction": None,
                "turn_detection": "semantic_vad",
                "transcription_language": "es",
                "transcription_prompt": "Hola",
            },
        ),
        (
            "transcription-full",
            {
                "turn_detection": "none",
                "noise_reduction": "far_field",
                "transcription_language": "fr",
            },
        ),
    ],
)
def test_requests_with_overrides_are_valid(name: str, overrides: dict[str, Any]) -> None:
    preset = PRESETS[name]
    preset.allowed_overrides = list(overrides)
    clean = override_rules.validate_overrides(preset, overrides)
    assert_valid_request(payloads.build_client_secret_request(preset, clean))


@pytest.mark.parametrize("name", [n for n in PRESETS if n.startswith("realtime")])
def test_relayed_call_requests_are_valid(name: str) -> None:
    body = {"sdp": OFFER_SDP, "session": payloads.build_session(PRESETS[name])}
    assert schema_errors(body, "RealtimeCallCreateRequest") == []


@pytest.mark.parametrize("name", [n for n in PRESETS if n.startswith("realtime")])
def test_sip_accept_sessions_are_valid(name: str) -> None:
    session = payloads.build_sip_accept_session(PRESETS[name])
    assert schema_errors(session, "RealtimeSessionCreateRequestGA") == []


@pytest.mark.parametrize(
    "body",
    [
        {"expires_after": {"anchor": "created_at", "seconds": 5}},
        {"expires_after": {"anchor": "now", "seconds": 60}},
        {"expires_after": 60},
        {"session": {"type": "translation"}},
        {"session": {"type": "realtime", "audio": {"output": {"speed": 2.0}}}},
        {"session": {"type": "realtime", "output_modalities": ["video"]}},
        {
            "session": {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            }
        },
    ],
)
def test_the_schema_really_rejects_bad_bodies(body: dict[str, Any]) -> None:
    """Guards the validator itself: refs resolve and constraints bite."""
    assert schema_errors(body, REQUEST) != []
