"""Pure functions: a preset (+ client overrides) to the GA session payload.

Nothing here touches the database or the network. The shapes follow the GA
contract of ``POST /v1/realtime/client_secrets`` (``RealtimeCreateClientSecretRequest``):
unset fields are left out so the API's defaults apply, except where ``null`` means
something (``turn_detection: null`` = manual turns).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import SessionConfigError

if TYPE_CHECKING:
    from .models import SessionPreset

TTL_MIN = 10
TTL_MAX = 7200

#: Built-in voices (reference §1.7). A custom voice is an id starting with ``voice_``.
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
CUSTOM_VOICE_RE = re.compile(r"^voice_[A-Za-z0-9_-]{1,60}$")

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
#: A transcription model that needs manual turns and takes no prompt (reference §1.3, §1.6).
VAD_LESS_TRANSCRIPTION_MODELS = ("gpt-realtime-whisper",)

LANGUAGE_RE = re.compile(r"^[a-z]{2}$")
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

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
#: The Calls API refuses these in the session used to accept a SIP call (reference §1.5).
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


def _fail(message: str, field: str | None = None, code: str = "invalid") -> SessionConfigError:
    return SessionConfigError(message, field=field, code=code)


# --- field-level validators (shared by presets and overrides) -------------


def validate_voice(value: Any, *, field: str = "voice", code: str = "invalid") -> str:
    if not isinstance(value, str) or not (value in VOICES or CUSTOM_VOICE_RE.match(value)):
        raise _fail(
            f"Unknown voice {str(value)[:40]!r}: use one of {', '.join(VOICES)} "
            "or a custom voice id (voice_...).",
            field,
            code,
        )
    return value


def validate_speed(value: Any, *, field: str = "speed", code: str = "invalid") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.25 <= value <= 1.5:
        raise _fail("Speed must be a number from 0.25 to 1.5.", field, code)
    return float(value)


def validate_max_output_tokens(
    value: Any, *, field: str = "max_output_tokens", code: str = "invalid"
) -> int | str:
    if value == "inf":
        return "inf"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise _fail('max_output_tokens must be an integer from 1 to 4096, or "inf".', field, code)
    return value


def validate_language(
    value: Any, *, field: str = "transcription_language", code: str = "invalid"
) -> str:
    if not isinstance(value, str) or not LANGUAGE_RE.match(value):
        raise _fail("Language must be an ISO-639-1 code such as 'en'.", field, code)
    return value


def validate_turn_detection(
    kind: str, options: Any, *, field: str = "turn_detection_options", code: str = "invalid"
) -> dict[str, Any] | None:
    """Return the ``audio.input.turn_detection`` value (``None`` = manual), or {} for default."""
    if kind not in ("", "none", "server_vad", "semantic_vad"):
        raise _fail(f"Unknown turn detection {kind!r}.", "turn_detection", code)
    options = options or {}
    if not isinstance(options, Mapping):
        raise _fail("Turn detection options must be a JSON object.", field, code)
    if kind in ("", "none"):
        if options:
            raise _fail("Options need a VAD type (server_vad or semantic_vad).", field, code)
        return {} if kind == "" else None
    allowed = TURN_DETECTION_OPTIONS[kind]
    result: dict[str, Any] = {"type": kind}
    for key, value in options.items():
        rule = allowed.get(key)
        if rule is None:
            raise _fail(f"{kind} does not take {key!r}.", field, code)
        ok = (
            (rule == "ratio" and _is_number(value) and 0 <= value <= 1)
            or (rule == "ms" and _is_int(value) and value >= 0)
            or (rule == "bool" and isinstance(value, bool))
            or (rule == "idle" and (value is None or (_is_int(value) and 5000 <= value <= 30000)))
            or (isinstance(rule, tuple) and value in rule)
        )
        if not ok:
            raise _fail(f"Invalid value for {kind}.{key}: {value!r}.", field, code)
        result[key] = value
    return result


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _fail("Tools must be a JSON list.", "tools")
    for index, tool in enumerate(tools):
        where = f"Tool #{index + 1}"
        if not isinstance(tool, Mapping):
            raise _fail(f"{where} must be a JSON object.", "tools")
        kind = tool.get("type")
        if kind == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not FUNCTION_NAME_RE.match(name):
                raise _fail(f"{where}: a function tool needs a name of [A-Za-z0-9_-].", "tools")
            params = tool.get("parameters", {})
            if not isinstance(params, Mapping):
                raise _fail(f"{where}: parameters must be a JSON Schema object.", "tools")
        elif kind == "mcp":
            if not isinstance(tool.get("server_label"), str) or not tool["server_label"]:
                raise _fail(f"{where}: an MCP tool needs a server_label.", "tools")
            if not (tool.get("server_url") or tool.get("connector_id")):
                raise _fail(f"{where}: an MCP tool needs server_url or connector_id.", "tools")
        else:
            raise _fail(f"{where}: type must be 'function' or 'mcp'.", "tools")
    return [dict(t) for t in tools]


def _tool_choice_value(choice: str, tools: list[dict[str, Any]]) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    names = {t.get("name") for t in tools if t.get("type") == "function"}
    if choice not in names:
        raise _fail(f"Tool choice {choice!r} is not a function tool of this preset.", "tool_choice")
    return {"type": "function", "name": choice}


# --- presets ----------------------------------------------------------------


def validate_preset(preset: SessionPreset) -> None:
    """Raise :class:`SessionConfigError` for what the Realtime API would refuse."""
    is_transcription = preset.session_type == "transcription"
    if preset.session_type not in ("realtime", "transcription"):
        raise _fail("Unknown session type.", "session_type")
    if not TTL_MIN <= (preset.ttl_seconds or 0) <= TTL_MAX:
        raise _fail(f"Secret lifetime must be {TTL_MIN} to {TTL_MAX} seconds.", "ttl_seconds")
    if is_transcription:
        for name in _REALTIME_ONLY_FIELDS:
            if getattr(preset, name) not in ("", None):
                raise _fail(f"A transcription session has no {name}; leave it blank.", name)
        if preset.tools:
            raise _fail("A transcription session has no tools.", "tools")
        if not preset.transcription_model:
            raise _fail(
                "A transcription preset needs a transcription model.", "transcription_model"
            )
    else:
        if not preset.model:
            raise _fail("A realtime preset needs a model, e.g. gpt-realtime.", "model")
        if preset.model in TRANSCRIPTION_MODELS:
            raise _fail(
                f"{preset.model} is a transcription model: put it in 'transcription model', "
                "or make this a transcription preset.",
                "model",
            )
        if not MODEL_RE.match(preset.model):
            raise _fail("That is not a model name.", "model")
        if preset.voice:
            validate_voice(preset.voice)
        if preset.speed is not None:
            validate_speed(preset.speed)
        if preset.max_output_tokens is not None:
            validate_max_output_tokens(preset.max_output_tokens)
        tools = validate_tools(preset.tools or [])
        if preset.tool_choice:
            _tool_choice_value(preset.tool_choice, tools)
    if preset.transcription_model:
        if preset.transcription_model not in TRANSCRIPTION_MODELS and not MODEL_RE.match(
            preset.transcription_model
        ):
            raise _fail("That is not a transcription model name.", "transcription_model")
        if is_transcription is False and preset.transcription_model == preset.model:
            raise _fail("The transcription model cannot be the session model.", "model")
    elif preset.transcription_language or preset.transcription_prompt:
        raise _fail("Language and prompt need a transcription model.", "transcription_model")
    if preset.transcription_language:
        validate_language(preset.transcription_language)
    if preset.transcription_model in VAD_LESS_TRANSCRIPTION_MODELS:
        if preset.turn_detection != "none":
            raise _fail(
                f"{preset.transcription_model} needs manual turn detection.", "turn_detection"
            )
        if preset.transcription_prompt:
            raise _fail(f"{preset.transcription_model} takes no prompt.", "transcription_prompt")
    validate_turn_detection(preset.turn_detection, preset.turn_detection_options)
    if not isinstance(preset.extra_session, Mapping):
        raise _fail("Extra session fields must be a JSON object.", "extra_session")
    if "type" in preset.extra_session:
        raise _fail("Set the session type with the field, not extra fields.", "extra_session")
    if is_transcription and "model" in preset.extra_session:
        raise _fail("A transcription session has no top-level model.", "extra_session")
    _validate_allowed_overrides(preset)


def _validate_allowed_overrides(preset: SessionPreset) -> None:
    allowed = preset.allowed_overrides or []
    if not isinstance(allowed, list) or not all(isinstance(x, str) for x in allowed):
        raise _fail("Allowed overrides must be a JSON list of field names.", "allowed_overrides")
    for name in allowed:
        types = OVERRIDABLE_FIELDS.get(name)
        if types is None:
            raise _fail(
                f"{name!r} cannot be overridden; choose from {', '.join(OVERRIDABLE_FIELDS)}.",
                "allowed_overrides",
            )
        if preset.session_type not in types:
            raise _fail(
                f"{name!r} does not apply to {preset.session_type} sessions.", "allowed_overrides"
            )


# --- overrides --------------------------------------------------------------


def validate_overrides(preset: SessionPreset, overrides: Any) -> dict[str, Any]:
    """Check client overrides against the preset's whitelist; return them normalised.

    Raises :class:`SessionConfigError` with ``code="invalid_override"``.
    """
    if overrides in (None, {}):
        return {}
    if not isinstance(overrides, Mapping):
        raise _fail("overrides must be a JSON object.", "overrides", "invalid_override")
    allowed = set(preset.allowed_overrides or [])
    clean: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in allowed:
            raise _fail(
                f"This preset does not allow overriding {str(name)[:64]!r}.",
                str(name)[:64],
                "invalid_override",
            )
        clean[name] = _validate_override(name, value)
    _check_override_combination(preset, clean)
    return clean


def _check_override_combination(preset: SessionPreset, clean: Mapping[str, Any]) -> None:
    """Refuse overrides that the preset's transcription model makes invalid or void."""
    code = "invalid_override"
    model = preset.transcription_model
    for name in ("transcription_language", "transcription_prompt"):
        if clean.get(name) and not model:
            raise _fail(
                f"This preset has no transcription model, so {name} has no effect.", name, code
            )
    if model in VAD_LESS_TRANSCRIPTION_MODELS:
        if clean.get("turn_detection", "none") != "none":
            raise _fail(f"{model} needs manual turn detection.", "turn_detection", code)
        if clean.get("transcription_prompt"):
            raise _fail(f"{model} takes no prompt.", "transcription_prompt", code)


