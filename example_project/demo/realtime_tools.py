"""The demo's server tool: the model asks the server for the time in a city.

Found by autodiscovery (like ``admin.py``); ``seed_demo`` ticks it on the voice preset,
so a call shows a ``tool_call`` event in the admin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django_realtime.tools import ToolError, realtime_tool

CITIES = {
    "London": "Europe/London",
    "Paris": "Europe/Paris",
    "New York": "America/New_York",
    "San Francisco": "America/Los_Angeles",
    "Tokyo": "Asia/Tokyo",
    "Sydney": "Australia/Sydney",
}


@realtime_tool
def time_in_city(
    user: Any,
    call: Any,
    city: Literal["London", "Paris", "New York", "San Francisco", "Tokyo", "Sydney"],
) -> dict[str, str]:
    """The current local time in one of a few cities."""
    zone = CITIES.get(city)
    if zone is None:  # the schema's enum already says so; the model may still try
        raise ToolError(f"I only know the time in {', '.join(CITIES)}.")
    now = datetime.now(ZoneInfo(zone))
    return {"city": city, "time": now.strftime("%H:%M"), "weekday": now.strftime("%A")}
