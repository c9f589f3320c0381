"""Request-body validation of the fake, mirroring what the GA Realtime API refuses.

Independent of :mod:`django_realtime.rules` and :mod:`django_realtime.payloads` on
purpose: the fake is the yardstick our session builder is tested against, so it must
not share its code (a bug in one would then hide in both). Every refusal is an
:class:`~.errors.APIError` carrying
the OpenAI-style ``param`` (a dotted path) and ``code``.

The published OpenAPI schema is looser than the live API (it has no
``additionalProperties: false`` on sessions and cannot say "not text and audio
together"); the API itself answers ``unknown_parameter`` for beta field names, so
the fake does too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .contract import (
    AUDIO_FORMATS,
    AUDIO_INPUT_FIELDS,
    AUDIO_OUTPUT_FIELDS,
    EAGERNESS,
    IDLE_TIMEOUT_MAX,
    IDLE_TIMEOUT_MIN,
    INCLUDE_OPTIONS,
    MAX_OUTPUT_TOKENS_MAX,
    NOISE_REDUCTION_TYPES,
    REALTIME_FIELDS,
    REASONING_EFFORTS,
    SESSION_TYPES,
    SIP_URI_SCHEMES,
    SPEED_MAX,
    SPEED_MIN,
    TOOL_CHOICE_OPTIONS,
    TRANSCRIPTION_DELAYS,
    TRANSCRIPTION_FIELDS,
    TRANSCRIPTION_OPTION_FIELDS,
    TTL_DEFAULT,
    TTL_MAX,
    TTL_MIN,
    TURN_DETECTION_FIELDS,
    _decimal_range,
    _enum,
    _int_range,
    _integer,
    _join,
    _object,
    _only,
    _string,
    _string_list,
    invalid_type,
    invalid_value,
    missing,
    unknown_parameter,
)
from .errors import APIError

# --- pieces of a session -------------------------------------------------------------


def _audio_format(value: Any, param: str) -> None:
    fmt = _object(value, param)
    _only(fmt, frozenset({"type", "rate"}), param)
    kind = _enum(fmt.get("type"), _join(param, "type"), AUDIO_FORMATS) if "type" in fmt else None
    if "rate" in fmt:
        if kind not in (None, "audio/pcm"):
            raise unknown_parameter(_join(param, "rate"))
        if _integer(fmt["rate"], _join(param, "rate")) != 24000:
            raise invalid_value(_join(param, "rate"), fmt["rate"], ["24000"])


def _transcription(value: Any, param: str) -> None:
    if value is None:
        return
    options = _object(value, param)
    _only(options, TRANSCRIPTION_OPTION_FIELDS, param)
    for name in ("model", "language", "prompt"):
        if name in options:
            _string(options[name], _join(param, name))
    for name in ("languages", "keywords"):
        if name in options:
            _string_list(options[name], _join(param, name))
    if "languages" in options and not options["languages"]:
        raise invalid_value(_join(param, "languages"), options["languages"])
    if "delay" in options:
        _enum(options["delay"], _join(param, "delay"), TRANSCRIPTION_DELAYS)


def _noise_reduction(value: Any, param: str) -> None:
    if value is None:
        return
    options = _object(value, param)
    _only(options, frozenset({"type"}), param)
    if "type" in options:
        _enum(options["type"], _join(param, "type"), NOISE_REDUCTION_TYPES)


def _turn_detection(value: Any, param: str) -> None:
    if value is None:
        return
    options = _object(value, param)
    if "type" not in options:
        raise missing(_join(param, "type"))
    kind = _enum(options["type"], _join(param, "type"), TURN_DETECTION_FIELDS)
    _only(options, TURN_DETECTION_FIELDS[kind], param)
    if "threshold" in options:
        _decimal_range(options["threshold"], _join(param, "threshold"), 0.0, 1.0)
    for name in ("prefix_padding_ms", "silence_duration_ms"):
        if name in options:
            _int_range(options[name], _join(param, name), 0, 10_000_000)
    for name in ("create_response", "interrupt_response"):
        if name in options and not isinstance(options[name], bool):
            raise invalid_type(_join(param, name), "a boolean", options[name])
    if options.get("idle_timeout_ms") is not None:
        _int_range(
            options["idle_timeout_ms"],
            _join(param, "idle_timeout_ms"),
            IDLE_TIMEOUT_MIN,
            IDLE_TIMEOUT_MAX,
        )
    if "eagerness" in options:
        _enum(options["eagerness"], _join(param, "eagerness"), EAGERNESS)


def _audio(value: Any, param: str, *, with_output: bool) -> None:
    audio = _object(value, param)
    _only(audio, frozenset({"input", "output"} if with_output else {"input"}), param)
    if "input" in audio:
        in_param = _join(param, "input")
        audio_in = _object(audio["input"], in_param)
        _only(audio_in, AUDIO_INPUT_FIELDS, in_param)
        if "format" in audio_in:
            _audio_format(audio_in["format"], _join(in_param, "format"))
        if "transcription" in audio_in:
            _transcription(audio_in["transcription"], _join(in_param, "transcription"))
        if "noise_reduction" in audio_in:
            _noise_reduction(audio_in["noise_reduction"], _join(in_param, "noise_reduction"))
        if "turn_detection" in audio_in:
            _turn_detection(audio_in["turn_detection"], _join(in_param, "turn_detection"))
    if "output" in audio:
        out_param = _join(param, "output")
        audio_out = _object(audio["output"], out_param)
        _only(audio_out, AUDIO_OUTPUT_FIELDS, out_param)
        if "format" in audio_out:
            _audio_format(audio_out["format"], _join(out_param, "format"))
        if "voice" in audio_out:
            voice = audio_out["voice"]
            if isinstance(voice, dict):
                _only(voice, frozenset({"id"}), _join(out_param, "voice"))
                _string(voice.get("id"), _join(out_param, "voice.id"))
            else:
                _string(voice, _join(out_param, "voice"))
        if "speed" in audio_out:
            _decimal_range(audio_out["speed"], _join(out_param, "speed"), SPEED_MIN, SPEED_MAX)


def _realtime_fields(session: Mapping[str, Any], prefix: str) -> None:
    _only(session, REALTIME_FIELDS, prefix)
    for name in ("model", "instructions"):
        if name in session:
            _string(session[name], _join(prefix, name))
    if "output_modalities" in session:
        param = _join(prefix, "output_modalities")
        modalities = _string_list(session["output_modalities"], param)
        for index, item in enumerate(modalities):
            _enum(item, f"{param}[{index}]", ("text", "audio"))
        if set(modalities) == {"text", "audio"}:
            raise APIError(
                400,
                f"Invalid '{param}': 'text' and 'audio' cannot be requested at the same time; "
                "use ['audio'] (audio plus transcript) or ['text'].",
                param=param,
                code="invalid_value",
            )
    if "audio" in session:
        _audio(session["audio"], _join(prefix, "audio"), with_output=True)
    if "max_output_tokens" in session:
        param = _join(prefix, "max_output_tokens")
        value = session["max_output_tokens"]
        if isinstance(value, str):
            if value != "inf":
                raise invalid_value(param, value, ["inf"])
        else:
            _int_range(value, param, 1, MAX_OUTPUT_TOKENS_MAX)
    if "tools" in session:
        param = _join(prefix, "tools")
        if not isinstance(session["tools"], list):
            raise invalid_type(param, "an array", session["tools"])
        for index, tool in enumerate(session["tools"]):
            tool_obj = _object(tool, f"{param}[{index}]")
            _enum(tool_obj.get("type"), f"{param}[{index}].type", ("function", "mcp"))
    if "tool_choice" in session:
        param = _join(prefix, "tool_choice")
        choice = session["tool_choice"]
        if isinstance(choice, str):
            _enum(choice, param, TOOL_CHOICE_OPTIONS)
        else:
            _enum(_object(choice, param).get("type"), _join(param, "type"), ("function", "mcp"))
    if "include" in session:
        param = _join(prefix, "include")
        for index, item in enumerate(_string_list(session["include"], param)):
            _enum(item, f"{param}[{index}]", INCLUDE_OPTIONS)
    if "parallel_tool_calls" in session and not isinstance(session["parallel_tool_calls"], bool):
        raise invalid_type(
            _join(prefix, "parallel_tool_calls"), "a boolean", session["parallel_tool_calls"]
        )
    if "reasoning" in session:
        param = _join(prefix, "reasoning")
        reasoning = _object(session["reasoning"], param)
        _only(reasoning, frozenset({"effort"}), param)
        if "effort" in reasoning:
            _enum(reasoning["effort"], _join(param, "effort"), REASONING_EFFORTS)
    if session.get("tracing") is not None and not isinstance(session["tracing"], dict):
        _enum(session["tracing"], _join(prefix, "tracing"), ("auto",))
    if "truncation" in session and not isinstance(session["truncation"], dict):
        _enum(session["truncation"], _join(prefix, "truncation"), ("auto", "disabled"))
    if session.get("prompt") is not None:
        _string(
            _object(session["prompt"], _join(prefix, "prompt")).get("id"),
            _join(prefix, "prompt.id"),
        )


def _transcription_fields(session: Mapping[str, Any], prefix: str) -> None:
    if "model" in session:
        param = _join(prefix, "model")
        raise APIError(
            400,
            f"Unknown parameter: '{param}'. A transcription session has no model: put the "
            f"transcription model in '{_join(prefix, 'audio.input.transcription.model')}'.",
            param=param,
            code="unknown_parameter",
        )
    _only(session, TRANSCRIPTION_FIELDS, prefix)
    if "audio" in session:
        _audio(session["audio"], _join(prefix, "audio"), with_output=False)
    if "include" in session:
        param = _join(prefix, "include")
        for index, item in enumerate(_string_list(session["include"], param)):
            _enum(item, f"{param}[{index}]", INCLUDE_OPTIONS)


# --- public validators ----------------------------------------------------------------


def validate_session(
    value: Any, prefix: str = "session", *, types: Iterable[str] = SESSION_TYPES
) -> dict[str, Any]:
    """Check a realtime or transcription session object; return it unchanged."""
    session = _object(value, prefix or "body")
    if "type" not in session:
        raise missing(_join(prefix, "type"))
    kind = _enum(session["type"], _join(prefix, "type"), tuple(types))
    if kind == "realtime":
        _realtime_fields(session, prefix)
    else:
        _transcription_fields(session, prefix)
    return session


def validate_client_secret_request(body: Any) -> tuple[int, dict[str, Any]]:
    """Check a ``POST /realtime/client_secrets`` body; return (ttl seconds, session request)."""
    if body is None:
        body = {}
    request = _object(body, "body")
    _only(request, frozenset({"expires_after", "session"}), "")
    seconds = TTL_DEFAULT
    if "expires_after" in request:
        expires = _object(request["expires_after"], "expires_after")
        _only(expires, frozenset({"anchor", "seconds"}), "expires_after")
        if "anchor" in expires:
            _enum(expires["anchor"], "expires_after.anchor", ("created_at",))
        if "seconds" in expires:
            seconds = _int_range(expires["seconds"], "expires_after.seconds", TTL_MIN, TTL_MAX)
    session = request.get("session")
    if session is None:
        session = {"type": "realtime"}
    return seconds, validate_session(session)


def validate_reject(body: Any) -> int:
    """``/reject`` body (optional ``status_code``); returns the SIP status (default 603)."""
    if body is None:
        return 603
    request = _object(body, "body")
    _only(request, frozenset({"status_code"}), "")
    if "status_code" not in request:
        return 603
    return _int_range(request["status_code"], "status_code", 100, 699)


def validate_refer(body: Any) -> str:
    """``/refer`` body; returns the ``target_uri``."""
    request = _object(body, "body")
    _only(request, frozenset({"target_uri"}), "")
    if "target_uri" not in request:
        raise missing("target_uri")
    target = _string(request["target_uri"], "target_uri")
    if not target.startswith(SIP_URI_SCHEMES):
        raise invalid_value("target_uri", target, ["tel:...", "sip:...", "sips:..."])
    return target
