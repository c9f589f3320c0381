"""Pure payload builders and validation: preset + overrides -> GA request body."""

from __future__ import annotations

from typing import Any

import pytest

from django_realtime import overrides as override_rules
from django_realtime import payloads, rules
from django_realtime.exceptions import SessionConfigError
from django_realtime.models import SessionPreset
from tests.presets import realtime, transcription

# --- whole request bodies ----------------------------------------------------------


def test_minimal_realtime_request_leaves_unset_fields_out() -> None:
    assert payloads.build_client_secret_request(realtime()) == {
        "expires_after": {"anchor": "created_at", "seconds": 60},
        "session": {"type": "realtime", "model": "gpt-realtime"},
    }


def test_full_realtime_request() -> None:
    preset = realtime(
        instructions="Be brief.",
        voice="marin",
        output_modalities="audio",
        input_audio_format="audio/pcm",
        output_audio_format="audio/pcmu",
        noise_reduction="near_field",
        turn_detection="server_vad",
        turn_detection_options={
            "threshold": 0.6,
            "silence_duration_ms": 400,
            "idle_timeout_ms": 6000,
        },
        transcription_model="gpt-4o-mini-transcribe",
        transcription_language="en",
        transcription_prompt="names: Ada, Grace",
        speed=1.25,
        max_output_tokens=512,
        tools=[
            {
                "type": "function",
                "name": "lookup",
                "description": "Look up",
                "parameters": {"type": "object", "properties": {}},
            }
        ],
        tool_choice="lookup",
        ttl_seconds=120,
        extra_session={"tracing": "auto", "audio": {"output": {"speed": 1.1}}},
    )
    assert payloads.build_client_secret_request(preset) == {
        "expires_after": {"anchor": "created_at", "seconds": 120},
        "session": {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Be brief.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {
                        "model": "gpt-4o-mini-transcribe",
                        "language": "en",
                        "prompt": "names: Ada, Grace",
                    },
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.6,
                        "silence_duration_ms": 400,
                        "idle_timeout_ms": 6000,
                    },
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.1},
            },
            "tools": [
                {
                    "type": "function",
                    "name": "lookup",
                    "description": "Look up",
                    "parameters": {"type": "object", "properties": {}},
                }
            ],
            "tool_choice": {"type": "function", "name": "lookup"},
            "max_output_tokens": 512,
            "tracing": "auto",
        },
    }


def test_transcription_request_has_no_top_level_model() -> None:
    preset = transcription(
        transcription_language="de",
        noise_reduction="far_field",
        turn_detection="semantic_vad",
        turn_detection_options={"eagerness": "low"},
        ttl_seconds=30,
    )
    body = payloads.build_client_secret_request(preset)
    assert body == {
        "expires_after": {"anchor": "created_at", "seconds": 30},
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-transcribe", "language": "de"},
                    "noise_reduction": {"type": "far_field"},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
                }
            },
        },
    }
    assert "model" not in body
    assert "model" not in body["session"]


@pytest.mark.parametrize(
    "preset",
    [
        realtime(turn_detection="none"),
        transcription(transcription_model="gpt-realtime-whisper", turn_detection="none"),
    ],
)
def test_manual_turns_send_an_explicit_null(preset: SessionPreset) -> None:
    session = payloads.build_session(preset)
    assert "turn_detection" in session["audio"]["input"]
    assert session["audio"]["input"]["turn_detection"] is None


def test_default_turn_detection_is_left_out() -> None:
    assert "audio" not in payloads.build_session(realtime(turn_detection=""))


def test_custom_voice_is_sent_as_an_id_object() -> None:
    session = payloads.build_session(realtime(voice="voice_abc123"))
    assert session["audio"] == {"output": {"voice": {"id": "voice_abc123"}}}


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_keywords_are_strings(choice: str) -> None:
    assert payloads.build_session(realtime(tool_choice=choice))["tool_choice"] == choice


def test_max_output_tokens_inf_is_kept() -> None:
    preset = realtime(allowed_overrides=["max_output_tokens"])
    overrides = override_rules.validate_overrides(preset, {"max_output_tokens": "inf"})
    assert payloads.build_session(preset, overrides)["max_output_tokens"] == "inf"


def test_never_a_ttl_field_or_top_level_model() -> None:
    body = payloads.build_client_secret_request(realtime(ttl_seconds=7200))
    assert set(body) == {"expires_after", "session"}
    assert set(body["expires_after"]) == {"anchor", "seconds"}


def test_extra_session_is_deep_merged_without_mutating_the_preset() -> None:
    extra = {
        "audio": {"input": {"noise_reduction": {"type": "far_field"}}},
        "include": ["item.input_audio_transcription.logprobs"],
    }
    preset = realtime(noise_reduction="near_field", voice="alloy", extra_session=extra)
    session = payloads.build_session(preset)
    assert session["audio"] == {
        "input": {"noise_reduction": {"type": "far_field"}},
        "output": {"voice": "alloy"},
    }
    assert session["include"] == ["item.input_audio_transcription.logprobs"]
    session["include"].append("x")
    assert preset.extra_session["include"] == ["item.input_audio_transcription.logprobs"]


