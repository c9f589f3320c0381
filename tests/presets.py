"""Unsaved SessionPreset builders shared by the model and session-builder tests."""

from __future__ import annotations

from typing import Any

from django_realtime.models import SessionPreset


def realtime(**fields: Any) -> SessionPreset:
    values: dict[str, Any] = {"slug": "p", "name": "P", "model": "gpt-realtime"}
    values.update(fields)
    return SessionPreset(**values)


def transcription(**fields: Any) -> SessionPreset:
    values: dict[str, Any] = {
        "slug": "t",
        "name": "T",
        "session_type": "transcription",
        "transcription_model": "gpt-4o-transcribe",
    }
    values.update(fields)
    return SessionPreset(**values)
