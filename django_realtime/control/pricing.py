"""Usage -> counters and cost, in ``Decimal`` (never float), from an overridable table.

Two server events carry usage:

- ``response.done``: ``response.usage.input_token_details`` (``text_tokens``,
  ``audio_tokens``, ``image_tokens``, ``cached_tokens`` and ``cached_tokens_details``
  by modality; cached tokens are part of the input tokens) and
  ``output_token_details`` (``text_tokens``, ``audio_tokens``). Each response re-reads
  the conversation, so each one is billed on its own.
- ``conversation.item.input_audio_transcription.completed``: ``usage`` of
  ``type: "tokens"`` (``input_token_details.text_tokens/audio_tokens``,
  ``output_tokens``) or ``type: "duration"`` (``seconds``).

The cost of an event is computed from its own details (cached text, audio and image
tokens have their own rates), so it is exact even though the counters keep only one
``cached_input_tokens``. Prices are USD per 1M tokens (or per minute of audio for
duration-billed transcription), each with the date it was read; a site overrides or
adds models with ``DJANGO_REALTIME["PRICES"]``, e.g.
``{"gpt-realtime": {"audio_input": "30", "read_on": "2027-01-15"}}`` (strings or
integers: a float is refused, it cannot hold a price exactly). Prices:
https://platform.openai.com/docs/pricing
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .prices import PRICES, ModelPrice, price_for, price_table

__all__ = [
    "COUNTERS",
    "PRICES",
    "Metered",
    "ModelPrice",
    "Usage",
    "meter_response_done",
    "meter_transcription",
    "price_for",
    "price_table",
    "quantize_usd",
]

MILLION = Decimal(1_000_000)
SIXTY = Decimal(60)
ZERO = Decimal(0)
COUNTERS = (
    "input_text_tokens",
    "input_audio_tokens",
    "input_image_tokens",
    "cached_input_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "transcription_tokens",
    "transcription_seconds",
)

# --- usage ------------------------------------------------------------------------------


@dataclass
class Usage:
    """The counters of one call (or of one event), named as on ``RealtimeCall``.

    ``transcription_seconds`` is whole seconds, each transcription rounded up; costs
    use the exact seconds.
    """

    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    cached_input_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    transcription_tokens: int = 0
    transcription_seconds: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in COUNTERS})

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in COUNTERS)


@dataclass(frozen=True)
class Metered:
    """What one event adds: ``usage`` counters and ``cost_usd``.

    ``priced`` is ``False`` when the model or one of the rates it needed is unknown
    (that part then costs nothing; the counters are still right).
    """

    usage: Usage
    cost_usd: Decimal
    model: str | None
    priced: bool = True
    unpriced: tuple[str, ...] = field(default_factory=tuple)


def _count(value: Any) -> int:
    """A token count from the wire; anything but a non-negative int counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class _Bill:
    def __init__(self, price: ModelPrice | None) -> None:
        self.price = price
        self.total = ZERO
        self.unpriced: list[str] = []

    def add(self, quantity: int | Decimal, rate_name: str, per: Decimal = MILLION) -> None:
        if not quantity:
            return
        rate = getattr(self.price, rate_name) if self.price is not None else None
        if rate is None:
            self.unpriced.append(rate_name)
            return
        self.total += Decimal(quantity) * rate / per

    def metered(self, usage: Usage, model: str | None) -> Metered:
        return Metered(usage, self.total, model, not self.unpriced, tuple(self.unpriced))


def meter_response_done(
    event: Mapping[str, Any], model: str | None, table: Mapping[str, ModelPrice] | None = None
) -> Metered:
    """Counters and cost of one ``response.done`` (cached input at the cached rates)."""
    usage = _obj(_obj(event.get("response")).get("usage"))
    inputs = _obj(usage.get("input_token_details"))
    outputs = _obj(usage.get("output_token_details"))
    text, audio, image = (
        _count(inputs.get(k)) for k in ("text_tokens", "audio_tokens", "image_tokens")
    )
    cached = _count(inputs.get("cached_tokens"))
    details = _obj(inputs.get("cached_tokens_details"))
    if details:
        pairs = (("text", text), ("audio", audio), ("image", image))
        cached_split = [min(_count(details.get(f"{m}_tokens")), n) for m, n in pairs]
    else:  # no split given: cached tokens come off text first, then audio, then image
        left, cached_split = cached, []
        for n in (text, audio, image):
            cached_split.append(min(left, n))
            left -= cached_split[-1]
    counters = Usage(
        input_text_tokens=text,
        input_audio_tokens=audio,
        input_image_tokens=image,
        cached_input_tokens=cached,
        output_text_tokens=_count(outputs.get("text_tokens")),
        output_audio_tokens=_count(outputs.get("audio_tokens")),
    )
    bill = _Bill(price_for(model, table))
    for modality, total, cached_n in zip(
        ("text", "audio", "image"), (text, audio, image), cached_split, strict=True
    ):
        bill.add(total - cached_n, f"{modality}_input")
        bill.add(cached_n, f"{modality}_cached_input")
    bill.add(counters.output_text_tokens, "text_output")
    bill.add(counters.output_audio_tokens, "audio_output")
    return bill.metered(counters, model)


def _seconds(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return ZERO
    try:
        # str() of a float is its shortest repr: the number as it was on the wire.
        seconds = Decimal(str(value))
    except InvalidOperation:
        return ZERO
    return seconds if seconds.is_finite() and seconds > 0 else ZERO


def meter_transcription(
    event: Mapping[str, Any], model: str | None, table: Mapping[str, ModelPrice] | None = None
) -> Metered:
    """Counters and cost of one ``conversation.item.input_audio_transcription.completed``."""
    usage = _obj(event.get("usage"))
    bill = _Bill(price_for(model, table))
    if usage.get("type") == "duration":
        seconds = _seconds(usage.get("seconds"))
        bill.add(seconds, "audio_minute", per=SIXTY)
        return bill.metered(Usage(transcription_seconds=math.ceil(seconds)), model)
    if usage.get("type") != "tokens":
        return bill.metered(Usage(), model)
    inputs = _obj(usage.get("input_token_details"))
    input_tokens = _count(usage.get("input_tokens"))
    output_tokens = _count(usage.get("output_tokens"))
    total = _count(usage.get("total_tokens")) or input_tokens + output_tokens
    audio, text = _count(inputs.get("audio_tokens")), _count(inputs.get("text_tokens"))
    if not inputs:  # no split: the input is the audio
        audio = input_tokens
    bill.add(audio, "audio_input")
    bill.add(text, "text_input")
    bill.add(output_tokens, "text_output")
    return bill.metered(Usage(transcription_tokens=total), model)


def quantize_usd(value: Decimal, places: int = 6) -> Decimal:
    """``value`` rounded half-up to ``places`` decimals, for a ``DecimalField``."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
