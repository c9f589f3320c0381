"""Transcript lines: one ``transcript`` call event per finished line, then a signal.

The caller's line is ``conversation.item.input_audio_transcription.completed``; the
assistant's is ``response.output_audio_transcript.done``. Both arrive on the sideband in
the order they happen and are stored in that order (``role``, ``text``, ``item_id``); the
:data:`~django_realtime.signals.transcript_line` signal follows each stored line, for a
site that indexes transcripts elsewhere. ``realtime_prune --transcripts-days N`` (default
``TRANSCRIPT_RETENTION_DAYS``) deletes old lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import signals
from ..call_models import CallEvent, CallEventKind, RealtimeCall

if TYPE_CHECKING:
    from .controller import CallController

__all__ = ["ROLES", "line_data", "record_line"]

ROLES = ("user", "assistant")


def line_data(role: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event data of one finished line (``None`` for an empty one)."""
    text = event.get("transcript")
    if role not in ROLES or not isinstance(text, str) or not text.strip():
        return None
    item_id = event.get("item_id")
    return {"role": role, "text": text, "item_id": item_id if isinstance(item_id, str) else ""}


async def record_line(controller: CallController, role: str, event: Mapping[str, Any]) -> None:
    """Store ``event``'s line for ``controller``'s call and send ``transcript_line``."""
    data = line_data(role, event)
    if data is None:
        return
    await controller.store.record_event("transcript", data)
    # sync and async receivers, on Django 4.2 too (which has no Signal.asend)
    await signals.send_from_async(
        signals.transcript_line, RealtimeCall, call_id=controller.call_id, **data
    )


def transcript_lines() -> Any:
    """Every stored transcript line (the pruning target's rows)."""
    return CallEvent.objects.filter(kind=CallEventKind.TRANSCRIPT)
