"""The session the fake echoes back: the API's defaults merged with the request."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .contract import DEFAULT_INSTRUCTIONS, DEFAULT_MODEL
from .wire import new_id

__all__ = ["deep_merge", "effective_session"]


def _default_turn_detection() -> dict[str, Any]:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "create_response": True,
        "interrupt_response": True,
        "idle_timeout_ms": None,
    }


#: Objects that are replaced whole, never merged: a ``semantic_vad`` turn detection must
#: not inherit ``server_vad``'s ``threshold``, a ``pcmu`` format must not keep a ``rate``.
REPLACED_WHOLE = frozenset(
    {
        "turn_detection",
        "format",
        "voice",
        "transcription",
        "noise_reduction",
        "tracing",
        "truncation",
        "prompt",
        "reasoning",
        "tool_choice",
    }
)


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, merging nested objects (as ``session.update`` does)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if (
            key not in REPLACED_WHOLE
            and isinstance(value, Mapping)
            and isinstance(merged.get(key), dict)
        ):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def effective_session(request: Mapping[str, Any]) -> dict[str, Any]:
    """The session the API reports back: server defaults with the request on top."""
    pcm = {"type": "audio/pcm", "rate": 24000}
    if request.get("type") == "transcription":
        defaults: dict[str, Any] = {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": new_id("sess"),
            "expires_at": 0,
            "audio": {
                "input": {
                    "format": dict(pcm),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": _default_turn_detection(),
                }
            },
            "include": None,
        }
    else:
        defaults = {
            "type": "realtime",
            "object": "realtime.session",
            "id": new_id("sess"),
            "model": DEFAULT_MODEL,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": 0,
            "audio": {
                "input": {
                    "format": dict(pcm),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": _default_turn_detection(),
                },
                "output": {"format": dict(pcm), "voice": "alloy", "speed": 1.0},
            },
            "include": None,
        }
    return deep_merge(defaults, request)
