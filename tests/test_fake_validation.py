"""The fake's request validation, field by field: each malformed piece of a session (or
of a reject / refer body) is refused with a 400 naming the parameter, as the API does,
and the well-formed variants of the same pieces are accepted."""

from __future__ import annotations

from typing import Any

import pytest

from django_realtime.testing.errors import APIError
from django_realtime.testing.validation import (
    validate_client_secret_request,
    validate_refer,
    validate_reject,
    validate_session,
)

RT = {"type": "realtime", "model": "gpt-realtime"}


def audio_in(**fields: Any) -> dict[str, Any]:
    return {"session": {**RT, "audio": {"input": fields}}}


def audio_out(**fields: Any) -> dict[str, Any]:
    return {"session": {**RT, "audio": {"output": fields}}}


def realtime(**fields: Any) -> dict[str, Any]:
    return {"session": {**RT, **fields}}


TRANSCRIBE = {
    "type": "transcription",
    "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
}
IN = "session.audio.input"
OUT = "session.audio.output"

REFUSED = [
    pytest.param(
        audio_in(format={"type": "audio/pcmu", "rate": 24000}), f"{IN}.format.rate", id="rate-g711"
    ),
    pytest.param(
        audio_in(format={"type": "audio/pcm", "rate": 16000}), f"{IN}.format.rate", id="rate-16k"
    ),
    pytest.param(audio_in(format={"kind": "pcm"}), f"{IN}.format.kind", id="format-field"),
    pytest.param(
        audio_in(transcription={"languages": []}), f"{IN}.transcription.languages", id="no-langs"
    ),
    pytest.param(
        audio_in(transcription={"languages": "en"}),
        f"{IN}.transcription.languages",
        id="langs-str",
    ),
    pytest.param(audio_in(transcription={"prompt": 5}), f"{IN}.transcription.prompt", id="prompt"),
    pytest.param(
        audio_in(transcription={"delay": "forever"}), f"{IN}.transcription.delay", id="delay"
    ),
    pytest.param(
        audio_in(noise_reduction={"type": "loud"}), f"{IN}.noise_reduction.type", id="noise"
    ),
    pytest.param(
        audio_in(noise_reduction={"level": 1}), f"{IN}.noise_reduction.level", id="noise-field"
    ),
    pytest.param(audio_in(turn_detection={}), f"{IN}.turn_detection.type", id="vad-no-type"),
    pytest.param(
        audio_in(turn_detection={"type": "server_vad", "threshold": 2}),
        f"{IN}.turn_detection.threshold",
        id="vad-threshold",
    ),
    pytest.param(
        audio_in(turn_detection={"type": "server_vad", "silence_duration_ms": -1}),
        f"{IN}.turn_detection.silence_duration_ms",
        id="vad-silence",
    ),
    pytest.param(
        audio_in(turn_detection={"type": "server_vad", "create_response": "yes"}),
        f"{IN}.turn_detection.create_response",
        id="vad-bool",
    ),
    pytest.param(audio_out(voice={"id": 5}), f"{OUT}.voice.id", id="voice-id"),
    pytest.param(audio_out(voice={"id": "v", "name": "x"}), f"{OUT}.voice.name", id="voice-x"),
    pytest.param(audio_out(voice=7), f"{OUT}.voice", id="voice-int"),
    pytest.param(audio_out(speed=9), f"{OUT}.speed", id="speed"),
    pytest.param(audio_out(format={"type": "audio/ogg"}), f"{OUT}.format.type", id="out-format"),
    pytest.param(realtime(tools="all"), "session.tools", id="tools-str"),
    pytest.param(realtime(tools=[{"type": "web"}]), "session.tools[0].type", id="tool-type"),
    pytest.param(realtime(tool_choice="sometimes"), "session.tool_choice", id="choice-str"),
    pytest.param(
        realtime(tool_choice={"type": "web"}), "session.tool_choice.type", id="choice-obj"
    ),
    pytest.param(realtime(include=["everything"]), "session.include[0]", id="include"),
    pytest.param(realtime(parallel_tool_calls="yes"), "session.parallel_tool_calls", id="ptc"),
    pytest.param(realtime(reasoning={"effort": "max"}), "session.reasoning.effort", id="effort"),
    pytest.param(realtime(reasoning={"budget": 1}), "session.reasoning.budget", id="reasoning"),
    pytest.param(realtime(tracing="manual"), "session.tracing", id="tracing"),
    pytest.param(realtime(truncation="never"), "session.truncation", id="truncation"),
    pytest.param(realtime(prompt={"id": 3}), "session.prompt.id", id="prompt-id"),
    pytest.param(
        {"session": {**TRANSCRIBE, "model": "gpt-realtime"}}, "session.model", id="tr-model"
    ),
    pytest.param({"session": {**TRANSCRIBE, "include": ["x"]}}, "session.include[0]", id="tr-inc"),
    pytest.param(
        {"session": {**TRANSCRIBE, "audio": {"output": {}}}}, "session.audio.output", id="tr-out"
    ),
    pytest.param({"session": {"model": "gpt-realtime"}}, "session.type", id="no-type"),
    pytest.param({"expires_after": {"anchor": "now"}}, "expires_after.anchor", id="anchor"),
    pytest.param({"expires_after": {"seconds": 5}}, "expires_after.seconds", id="ttl-short"),
    pytest.param({"ttl": 5}, "ttl", id="top-field"),
]


