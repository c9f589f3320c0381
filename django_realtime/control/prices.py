"""The price table: USD per 1M tokens (per minute for duration-billed transcription).

Each price carries the date it was read and its source. ``DJANGO_REALTIME["PRICES"]``
is merged over it field by field, at use time (:func:`price_table`). Prices:
https://platform.openai.com/docs/pricing
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from ..conf import SETTINGS_NAME, conf
from ..exceptions import RealtimeConfigurationError

RATE_FIELDS = (
    "text_input",
    "text_cached_input",
    "text_output",
    "audio_input",
    "audio_cached_input",
    "audio_output",
    "image_input",
    "image_cached_input",
    "audio_minute",
)
_SNAPSHOT_RE = re.compile(r"-\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True)
class ModelPrice:
    """One model's rates: USD per 1M tokens, ``audio_minute`` USD per minute of audio.

    ``None`` means the model has no such rate (usage of that kind is then unpriced).
    """

    model: str
    read_on: date
    source: str
    text_input: Decimal | None = None
    text_cached_input: Decimal | None = None
    text_output: Decimal | None = None
    audio_input: Decimal | None = None
    audio_cached_input: Decimal | None = None
    audio_output: Decimal | None = None
    image_input: Decimal | None = None
    image_cached_input: Decimal | None = None
    audio_minute: Decimal | None = None
    note: str = ""


def _d(value: str) -> Decimal:
    return Decimal(value)


_READ = date(2026, 12, 2)
_REALTIME_SOURCE = "OpenAI model pages and pricing (platform docs), stored copies"


def _realtime(
    model: str,
    text: tuple[str, str, str],
    audio: tuple[str, str, str],
    image: tuple[str, str],
    *,
    note: str = "",
) -> ModelPrice:
    return ModelPrice(
        model,
        _READ,
        _REALTIME_SOURCE,
        text_input=_d(text[0]),
        text_cached_input=_d(text[1]),
        text_output=_d(text[2]),
        audio_input=_d(audio[0]),
        audio_cached_input=_d(audio[1]),
        audio_output=_d(audio[2]),
        image_input=_d(image[0]),
        image_cached_input=_d(image[1]),
        note=note,
    )


_FLAGSHIP = (("4", "0.40", "16"), ("32", "0.40", "64"), ("5", "0.50"))
_MINI = (("0.60", "0.06", "2.40"), ("10", "0.30", "20"), ("0.80", "0.08"))
_REASONING = (("4", "0.40", "24"), ("32", "0.40", "64"), ("5", "0.50"))
_ASSUMED = "No published price was found when read; assumed equal to {}. Override with PRICES."


def _transcribe_tokens(model: str, audio: str, text: str, out: str, note: str = "") -> ModelPrice:
    return ModelPrice(
        model,
        _READ,
        "OpenAI transcription model pages, stored copies",
        text_input=_d(text),
        audio_input=_d(audio),
        text_output=_d(out),
        note=note,
    )


def _transcribe_minutes(model: str, per_minute: str, note: str = "") -> ModelPrice:
    return ModelPrice(
        model,
        _READ,
        "OpenAI transcription model pages, stored copies",
        audio_minute=_d(per_minute),
        note=note,
    )


#: The shipped table. Snapshots (``-YYYY-MM-DD``) resolve to their model's entry.
PRICES: dict[str, ModelPrice] = {
    price.model: price
    for price in (
        _realtime("gpt-realtime", *_FLAGSHIP, note="GA launch pricing (2025-08)."),
        _realtime("gpt-realtime-mini", *_MINI, note="Launch pricing (2025-10)."),
        _realtime("gpt-realtime-1.5", *_FLAGSHIP),
        _realtime("gpt-realtime-2", *_REASONING),
        _realtime("gpt-realtime-2.1", *_REASONING),
        _realtime("gpt-realtime-2.1-mini", *_MINI),
        _realtime("gpt-audio-mini", *_MINI, note=_ASSUMED.format("gpt-realtime-mini")),
        _realtime("gpt-audio-1.5", *_FLAGSHIP, note=_ASSUMED.format("gpt-realtime-1.5")),
        _transcribe_minutes("whisper-1", "0.006"),
        _transcribe_tokens("gpt-4o-transcribe", "6", "2.50", "10"),
        _transcribe_tokens("gpt-4o-mini-transcribe", "3", "1.25", "5"),
        _transcribe_tokens(
            "gpt-4o-transcribe-diarize", "6", "2.50", "10", _ASSUMED.format("gpt-4o-transcribe")
        ),
        _transcribe_minutes("gpt-realtime-whisper", "0.017"),
        dataclasses.replace(
            _transcribe_tokens("gpt-transcribe", "6", "2.50", "10"),
            audio_minute=_d("0.017"),
            note=_ASSUMED.format("gpt-4o-transcribe (tokens) and gpt-realtime-whisper (minutes)"),
        ),
        dataclasses.replace(
            _transcribe_tokens("gpt-live-transcribe", "6", "2.50", "10"),
            audio_minute=_d("0.017"),
            note=_ASSUMED.format("gpt-4o-transcribe (tokens) and gpt-realtime-whisper (minutes)"),
        ),
    )
}


def _rate(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, (float, bool)):
        raise RealtimeConfigurationError(
            f"{SETTINGS_NAME}['PRICES']{where} must be a string or an integer, not a float."
        )
    try:
        rate = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as err:
        raise RealtimeConfigurationError(
            f"{SETTINGS_NAME}['PRICES']{where} is not a number."
        ) from err
    if not rate.is_finite() or rate < 0:
        raise RealtimeConfigurationError(f"{SETTINGS_NAME}['PRICES']{where} must be >= 0.")
    return rate


def _override(model: str, base: ModelPrice | None, changes: Any) -> ModelPrice:
    if not isinstance(changes, Mapping):
        raise RealtimeConfigurationError(f"{SETTINGS_NAME}['PRICES'][{model!r}] must be a dict.")
    unknown = set(changes) - {*RATE_FIELDS, "read_on", "source", "note"}
    if unknown:
        raise RealtimeConfigurationError(
            f"{SETTINGS_NAME}['PRICES'][{model!r}] has unknown keys: {sorted(unknown)}."
        )
    values: dict[str, Any] = {
        name: _rate(changes[name], f"[{model!r}][{name!r}]")
        for name in RATE_FIELDS
        if name in changes
    }
    read_on = changes.get("read_on")
    if read_on is not None:
        try:
            values["read_on"] = (
                read_on if isinstance(read_on, date) else date.fromisoformat(read_on)
            )
        except (TypeError, ValueError) as err:
            raise RealtimeConfigurationError(
                f"{SETTINGS_NAME}['PRICES'][{model!r}]['read_on'] must be an ISO date."
            ) from err
    for name in ("source", "note"):
        if name in changes:
            values[name] = str(changes[name])
    if base is None:
        return ModelPrice(model, values.pop("read_on", date.today()), "PRICES setting", **values)
    return dataclasses.replace(base, **values)


def price_table() -> dict[str, ModelPrice]:
    """The shipped table with ``PRICES`` merged over it (field by field), read now."""
    table = dict(PRICES)
    for model, changes in conf.PRICES.items():
        table[str(model)] = _override(str(model), table.get(str(model)), changes)
    return table


def price_for(
    model: str | None, table: Mapping[str, ModelPrice] | None = None
) -> ModelPrice | None:
    """The price of ``model`` or of the model of its snapshot; ``None`` if unknown."""
    if not model:
        return None
    table = price_table() if table is None else table
    return table.get(model) or table.get(_SNAPSHOT_RE.sub("", model))
