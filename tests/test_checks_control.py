"""System checks of the call-control settings (SIDEBAND_URL, PRICES)."""

from __future__ import annotations

from typing import Any

import pytest

from django_realtime.checks import check_settings


def _ids(settings: Any, **values: Any) -> list[str]:
    settings.DJANGO_REALTIME = values
    return [m.id for m in check_settings() if m.id != "django_realtime.W001"]  # no secret


def test_valid_control_settings_pass(settings: Any) -> None:
    assert (
        _ids(
            settings,
            SIDEBAND_URL="wss://proxy.example/v1/realtime",
            PRICES={"gpt-realtime": {"audio_input": "30"}},
        )
        == []
    )
    assert _ids(settings, SIDEBAND_URL="ws://127.0.0.1:8765/v1/realtime") == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"SIDEBAND_URL": "https://api.openai.com/v1/realtime"}, "django_realtime.E014"),
        ({"SIDEBAND_URL": "ws://proxy.example/v1/realtime"}, "django_realtime.W005"),
        ({"PRICES": {"gpt-realtime": {"audio_input": 30.5}}}, "django_realtime.E015"),
        ({"PRICES": {"gpt-realtime": {"typo": "1"}}}, "django_realtime.E015"),
        ({"PRICES": ["gpt-realtime"]}, "django_realtime.E002"),
        ({"SIDEBAND_URL": 5}, "django_realtime.E002"),
    ],
)
def test_malformed_control_settings(settings: Any, values: dict[str, Any], expected: str) -> None:
    assert _ids(settings, **values) == [expected]
