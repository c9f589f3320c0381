"""The GA contract as the fake knows it: the API's limits and lists, and the
OpenAI-style errors it answers with (``param`` is a dotted path)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import APIError

INVALID_OFFER_MESSAGE = "Invalid SDP offer. Please try again with a WHIP-compliant offer."
TTL_MIN = 10
TTL_MAX = 7200
TTL_DEFAULT = 600
SPEED_MIN = 0.25
SPEED_MAX = 1.5
MAX_OUTPUT_TOKENS_MAX = 4096
IDLE_TIMEOUT_MIN = 5000
IDLE_TIMEOUT_MAX = 30000
SESSION_TYPES = ("realtime", "transcription")
DEFAULT_MODEL = "gpt-realtime"
DEFAULT_INSTRUCTIONS = (
    "You are a fake Realtime model served by django_realtime.testing. Nothing you hear "
    "leaves this machine."
)

REALTIME_FIELDS = frozenset(
    {
        "type",
        "model",
        "instructions",
        "output_modalities",
        "audio",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "tracing",
        "truncation",
        "prompt",
        "include",
        "parallel_tool_calls",
        "reasoning",
    }
)
TRANSCRIPTION_FIELDS = frozenset({"type", "audio", "include"})
AUDIO_INPUT_FIELDS = frozenset({"format", "transcription", "noise_reduction", "turn_detection"})
AUDIO_OUTPUT_FIELDS = frozenset({"format", "voice", "speed"})
TRANSCRIPTION_OPTION_FIELDS = frozenset(
    {"model", "language", "languages", "keywords", "prompt", "delay"}
)
TURN_DETECTION_FIELDS = {
    "server_vad": frozenset(
        {
            "type",
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "create_response",
            "interrupt_response",
            "idle_timeout_ms",
        }
    ),
    "semantic_vad": frozenset({"type", "eagerness", "create_response", "interrupt_response"}),
}
#: Beta (pre-GA) names; the API refuses them as unknown. Named in the message to help.
BETA_FIELDS = frozenset(
    {
        "voice",
        "modalities",
        "turn_detection",
        "input_audio_format",
        "output_audio_format",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "temperature",
        "max_response_output_tokens",
        "client_secret",
        "speed",
    }
)
AUDIO_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
NOISE_REDUCTION_TYPES = ("near_field", "far_field")
EAGERNESS = ("low", "medium", "high", "auto")
TRANSCRIPTION_DELAYS = ("minimal", "low", "medium", "high", "xhigh")
TOOL_CHOICE_OPTIONS = ("none", "auto", "required")
INCLUDE_OPTIONS = ("item.input_audio_transcription.logprobs",)
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")
SIP_URI_SCHEMES = ("tel:", "sip:", "sips:")


# --- small helpers ----------------------------------------------------------------


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_type(param: str, expected: str, value: Any) -> APIError:
    return APIError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def invalid_value(param: str, value: Any, allowed: Iterable[str] | None = None) -> APIError:
    message = f"Invalid value: {value!r}."
    if allowed is not None:
        message += " Supported values are: " + ", ".join(repr(a) for a in allowed) + "."
    return APIError(400, message, param=param, code="invalid_value")


def unknown_parameter(param: str) -> APIError:
    leaf = param.rsplit(".", 1)[-1]
    message = f"Unknown parameter: '{param}'."
    if leaf in BETA_FIELDS and param.count(".") <= 1:
        message += " (This is a beta Realtime field name; the GA API does not accept it.)"
    return APIError(400, message, param=param, code="unknown_parameter")


def missing(param: str) -> APIError:
    return APIError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return value


def _only(value: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    for key in value:
        if key not in allowed:
            raise unknown_parameter(_join(prefix, key))


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    return value


def _integer(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "an integer", value)
    return value


def _int_range(value: Any, param: str, low: int, high: int) -> int:
    number = _integer(value, param)
    if number < low:
        raise APIError(
            400,
            f"Invalid '{param}': integer below minimum value. Expected a value >= {low}, "
            f"but got {number} instead.",
            param=param,
            code="integer_below_min_value",
        )
    if number > high:
        raise APIError(
            400,
            f"Invalid '{param}': integer above maximum value. Expected a value <= {high}, "
            f"but got {number} instead.",
            param=param,
            code="integer_above_max_value",
        )
    return number


def _decimal_range(value: Any, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(param, "a number", value)
    if value < low:
        raise APIError(
            400,
            f"Invalid '{param}': decimal below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            param=param,
            code="decimal_below_min_value",
        )
    if value > high:
        raise APIError(
            400,
            f"Invalid '{param}': decimal above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            param=param,
            code="decimal_above_max_value",
        )
    return float(value)


def _enum(value: Any, param: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    if value not in allowed:
        raise invalid_value(param, value, allowed)
    return value


def _string_list(value: Any, param: str) -> list[str]:
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    for index, item in enumerate(value):
        _string(item, f"{param}[{index}]")
    return value