def test_tools_are_copied() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    preset = realtime(tools=tools)
    session = payloads.build_session(preset)
    session["tools"][0]["name"] = "changed"
    assert preset.tools[0]["name"] == "f"


def test_deep_merge() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1]}
    assert payloads.deep_merge(base, {"a": {"c": 3}, "d": [2], "e": None}) == {
        "a": {"b": 1, "c": 3},
        "d": [2],
        "e": None,
    }
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]}


# --- SIP accept session -----------------------------------------------------------------


def test_sip_accept_session_drops_fields_the_calls_api_refuses() -> None:
    preset = realtime(
        turn_detection="server_vad",
        turn_detection_options={
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
        },
    )
    session = payloads.build_sip_accept_session(preset)
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "create_response": True,
    }
    # the preset itself is untouched
    assert payloads.build_session(preset)["audio"]["input"]["turn_detection"]["threshold"] == 0.5


def test_sip_accept_session_needs_a_realtime_preset() -> None:
    with pytest.raises(SessionConfigError):
        payloads.build_sip_accept_session(transcription())


# --- overrides: the whitelist --------------------------------------------------------------

VALID_OVERRIDES: list[tuple[str, Any, dict[str, Any]]] = [
    ("instructions", "Speak French.", {"instructions": "Speak French."}),
    ("voice", "cedar", {"audio": {"output": {"voice": "cedar"}}}),
    ("voice", "voice_custom1", {"audio": {"output": {"voice": {"id": "voice_custom1"}}}}),
    ("output_modalities", "text", {"output_modalities": ["text"]}),
    ("output_modalities", ["audio"], {"output_modalities": ["audio"]}),
    ("speed", 0.25, {"audio": {"output": {"speed": 0.25}}}),
    ("speed", 1.5, {"audio": {"output": {"speed": 1.5}}}),
    ("max_output_tokens", 1, {"max_output_tokens": 1}),
    ("max_output_tokens", 4096, {"max_output_tokens": 4096}),
    ("max_output_tokens", "inf", {"max_output_tokens": "inf"}),
    (
        "noise_reduction",
        "far_field",
        {"audio": {"input": {"noise_reduction": {"type": "far_field"}}}},
    ),
    (
        "turn_detection",
        "semantic_vad",
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}},
    ),
    ("turn_detection", "none", {"audio": {"input": {"turn_detection": None}}}),
    (
        "transcription_language",
        "fr",
        {"audio": {"input": {"transcription": {"model": "whisper-1", "language": "fr"}}}},
    ),
    (
        "transcription_prompt",
        "Acme, Widget",
        {"audio": {"input": {"transcription": {"model": "whisper-1", "prompt": "Acme, Widget"}}}},
    ),
]


@pytest.mark.parametrize(("name", "value", "expected"), VALID_OVERRIDES)
def test_valid_override_is_applied(name: str, value: Any, expected: dict[str, Any]) -> None:
    preset = realtime(allowed_overrides=[name], transcription_model="whisper-1")
    overrides = override_rules.validate_overrides(preset, {name: value})
    session = payloads.build_session(preset, overrides)
    base = {"type": "realtime", "model": "gpt-realtime"}
    if name not in ("transcription_language", "transcription_prompt"):
        base["audio"] = {"input": {"transcription": {"model": "whisper-1"}}}
    assert session == payloads.deep_merge(base, expected)


INVALID_OVERRIDES: list[tuple[str, Any]] = [
    ("instructions", 42),
    ("instructions", "x" * (rules.INSTRUCTIONS_OVERRIDE_MAX + 1)),
    ("voice", "robot"),
    ("voice", {"id": "voice_1"}),
    ("output_modalities", ["audio", "text"]),
    ("output_modalities", "video"),
    ("speed", 0.2),
    ("speed", 1.6),
    ("speed", True),
    ("speed", "1.0"),
    ("max_output_tokens", 0),
    ("max_output_tokens", 4097),
    ("max_output_tokens", 1.5),
    ("max_output_tokens", "infinite"),
    ("noise_reduction", "studio"),
    ("turn_detection", "push_to_talk"),
    ("turn_detection", None),
    ("transcription_language", "english"),
    ("transcription_language", "EN"),
    ("transcription_prompt", 7),
    ("transcription_prompt", "x" * (rules.TRANSCRIPTION_PROMPT_MAX + 1)),
]


@pytest.mark.parametrize(("name", "value"), INVALID_OVERRIDES)
def test_invalid_override_value_is_refused(name: str, value: Any) -> None:
    preset = realtime(allowed_overrides=[name], transcription_model="whisper-1")
    with pytest.raises(SessionConfigError) as info:
        override_rules.validate_overrides(preset, {name: value})
    assert info.value.code == "invalid_override"
    assert info.value.field == name