def _validate_override(name: str, value: Any) -> Any:
    code = "invalid_override"
    if name == "instructions":
        if not isinstance(value, str) or len(value) > INSTRUCTIONS_OVERRIDE_MAX:
            raise _fail(
                f"instructions must be text of at most {INSTRUCTIONS_OVERRIDE_MAX} characters.",
                name,
                code,
            )
        return value
    if name == "voice":
        return validate_voice(value, field=name, code=code)
    if name == "output_modalities":
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value not in ("audio", "text"):
            raise _fail('output_modalities must be "audio" or "text" (not both).', name, code)
        return value
    if name == "speed":
        return validate_speed(value, field=name, code=code)
    if name == "max_output_tokens":
        return validate_max_output_tokens(value, field=name, code=code)
    if name == "noise_reduction":
        if value not in ("near_field", "far_field", None, ""):
            raise _fail('noise_reduction must be "near_field", "far_field" or null.', name, code)
        return value or ""
    if name == "turn_detection":
        if value not in ("server_vad", "semantic_vad", "none"):
            raise _fail(
                'turn_detection must be "server_vad", "semantic_vad" or "none".', name, code
            )
        return value
    if name == "transcription_language":
        return validate_language(value, field=name, code=code)
    if name == "transcription_prompt":
        if not isinstance(value, str) or len(value) > TRANSCRIPTION_PROMPT_MAX:
            raise _fail(
                f"transcription_prompt must be text of at most {TRANSCRIPTION_PROMPT_MAX} "
                "characters.",
                name,
                code,
            )
        return value
    raise _fail(f"{name!r} cannot be overridden.", name, code)  # pragma: no cover


# --- payload builders -------------------------------------------------------


def build_session(
    preset: SessionPreset, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
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
        if preset.tools:
            session["tools"] = copy.deepcopy(list(preset.tools))
        if preset.tool_choice:
            session["tool_choice"] = _tool_choice_value(preset.tool_choice, list(preset.tools))
        max_tokens = pick("max_output_tokens")
        if max_tokens is not None:
            session["max_output_tokens"] = max_tokens
    elif audio_in:
        session["audio"] = {"input": audio_in}
    return deep_merge(session, preset.extra_session or {})


def build_client_secret_request(
    preset: SessionPreset, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The whole ``POST /realtime/client_secrets`` body (GA shape, never ``ttl``)."""
    return {
        "expires_after": {"anchor": "created_at", "seconds": int(preset.ttl_seconds)},
        "session": build_session(preset, overrides),
    }


def build_sip_accept_session(preset: SessionPreset) -> dict[str, Any]:
    """The session for ``/calls/{id}/accept``: realtime only, SIP-refused VAD fields removed."""
    if preset.session_type != "realtime":
        raise _fail("Only a realtime preset can accept a call.", "preset")
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
