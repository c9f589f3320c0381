"""Preset + overrides -> GA request bodies (pure).

The shapes follow the GA contract of ``POST /v1/realtime/client_secrets``
(``RealtimeCreateClientSecretRequest``), ``POST /v1/realtime/calls`` and
``POST /v1/realtime/calls/{id}/accept``: unset fields are left out so the API's
defaults apply, except where ``null`` means something (``turn_detection: null`` =
manual turns). Overrides must already be validated (:mod:`django_realtime.overrides`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from .exceptions import SessionConfigError
from .rules import (
    SIP_FORBIDDEN_TURN_DETECTION_FIELDS,
    VOICES,
    PresetLike,
    fail,
    tool_choice_value,
    validate_turn_detection,
)
from .tools.definitions import with_server_tools

__all__ = [
    "build_client_secret_request",
    "build_session",
    "build_sip_accept_session",
    "deep_merge",
]

logger = logging.getLogger(__name__)


def build_session(preset: PresetLike, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The GA ``session`` object for ``preset`` with validated ``overrides`` applied."""
    o = dict(overrides or {})

    def pick(name: str) -> Any:
        return o[name] if name in o else getattr(preset, name)

    audio_in: dict[str, Any] = {}
    if preset.input_audio_format:
        audio_in["format"] = _audio_format(preset.input_audio_format)
    transcription = _transcription(
        preset.transcription_model, pick("transcription_language"), pick("transcription_prompt")
    )
    if transcription:
        audio_in["transcription"] = transcription
    noise = pick("noise_reduction")
    if noise:
        audio_in["noise_reduction"] = {"type": noise}
    kind = pick("turn_detection")
    # An override switches VAD type: the preset's options belong to its own type only.
    options = preset.turn_detection_options if kind == preset.turn_detection else {}
    turn = validate_turn_detection(kind, options)
    if turn is None:
        audio_in["turn_detection"] = None  # manual turns: null is meaningful
    elif turn:
        audio_in["turn_detection"] = turn

    session: dict[str, Any] = {"type": preset.session_type}
    if preset.session_type == "realtime":
        session["model"] = preset.model
        instructions = pick("instructions")
        if instructions:
            session["instructions"] = instructions
        modality = pick("output_modalities")
        if modality:
            session["output_modalities"] = [modality]
        audio_out: dict[str, Any] = {}
        if preset.output_audio_format:
            audio_out["format"] = _audio_format(preset.output_audio_format)
        voice = pick("voice")
        if voice:
            audio_out["voice"] = voice if voice in VOICES else {"id": voice}
        speed = pick("speed")
        if speed is not None:
            audio_out["speed"] = speed
        if audio_in or audio_out:
            session["audio"] = {}
            if audio_in:
                session["audio"]["input"] = audio_in
            if audio_out:
                session["audio"]["output"] = audio_out
        server = getattr(preset, "server_tools", None) or []
        tools = copy.deepcopy(with_server_tools(preset.tools or [], server))
        if tools:  # the preset's own tools, then its server tools' definitions (issue 10)
            session["tools"] = tools
        if preset.tool_choice:
            choice = _tool_choice(preset.tool_choice, tools)
            if choice is not None:
                session["tool_choice"] = choice
        max_tokens = pick("max_output_tokens")
        if max_tokens is not None:
            session["max_output_tokens"] = max_tokens
    elif audio_in:
        session["audio"] = {"input": audio_in}
    return deep_merge(session, preset.extra_session or {})


def _tool_choice(choice: str, tools: list[dict[str, Any]]) -> str | dict[str, Any] | None:
    """The preset's ``tool_choice`` against the session's ``tools`` (its own and its server
    tools' definitions). A server tool unregistered since the preset was saved (check
    ``E020``) is left out of ``tools``; naming it would make the API refuse the session,
    so the choice is dropped with a warning, as the tool's definition is."""
    try:
        return tool_choice_value(choice, tools)
    except SessionConfigError:
        logger.warning("The tool choice %r names no tool of the session; left out.", choice)
        return None


def build_client_secret_request(
    preset: PresetLike, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The whole ``POST /realtime/client_secrets`` body (GA shape, never ``ttl``)."""
    return {
        "expires_after": {"anchor": "created_at", "seconds": int(preset.ttl_seconds)},
        "session": build_session(preset, overrides),
    }


def build_sip_accept_session(preset: PresetLike) -> dict[str, Any]:
    """The session for ``/calls/{id}/accept``: realtime only, SIP-refused VAD fields removed."""
    if preset.session_type != "realtime":
        raise fail("Only a realtime preset can accept a call.", "preset")
    session = build_session(preset)
    turn = session.get("audio", {}).get("input", {}).get("turn_detection")
    if isinstance(turn, dict):
        for key in SIP_FORBIDDEN_TURN_DETECTION_FIELDS:
            turn.pop(key, None)
    return session


def _audio_format(value: str) -> dict[str, Any]:
    return {"type": "audio/pcm", "rate": 24000} if value == "audio/pcm" else {"type": value}


def _transcription(model: str, language: str, prompt: str) -> dict[str, Any]:
    if not model:
        return {}
    result: dict[str, Any] = {"model": model}
    if language:
        result["language"] = language
    if prompt:
        result["prompt"] = prompt
    return result


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``extra`` merged in recursively (``extra`` wins)."""
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
