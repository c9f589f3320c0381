"""What a call may do (:class:`Leash`), and what a controller needs around it.

The leash is built from a preset by the worker; :class:`CallStore` is where a
controller writes (the worker's database adapter, or a test's memory); :class:`Clock`
is how it tells time (``testing.clock.ManualClock`` in tests).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .pricing import Metered

END_REASONS = (
    "beacon",
    "peer",
    "max_duration",
    "idle",
    "quota",
    "config_violation",
    "admin",
    "expired",
)
CONFIG_LOCK_MODES = ("off", "revert", "hangup")
#: The API ends every Realtime session after 60 minutes.
API_SESSION_LIMIT = 3600
#: Top-level session fields the config lock guards (voice is ``audio.output.voice``).
LOCKED_FIELDS = ("instructions", "tools", "tool_choice", "model", "max_output_tokens", "voice")
DEFAULT_WARNING = "In one short sentence, tell the caller that the call is about to end."


class CallStore(Protocol):
    """Where a controller writes what happens (async; the worker's database adapter)."""

    async def mark_active(self) -> None: ...

    async def add_usage(self, metered: Metered) -> None: ...

    async def record_event(self, kind: str, data: dict[str, Any]) -> None: ...

    async def mark_ended(self, reason: str) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock seconds and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Leash:
    """What a call may do: the expected session and the preset's limits.

    ``session`` is what the preset plus the allowed overrides produced; fields in
    ``unlocked`` (allowed overrides) may change during the call. ``started_at`` is the
    call's start on the controller's clock (``None``: when attached).
    """

    session: Mapping[str, Any]
    max_duration_seconds: int | None = None
    warning_seconds: float = 15.0
    warning_instructions: str = DEFAULT_WARNING
    idle_timeout_seconds: int | None = None
    config_lock: str = "off"
    unlocked: frozenset[str] = field(default_factory=frozenset)
    greeting: str = ""
    store_transcripts: bool = False
    started_at: float | None = None

    @property
    def model(self) -> str | None:
        return self.session.get("model")

    @property
    def transcription_model(self) -> str | None:
        audio = self.session.get("audio") or {}
        transcription = (audio.get("input") or {}).get("transcription") or {}
        return transcription.get("model")


def locked_values(session: Mapping[str, Any]) -> dict[str, Any]:
    """The guarded fields of a session that are present in it."""
    values = {name: session[name] for name in LOCKED_FIELDS if name in session}
    output = (session.get("audio") or {}).get("output") or {}
    if "voice" in output:
        values["voice"] = output["voice"]
    return values


def as_update(session_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    session: dict[str, Any] = {"type": session_type}
    for name, value in values.items():
        if name == "voice":
            session["audio"] = {"output": {"voice": copy.deepcopy(value)}}
        else:
            session[name] = copy.deepcopy(value)
    return {"type": "session.update", "session": session}
