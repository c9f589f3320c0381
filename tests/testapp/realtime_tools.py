"""Tools of the test app, found by autodiscovery (nothing imports this module)."""

from __future__ import annotations

from typing import Any, Literal

from django_realtime.tools import realtime_tool


@realtime_tool(permission="auth.view_user")
def whoami(user: Any, call: Any) -> dict[str, str]:
    """Tell the caller which account they are signed in with."""
    return {"username": user.get_username()}


@realtime_tool
def spell(user: Any, call: Any, word: str, alphabet: Literal["nato", "plain"] = "nato") -> str:
    """Spell a word letter by letter."""
    return " ".join(word.upper()) if alphabet == "plain" else "-".join(word.upper())