@pytest.mark.parametrize("name", [*rules.OVERRIDABLE_FIELDS, "model", "tools", "type"])
def test_override_not_in_the_whitelist_is_refused(name: str) -> None:
    preset = realtime(allowed_overrides=[])
    with pytest.raises(SessionConfigError) as info:
        override_rules.validate_overrides(preset, {name: "x"})
    assert info.value.code == "invalid_override"
    assert name in str(info.value)


@pytest.mark.parametrize("overrides", [None, {}])
def test_no_overrides(overrides: Any) -> None:
    assert override_rules.validate_overrides(realtime(), overrides) == {}


@pytest.mark.parametrize("overrides", [[], ["voice"], "voice", 3])
def test_overrides_must_be_an_object(overrides: Any) -> None:
    with pytest.raises(SessionConfigError) as info:
        override_rules.validate_overrides(realtime(allowed_overrides=["voice"]), overrides)
    assert info.value.code == "invalid_override"


def test_noise_reduction_override_can_switch_it_off() -> None:
    preset = realtime(noise_reduction="near_field", allowed_overrides=["noise_reduction"])
    overrides = override_rules.validate_overrides(preset, {"noise_reduction": None})
    assert "audio" not in payloads.build_session(preset, overrides)


def test_turn_detection_override_drops_options_of_the_other_vad() -> None:
    preset = realtime(
        turn_detection="server_vad",
        turn_detection_options={"threshold": 0.7},
        allowed_overrides=["turn_detection"],
    )
    same = override_rules.validate_overrides(preset, {"turn_detection": "server_vad"})
    assert payloads.build_session(preset, same)["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.7,
    }
    other = override_rules.validate_overrides(preset, {"turn_detection": "semantic_vad"})
    assert payloads.build_session(preset, other)["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad"
    }


def test_transcription_preset_overrides_stay_in_audio_input() -> None:
    preset = transcription(allowed_overrides=["transcription_language", "turn_detection"])
    overrides = override_rules.validate_overrides(
        preset, {"transcription_language": "es", "turn_detection": "none"}
    )
    assert payloads.build_session(preset, overrides) == {
        "type": "transcription",
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-transcribe", "language": "es"},
                "turn_detection": None,
            }
        },
    }


# --- field validators ------------------------------------------------------------------


@pytest.mark.parametrize("voice", rules.VOICES)
def test_every_builtin_voice_is_valid(voice: str) -> None:
    assert rules.validate_voice(voice) == voice


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        ("", {}, {}),
        ("none", {}, None),
        ("server_vad", {}, {"type": "server_vad"}),
        ("server_vad", {"idle_timeout_ms": None}, {"type": "server_vad", "idle_timeout_ms": None}),
        (
            "server_vad",
            {"idle_timeout_ms": 30000, "create_response": False},
            {"type": "server_vad", "idle_timeout_ms": 30000, "create_response": False},
        ),
        (
            "semantic_vad",
            {"eagerness": "auto", "interrupt_response": False},
            {"type": "semantic_vad", "eagerness": "auto", "interrupt_response": False},
        ),
    ],
)
def test_turn_detection_valid(kind: str, options: dict[str, Any], expected: Any) -> None:
    assert rules.validate_turn_detection(kind, options) == expected


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("magic_vad", {}),
        ("none", {"threshold": 0.5}),
        ("", {"threshold": 0.5}),
        ("server_vad", {"eagerness": "low"}),
        ("semantic_vad", {"threshold": 0.5}),
        ("semantic_vad", {"silence_duration_ms": 500}),
        ("server_vad", {"threshold": 1.5}),
        ("server_vad", {"threshold": True}),
        ("server_vad", {"silence_duration_ms": -1}),
        ("server_vad", {"prefix_padding_ms": 1.5}),
        ("server_vad", {"idle_timeout_ms": 4999}),
        ("server_vad", {"idle_timeout_ms": 30001}),
        ("server_vad", {"create_response": "yes"}),
        ("semantic_vad", {"eagerness": "eager"}),
        ("server_vad", ["threshold"]),
    ],
)
def test_turn_detection_invalid(kind: str, options: Any) -> None:
    with pytest.raises(SessionConfigError):
        rules.validate_turn_detection(kind, options)


@pytest.mark.parametrize(
    "tools",
    [
        {"type": "function"},
        ["lookup"],
        [{"type": "function"}],
        [{"type": "function", "name": "has space"}],
        [{"type": "function", "name": "f", "parameters": "object"}],
        [{"type": "mcp", "server_url": "https://mcp.test"}],
        [{"type": "mcp", "server_label": "docs"}],
        [{"type": "web_search"}],
    ],
)
def test_bad_tools(tools: Any) -> None:
    with pytest.raises(SessionConfigError) as info:
        rules.validate_tools(tools)
    assert info.value.field == "tools"


def test_good_tools() -> None:
    tools = [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
        {"type": "mcp", "server_label": "docs", "server_url": "https://mcp.test/sse"},
        {"type": "mcp", "server_label": "drive", "connector_id": "connector_googledrive"},
    ]
    assert rules.validate_tools(tools) == tools
