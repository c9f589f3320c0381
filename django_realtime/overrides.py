"""Client overrides (pure): which fields a preset lets a browser change, and their values.

The whitelist per preset is ``allowed_overrides``; every value is checked with the
same field rules as the preset itself (:mod:`django_realtime.rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .rules import (
    INSTRUCTIONS_OVERRIDE_MAX,
    TRANSCRIPTION_PROMPT_MAX,
    VAD_LESS_TRANSCRIPTION_MODELS,
    PresetLike,
    fail,
    validate_language,
    validate_max_output_tokens,
    validate_speed,
    validate_voice,
)

__all__ = ["validate_overrides"]


def validate_overrides(preset: PresetLike, overrides: Any) -> dict[str, Any]:
    """Check client overrides against the preset's whitelist; return them normalised.

    Raises :class:`SessionConfigError` with ``code="invalid_override"``.
    """
    if overrides in (None, {}):
        return {}
    if not isinstance(overrides, Mapping):
        raise fail("overrides must be a JSON object.", "overrides", "invalid_override")
    allowed = set(preset.allowed_overrides or [])
    clean: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in allowed:
            raise fail(
                f"This preset does not allow overriding {str(name)[:64]!r}.",
                str(name)[:64],
                "invalid_override",
            )
        clean[name] = _validate_override(name, value)
    _check_override_combination(preset, clean)
    return clean


def _check_override_combination(preset: PresetLike, clean: Mapping[str, Any]) -> None:
    """Refuse overrides that the preset's transcription model makes invalid or void."""
    code = "invalid_override"
    model = preset.transcription_model
    for name in ("transcription_language", "transcription_prompt"):
        if clean.get(name) and not model:
            raise fail(
                f"This preset has no transcription model, so {name} has no effect.", name, code
            )
    if model in VAD_LESS_TRANSCRIPTION_MODELS:
        if clean.get("turn_detection", "none") != "none":
            raise fail(f"{model} needs manual turn detection.", "turn_detection", code)
        if clean.get("transcription_prompt"):
            raise fail(f"{model} takes no prompt.", "transcription_prompt", code)


def _validate_override(name: str, value: Any) -> Any:
    code = "invalid_override"
    if name == "instructions":
        if not isinstance(value, str) or len(value) > INSTRUCTIONS_OVERRIDE_MAX:
            raise fail(
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
            raise fail('output_modalities must be "audio" or "text" (not both).', name, code)
        return value
    if name == "speed":
        return validate_speed(value, field=name, code=code)
    if name == "max_output_tokens":
        return validate_max_output_tokens(value, field=name, code=code)
    if name == "noise_reduction":
        if value not in ("near_field", "far_field", None, ""):
            raise fail('noise_reduction must be "near_field", "far_field" or null.', name, code)
        return value or ""
    if name == "turn_detection":
        if value not in ("server_vad", "semantic_vad", "none"):
            raise fail('turn_detection must be "server_vad", "semantic_vad" or "none".', name, code)
        return value
    if name == "transcription_language":
        return validate_language(value, field=name, code=code)
    if name == "transcription_prompt":
        if not isinstance(value, str) or len(value) > TRANSCRIPTION_PROMPT_MAX:
            raise fail(
                f"transcription_prompt must be text of at most {TRANSCRIPTION_PROMPT_MAX} "
                "characters.",
                name,
                code,
            )
        return value
    raise fail(f"{name!r} cannot be overridden.", name, code)  # pragma: no cover