@pytest.mark.parametrize(("body", "param"), REFUSED)
def test_a_malformed_client_secret_request_is_a_400_naming_the_parameter(
    body: Any, param: str
) -> None:
    with pytest.raises(APIError) as refused:
        validate_client_secret_request(body)
    assert refused.value.status == 400
    assert refused.value.param == param
    assert refused.value.code
    assert refused.value.message


ACCEPTED = [
    pytest.param(None, id="no-body"),
    pytest.param({"expires_after": {"anchor": "created_at", "seconds": 60}}, id="ttl"),
    pytest.param(
        audio_in(
            format={"type": "audio/pcm", "rate": 24000},
            transcription={
                "model": "gpt-4o-transcribe",
                "language": "en",
                "languages": ["en", "de"],
                "delay": "low",
            },
            noise_reduction={"type": "near_field"},
            turn_detection={
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "create_response": True,
            },
        ),
        id="audio-in",
    ),
    pytest.param(
        audio_in(transcription=None, noise_reduction=None, turn_detection=None), id="nulls"
    ),
    pytest.param(
        audio_out(voice={"id": "voice_custom"}, speed=1.2, format={"type": "audio/pcmu"}),
        id="audio-out",
    ),
    pytest.param(
        realtime(
            tools=[{"type": "function", "name": "f"}],
            tool_choice={"type": "function", "name": "f"},
            include=["item.input_audio_transcription.logprobs"],
            parallel_tool_calls=False,
            tracing={"workflow_name": "w"},
            truncation="disabled",
            prompt={"id": "pmpt_1"},
        ),
        id="realtime-extras",
    ),
    pytest.param(realtime(tool_choice="auto", tracing="auto", truncation="auto"), id="strings"),
    pytest.param({"session": TRANSCRIBE}, id="transcription"),
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_well_formed_variants_of_the_same_pieces_are_accepted(body: Any) -> None:
    seconds, session = validate_client_secret_request(body)
    assert seconds >= 10
    expected = (body or {}).get("session") or {"type": "realtime"}
    assert session == expected


def test_validate_session_checks_only_the_types_it_is_told() -> None:
    assert validate_session(TRANSCRIBE, types=("transcription",)) == TRANSCRIBE
    with pytest.raises(APIError) as refused:
        validate_session(RT, types=("transcription",))
    assert refused.value.param == "session.type"
    with pytest.raises(APIError) as not_object:
        validate_session([], prefix="")
    assert not_object.value.param == "body"


def test_reject_and_refer_bodies() -> None:
    assert validate_reject(None) == 603
    assert validate_reject({}) == 603
    assert validate_reject({"status_code": 486}) == 486
    for body, param in (({"status_code": 99}, "status_code"), ({"reason": "x"}, "reason")):
        with pytest.raises(APIError) as refused:
            validate_reject(body)
        assert refused.value.param == param
    assert validate_refer({"target_uri": "tel:+14155550100"}) == "tel:+14155550100"
    for body, param in (({}, "target_uri"), ({"target_uri": 5}, "target_uri")):
        with pytest.raises(APIError) as refused:
            validate_refer(body)
        assert refused.value.param == param
