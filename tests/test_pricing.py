"""Pricing: counters from usage events, cost in Decimal by hand arithmetic, overrides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from django_realtime import rules
from django_realtime.control import pricing
from django_realtime.control.pricing import (
    COUNTERS,
    Usage,
    meter_response_done,
    meter_transcription,
    price_for,
    price_table,
    quantize_usd,
)
from django_realtime.exceptions import RealtimeConfigurationError
from django_realtime.testing import script

#: Realtime session models the preset admin accepts (GA; see the API's model enum).
REALTIME_MODELS = (
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-realtime-1.5",
    "gpt-realtime-2",
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
    "gpt-audio-mini",
    "gpt-audio-1.5",
)
M = Decimal(1_000_000)


def _done(**usage: int) -> dict[str, Any]:
    return {"type": "response.done", "response": {"usage": script.usage(**usage)}}


def test_every_offered_model_has_a_dated_price() -> None:
    table = price_table()
    for model in (*REALTIME_MODELS, *rules.TRANSCRIPTION_MODELS):
        price = price_for(model, table)
        assert price is not None, model
        assert isinstance(price.read_on, date)
        assert price.source
    for model in REALTIME_MODELS:
        price = table[model]
        for rate in (
            "text_input",
            "text_cached_input",
            "text_output",
            "audio_input",
            "audio_cached_input",
            "audio_output",
            "image_input",
        ):
            assert isinstance(getattr(price, rate), Decimal), (model, rate)


def test_snapshots_resolve_to_their_model() -> None:
    assert price_for("gpt-realtime-2025-08-28") == pricing.PRICES["gpt-realtime"]
    assert (
        price_for("gpt-4o-mini-transcribe-2025-12-15") == pricing.PRICES["gpt-4o-mini-transcribe"]
    )
    assert price_for("gpt-unknown") is None
    assert price_for(None) is None


def test_response_done_counters_and_cost_by_hand() -> None:
    event = _done(
        text_in=1200,
        audio_in=3000,
        image_in=100,
        cached_text=1000,
        cached_audio=2000,
        cached_image=50,
        text_out=80,
        audio_out=900,
    )
    metered = meter_response_done(event, "gpt-realtime")
    assert metered.usage == Usage(
        input_text_tokens=1200,  # cached included
        input_audio_tokens=3000,
        input_image_tokens=100,
        cached_input_tokens=3050,
        output_text_tokens=80,
        output_audio_tokens=900,
    )
    expected = (
        200 * Decimal("4")
        + 1000 * Decimal("0.40")  # text: uncached, cached
        + 1000 * Decimal("32")
        + 2000 * Decimal("0.40")  # audio
        + 50 * Decimal("5")
        + 50 * Decimal("0.50")  # image
        + 80 * Decimal("16")
        + 900 * Decimal("64")  # output
    ) / M
    assert metered.cost_usd == expected
    assert metered.cost_usd == Decimal("0.093155")
    assert metered.priced


def test_mini_prices_differ() -> None:
    metered = meter_response_done(
        _done(audio_in=1_000_000, audio_out=1_000_000), "gpt-realtime-mini"
    )
    assert metered.cost_usd == Decimal("30")  # 10 in + 20 out per 1M


def test_cached_without_split_comes_off_text_first() -> None:
    event = _done(text_in=100, audio_in=500)
    details = event["response"]["usage"]["input_token_details"]
    details["cached_tokens"] = 300
    del details["cached_tokens_details"]
    metered = meter_response_done(event, "gpt-realtime")
    # 100 cached text, 200 cached audio, 300 uncached audio
    assert metered.cost_usd == (100 * Decimal("0.40") + 200 * Decimal("0.40") + 300 * 32) / M
    assert metered.usage.cached_input_tokens == 300


def test_transcription_tokens_and_duration() -> None:
    tokens = {
        "type": "conversation.item.input_audio_transcription.completed",
        "usage": script.transcription_tokens(audio=400, text=20, output=30),
    }
    metered = meter_transcription(tokens, "gpt-4o-transcribe")
    assert metered.usage == Usage(transcription_tokens=450)
    assert metered.cost_usd == (400 * 6 + 20 * Decimal("2.50") + 30 * 10) / M
    duration = {
        "type": "conversation.item.input_audio_transcription.completed",
        "usage": script.transcription_duration(2.7),
    }
    metered = meter_transcription(duration, "whisper-1")
    assert metered.usage == Usage(transcription_seconds=3)  # whole seconds, rounded up
    assert metered.cost_usd == Decimal("2.7") * Decimal("0.006") / 60  # exact seconds
    assert metered.cost_usd == Decimal("0.00027")


def test_no_usage_and_junk_count_zero() -> None:
    assert not meter_transcription({"type": "x"}, "whisper-1").usage
    event = _done(text_in=10)
    event["response"]["usage"]["input_token_details"]["text_tokens"] = "10"
    event["response"]["usage"]["output_token_details"]["audio_tokens"] = True
    metered = meter_response_done(event, "gpt-realtime")
    assert metered.usage == Usage()
    assert metered.cost_usd == 0


def test_unknown_model_is_unpriced_but_counted() -> None:
    metered = meter_response_done(_done(audio_in=10), "gpt-future")
    assert metered.usage.input_audio_tokens == 10
    assert metered.cost_usd == 0
    assert not metered.priced
    metered = meter_transcription({"usage": script.transcription_duration(5)}, "gpt-4o-transcribe")
    assert metered.unpriced == ("audio_minute",)


def test_sum_of_many_turns_has_no_float_drift() -> None:
    total, cost = Usage(), Decimal(0)
    for _ in range(1000):
        metered = meter_response_done(_done(text_in=3, text_out=1), "gpt-realtime-mini")
        total, cost = total + metered.usage, cost + metered.cost_usd
    assert total.input_text_tokens == 3000
    assert cost == (3000 * Decimal("0.60") + 1000 * Decimal("2.40")) / M
    assert cost == Decimal("0.0042")
    assert quantize_usd(Decimal("0.0000005")) == Decimal("0.000001")
    assert set(total.as_dict()) == set(COUNTERS)


def test_prices_setting_is_merged_over_the_table(settings: Any) -> None:
    settings.DJANGO_REALTIME = {
        "PRICES": {
            "gpt-realtime": {"audio_input": "30", "read_on": "2027-01-15"},
            "my-model": {"text_input": 1, "text_output": "2"},
        }
    }
    table = price_table()
    assert table["gpt-realtime"].audio_input == Decimal("30")
    assert table["gpt-realtime"].text_input == Decimal("4")  # untouched
    assert table["gpt-realtime"].read_on == date(2027, 1, 15)
    assert table["my-model"].text_output == Decimal("2")
    assert pricing.PRICES["gpt-realtime"].audio_input == Decimal("32")  # shipped unchanged
    metered = meter_response_done(_done(audio_in=1_000_000), "gpt-realtime")
    assert metered.cost_usd == Decimal("30")


@pytest.mark.parametrize(
    "changes",
    [
        {"gpt-realtime": {"audio_input": 30.5}},
        {"gpt-realtime": {"audio_input": "-1"}},
        {"gpt-realtime": {"audio_input": "cheap"}},
        {"gpt-realtime": {"audio_inptu": "1"}},
        {"gpt-realtime": {"read_on": "yesterday"}},
        {"gpt-realtime": "4"},
    ],
)
def test_bad_prices_setting_names_the_setting(settings: Any, changes: Any) -> None:
    settings.DJANGO_REALTIME = {"PRICES": changes}
    with pytest.raises(RealtimeConfigurationError, match=r"PRICES"):
        price_table()
