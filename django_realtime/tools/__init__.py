"""Server-side tools: functions the model calls during a Realtime call, run as its user.

A site writes them in any installed app's ``realtime_tools.py``::

    from django_realtime.tools import realtime_tool

    @realtime_tool(permission="orders.view_order")
    def order_status(user, call, order_id: str) -> dict:
        \"\"\"Look up one of the caller's orders.\"\"\"
        ...

``registry`` maps each registered name to its :class:`RealtimeTool` (``name``,
``description``, ``parameters``, ``permission``); :func:`tool_definitions` gives a
preset's session ``tools`` entries and :func:`run_tool` answers one function call.
"""

from __future__ import annotations

from .definitions import tool_choices, tool_definitions, unknown_tools, with_server_tools
from .registration import (
    RealtimeTool,
    ToolDefinitionError,
    ToolParameter,
    autodiscover,
    build_tool,
    realtime_tool,
    register,
    registry,
    unregister,
)
from .runner import OUTCOMES, Outcome, ToolError, ToolResult, run_tool
from .schema import ArgumentError

__all__ = [
    "OUTCOMES",
    "ArgumentError",
    "Outcome",
    "RealtimeTool",
    "ToolDefinitionError",
    "ToolError",
    "ToolParameter",
    "ToolResult",
    "autodiscover",
    "build_tool",
    "realtime_tool",
    "register",
    "registry",
    "run_tool",
    "tool_choices",
    "tool_definitions",
    "unknown_tools",
    "unregister",
    "with_server_tools",
]
