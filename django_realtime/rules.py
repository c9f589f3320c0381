"""What the Realtime API accepts (pure): model and voice lists, field and preset rules.

Nothing here touches the database, the network or the models: a preset is anything
shaped like :class:`PresetLike`. Each rule raises
:class:`~django_realtime.exceptions.SessionConfigError` naming the field, so the
admin form, the API and the tests report the same message. Client overrides are
checked by :mod:`django_realtime.overrides`; request bodies are built by
:mod:`django_realtime.payloads`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .exceptions import SessionConfigError

TTL_MIN = 10
TTL_MAX = 7200

#: Built-in voices (https://platform.openai.com/docs/guides/realtime-conversations).
#: A custom voice is an id starting with ``voice_``.
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
CUSTOM_VOICE_RE = re.compile(r"voice_[A-Za-z0-9_-]{1,60}")

#: Models that transcribe; never valid as a realtime session ``model``.
TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
    "gpt-transcribe",
    "gpt-live-transcribe",
)
#: A transcription model that needs manual turns and takes no prompt: the API refuses
#: server VAD and a ``prompt`` for it.
VAD_LESS_TRANSCRIPTION_MODELS = ("gpt-realtime-whisper",)

#: Patterns are matched with ``fullmatch`` (``$`` would allow a final newline).
LANGUAGE_RE = re.compile(r"[a-z]{2}")
MODEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
FUNCTION_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: Longest ``instructions`` a client may send as an override.
INSTRUCTIONS_OVERRIDE_MAX = 4000
TRANSCRIPTION_PROMPT_MAX = 1000

#: Fields a preset may let a client override, with the session types they apply to.
OVERRIDABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "instructions": ("realtime",),
    "voice": ("realtime",),
    "output_modalities": ("realtime",),
    "speed": ("realtime",),
    "max_output_tokens": ("realtime",),
    "noise_reduction": ("realtime", "transcription"),
    "turn_detection": ("realtime", "transcription"),
    "transcription_language": ("realtime", "transcription"),
    "transcription_prompt": ("realtime", "transcription"),
}

TURN_DETECTION_OPTIONS: dict[str, dict[str, Any]] = {
    "server_vad": {
        "threshold": "ratio",
        "prefix_padding_ms": "ms",
        "silence_duration_ms": "ms",
        "create_response": "bool",
        "interrupt_response": "bool",
        "idle_timeout_ms": "idle",
    },
    "semantic_vad": {
        "eagerness": ("low", "medium", "high", "auto"),
        "create_response": "bool",
        "interrupt_response": "bool",
    },
}
#: The Calls API refuses these in the session used to accept a SIP call (it answers 400
#: ``unknown_parameter``).
SIP_FORBIDDEN_TURN_DETECTION_FIELDS = ("threshold", "prefix_padding_ms", "silence_duration_ms")

_REALTIME_ONLY_FIELDS = (
    "model",
    "instructions",
    "voice",
    "output_modalities",
    "output_audio_format",
    "speed",
    "max_output_tokens",
    "tool_choice",
)


class PresetLike(Protocol):
    """What the rules read from a preset (a :class:`~django_realtime.models.SessionPreset`
    or anything shaped like one); declared here so the rules never import the models."""

    session_type: str
    model: str
    instructions: str
    voice: str
    output_modalities: str
    input_audio_format: str
    output_audio_format: str
    noise_reduction: str
    turn_detection: str
    turn_detection_options: Any
    transcription_model: str
    transcription_language: str
    transcription_prompt: str
    speed: float | None
    max_output_tokens: int | None
    tools: Any
    tool_choice: str
    extra_session: Any
    ttl_seconds: int
    allowed_overrides: Any


def fail(message: str, field: str | None = None, code: str = "invalid") -> SessionConfigError:
    return SessionConfigError(message, field=field, code=code)


# --- field-level validators (shared by presets and overrides) -------------


def validate_voice(value: Any, *, field: str = "voice", code: str = "invalid") -> str:
    if not isinstance(value, str) or not (value in VOICES or CUSTOM_VOICE_RE.fullmatch(value)):
        raise fail(
            f"Unknown voice {str(value)[:40]!r}: use one of {', '.join(VOICES)} "
            "or a custom voice id (voice_...).",
            field,
            code,
        )
    return value


def validate_speed(value: Any, *, field: str = "speed", code: str = "invalid") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.25 <= value <= 1.5:
        raise fail("Speed must be a number from 0.25 to 1.5.", field, code)
    return float(value)


def validate_max_output_tokens(
    value: Any, *, field: str = "max_output_tokens", code: str = "invalid"
) -> int | str:
    if value == "inf":
        return "inf"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise fail('max_output_tokens must be an integer from 1 to 4096, or "inf".', field, code)
    return value


def validate_language(
    value: Any, *, field: str = "transcription_language", code: str = "invalid"
) -> str:
    if not isinstance(value, str) or not LANGUAGE_RE.fullmatch(value):
        raise fail("Language must be an ISO-639-1 code such as 'en'.", field, code)
    return value


def validate_turn_detection(
    kind: str, options: Any, *, field: str = "turn_detection_options", code: str = "invalid"
) -> dict[str, Any] | None:
    """Return the ``audio.input.turn_detection`` value (``None`` = manual), or {} for default."""
    if kind not in ("", "none", "server_vad", "semantic_vad"):
        raise fail(f"Unknown turn detection {kind!r}.", "turn_detection", code)
    options = options or {}
    if not isinstance(options, Mapping):
        raise fail("Turn detection options must be a JSON object.", field, code)
    if kind in ("", "none"):
        if options:
            raise fail("Options need a VAD type (server_vad or semantic_vad).", field, code)
        return {} if kind == "" else None
    allowed = TURN_DETECTION_OPTIONS[kind]
    result: dict[str, Any] = {"type": kind}
    for key, value in options.items():
        rule = allowed.get(key)
        if rule is None:
            raise fail(f"{kind} does not take {key!r}.", field, code)
        ok = (
            (rule == "ratio" and _is_number(value) and 0 <= value <= 1)
            or (rule == "ms" and _is_int(value) and value >= 0)
            or (rule == "bool" and isinstance(value, bool))
            or (rule == "idle" and (value is None or (_is_int(value) and 5000 <= value <= 30000)))
            or (isinstance(rule, tuple) and value in rule)
        )
        if not ok:
            raise fail(f"Invalid value for {kind}.{key}: {value!r}.", field, code)
        result[key] = value
    return result


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise fail("Tools must be a JSON list.", "tools")
    for index, tool in enumerate(tools):
        where = f"Tool #{index + 1}"
        if not isinstance(tool, Mapping):
            raise fail(f"{where} must be a JSON object.", "tools")
        kind = tool.get("type")
        if kind == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not FUNCTION_NAME_RE.fullmatch(name):
                raise fail(f"{where}: a function tool needs a name of [A-Za-z0-9_-].", "tools")
            params = tool.get("parameters", {})
            if not isinstance(params, Mapping):
                raise fail(f"{where}: parameters must be a JSON Schema object.", "tools")
        elif kind == "mcp":
            if not isinstance(tool.get("server_label"), str) or not tool["server_label"]:
                raise fail(f"{where}: an MCP tool needs a server_label.", "tools")
            if not (tool.get("server_url") or tool.get("connector_id")):
                raise fail(f"{where}: an MCP tool needs server_url or connector_id.", "tools")
        else:
            raise fail(f"{where}: type must be 'function' or 'mcp'.", "tools")
    return [dict(t) for t in tools]


def tool_choice_value(
    choice: str, tools: list[dict[str, Any]], server_tools: Iterable[str] = ()
) -> str | dict[str, Any]:
    """The session's ``tool_choice``: a mode, or ``{"type": "function", "name": ...}`` for
    one of the preset's function tools or of its ``server_tools`` (a server tool is a
    function tool too, defined in the session beside the preset's own)."""
    if choice in ("auto", "none", "required"):
        return choice
    names = {t.get("name") for t in tools if t.get("type") == "function"} | set(server_tools)
    if choice not in names:
        raise fail(
            f"Tool choice {choice!r} is not a function tool or a server tool of this preset.",
            "tool_choice",
        )
    return {"type": "function", "name": choice}


