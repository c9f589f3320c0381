"""The call controller's end reasons and the model's choices are one list."""

from __future__ import annotations

from django_realtime.call_models import EndReason, RealtimeCall
from django_realtime.control import leash


def test_leash_end_reasons_are_exactly_the_models_end_reason_choices() -> None:
    assert len(set(leash.END_REASONS)) == len(leash.END_REASONS)
    assert set(leash.END_REASONS) == set(EndReason.values)
    field = RealtimeCall._meta.get_field("end_reason")
    assert {value for value, _label in field.choices or []} == set(EndReason.values)