# --- presets ----------------------------------------------------------------


def validate_preset(preset: PresetLike) -> None:
    """Raise :class:`SessionConfigError` for what the Realtime API would refuse."""
    is_transcription = preset.session_type == "transcription"
    if preset.session_type not in ("realtime", "transcription"):
        raise fail("Unknown session type.", "session_type")
    if not TTL_MIN <= (preset.ttl_seconds or 0) <= TTL_MAX:
        raise fail(f"Secret lifetime must be {TTL_MIN} to {TTL_MAX} seconds.", "ttl_seconds")
    if is_transcription:
        for name in _REALTIME_ONLY_FIELDS:
            if getattr(preset, name) not in ("", None):
                raise fail(f"A transcription session has no {name}; leave it blank.", name)
        if preset.tools:
            raise fail("A transcription session has no tools.", "tools")
        if not preset.transcription_model:
            raise fail("A transcription preset needs a transcription model.", "transcription_model")
    else:
        if not preset.model:
            raise fail("A realtime preset needs a model, e.g. gpt-realtime.", "model")
        if preset.model in TRANSCRIPTION_MODELS:
            raise fail(
                f"{preset.model} is a transcription model: put it in 'transcription model', "
                "or make this a transcription preset.",
                "model",
            )
        if not MODEL_RE.fullmatch(preset.model):
            raise fail("That is not a model name.", "model")
        if preset.voice:
            validate_voice(preset.voice)
        if preset.speed is not None:
            validate_speed(preset.speed)
        if preset.max_output_tokens is not None:
            validate_max_output_tokens(preset.max_output_tokens)
        tools = validate_tools(preset.tools or [])
        if preset.tool_choice:
            tool_choice_value(preset.tool_choice, tools, getattr(preset, "server_tools", ()) or ())
    if preset.transcription_model:
        if preset.transcription_model not in TRANSCRIPTION_MODELS and not MODEL_RE.fullmatch(
            preset.transcription_model
        ):
            raise fail("That is not a transcription model name.", "transcription_model")
        if is_transcription is False and preset.transcription_model == preset.model:
            raise fail("The transcription model cannot be the session model.", "model")
    elif preset.transcription_language or preset.transcription_prompt:
        raise fail("Language and prompt need a transcription model.", "transcription_model")
    if preset.transcription_language:
        validate_language(preset.transcription_language)
    if preset.transcription_model in VAD_LESS_TRANSCRIPTION_MODELS:
        if preset.turn_detection != "none":
            raise fail(
                f"{preset.transcription_model} needs manual turn detection.", "turn_detection"
            )
        if preset.transcription_prompt:
            raise fail(f"{preset.transcription_model} takes no prompt.", "transcription_prompt")
    validate_turn_detection(preset.turn_detection, preset.turn_detection_options)
    if not isinstance(preset.extra_session, Mapping):
        raise fail("Extra session fields must be a JSON object.", "extra_session")
    if "type" in preset.extra_session:
        raise fail("Set the session type with the field, not extra fields.", "extra_session")
    if is_transcription and "model" in preset.extra_session:
        raise fail("A transcription session has no top-level model.", "extra_session")
    _validate_allowed_overrides(preset)


def _validate_allowed_overrides(preset: PresetLike) -> None:
    allowed = preset.allowed_overrides or []
    if not isinstance(allowed, list) or not all(isinstance(x, str) for x in allowed):
        raise fail("Allowed overrides must be a JSON list of field names.", "allowed_overrides")
    for name in allowed:
        types = OVERRIDABLE_FIELDS.get(name)
        if types is None:
            raise fail(
                f"{name!r} cannot be overridden; choose from {', '.join(OVERRIDABLE_FIELDS)}.",
                "allowed_overrides",
            )
        if preset.session_type not in types:
            raise fail(
                f"{name!r} does not apply to {preset.session_type} sessions.", "allowed_overrides"
            )
