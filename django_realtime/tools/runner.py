"""Running one function call of a server-side tool, as the call's user.

:func:`run_tool` never raises for anything the tool or the model did: every failure is a
:class:`ToolResult` whose ``output`` is a short JSON message the model can speak about.
Tracebacks go to the ``django_realtime.tools`` logger only.

Sync tools run through asgiref's ``sync_to_async`` (context variables and asgiref
locals follow them) with ``thread_sensitive=False`` on a thread pool of their own.
``thread_sensitive=True`` would put every tool on the one thread the async ORM uses, so
one slow tool would stall every other tool and every ORM query of the process. The loop's
default executor is no better: a tool abandoned at its timeout keeps its thread, and a
few of those would starve ``getaddrinfo`` (DNS for the sideband) and ``to_thread`` users.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections

from ..exceptions import RealtimeError
from .registration import RealtimeTool, registry
from .schema import ArgumentError, loads_object

logger = logging.getLogger(__name__)

Outcome = Literal["ok", "error", "denied", "timeout", "invalid"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "denied", "timeout", "invalid")

#: Longer ``arguments`` are refused unread (the model's, but a caller can steer it).
MAX_ARGUMENTS_CHARS = 64 * 1024
#: How much of ``arguments`` that are not a JSON object the result keeps for the record.
RECORDED_CHARS = 2000
#: Longest tool name a result repeats (a registered one is at most 64 characters).
NAME_CHARS = 64


class ToolError(RealtimeError):
    """Raise from a tool to fail with a message the model may repeat to the caller.

    Any other exception fails with a generic message, so internals never reach the model.
    """


@dataclass(frozen=True)
class ToolResult:
    """What happened to one function call; ``output`` is the ``function_call_output``.

    ``duration_ms`` runs from the call of :func:`run_tool` to its answer (the permission
    check included); ``arguments`` is the decoded object, or for arguments that are not
    a JSON object, the first ``RECORDED_CHARS`` characters of what the model sent.
    """

    name: str
    outcome: Outcome
    output: str
    duration_ms: int
    arguments: Any

    def event_data(self) -> dict[str, Any]:
        """The ``tool_call`` event's data: name, arguments, outcome, duration_ms, output."""
        return {
            "name": self.name,
            "arguments": self.arguments,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
            "output": self.output,
        }


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(thread_name_prefix="realtime-tool")
        return _pool


def _run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # The pool's threads live on between tools: treat each run like a request, so a
    # connection that broke or outlived CONN_MAX_AGE is not reused and none is leaked.
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


def _allowed_sync(user: Any, permission: str | None) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return permission is None
    # Re-read the user: an account deactivated (or a permission removed) since the
    # call started takes effect on the next tool call, not at the next login.
    fresh = get_user_model()._default_manager.filter(pk=user.pk).first()
    if fresh is None or not fresh.is_active:
        return False
    return permission is None or fresh.has_perm(permission)


_allowed = sync_to_async(_allowed_sync)


def _message(outcome: Outcome, text: str) -> str:
    return json.dumps({"error": outcome, "message": text}, ensure_ascii=False)


async def _invoke(tool: RealtimeTool, user: Any, call: Any, kwargs: dict[str, Any]) -> Any:
    if tool.is_async:
        return await tool.func(user, call, **kwargs)
    run = sync_to_async(_run_sync, thread_sensitive=False, executor=_executor())
    return await run(tool.func, user, call, **kwargs)


class _ToolRaised(Exception):
    """Carries (as ``__cause__``) an exception the tool itself raised."""


async def _guarded(tool: RealtimeTool, user: Any, call: Any, kwargs: dict[str, Any]) -> Any:
    """``_invoke``, with the tool's own exceptions boxed so that a ``TimeoutError`` the
    tool raises is not taken for our timeout."""
    try:
        return await _invoke(tool, user, call, kwargs)
    except Exception as err:
        raise _ToolRaised from err


async def run_tool(
    name: str,
    arguments_json: str,
    *,
    user: Any,
    call: Any,
    timeout: float,
) -> ToolResult:
    """Run the registered tool ``name`` for one function call of the model.

    In order: the tool must exist; the user must still be active and hold the tool's
    permission (re-read from the database); ``arguments_json`` must be a JSON object
    fitting the signature; then the tool runs (sync ones on the tool thread pool) for
    at most its own ``timeout`` or else ``timeout`` seconds. A sync tool still running
    at the timeout is abandoned, not stopped: Python cannot kill a thread.
    """
    started = perf_counter()
    name = name[:NAME_CHARS]
    arguments: Any
    problem: ArgumentError | None = None
    try:
        if len(arguments_json) > MAX_ARGUMENTS_CHARS:
            raise ArgumentError("the arguments are too long")
        arguments = loads_object(arguments_json)
    except ArgumentError as err:
        arguments, problem = arguments_json[:RECORDED_CHARS], err

    def finish(outcome: Outcome, output: str) -> ToolResult:
        duration_ms = round((perf_counter() - started) * 1000)
        return ToolResult(name, outcome, output, duration_ms, arguments)

    tool = registry.get(name)
    if tool is None:
        logger.warning("The model called %r, which is not a registered realtime tool.", name)
        return finish("invalid", _message("invalid", f"There is no tool named {name}."))
    if not await _allowed(user, tool.permission):
        logger.info("Realtime tool %s refused to user %s.", name, getattr(user, "pk", None))
        return finish("denied", _message("denied", f"The caller may not use {name}."))
    if problem is None:
        try:
            kwargs = tool.bind(arguments)
        except ArgumentError as err:
            problem = err
    if problem is not None:
        logger.info("Realtime tool %s: invalid arguments (%s).", name, problem)
        text = f"Invalid arguments for {name}: {problem}."
        return finish("invalid", _message("invalid", text))
    limit = tool.timeout if tool.timeout is not None else timeout
    try:
        value = await asyncio.wait_for(_guarded(tool, user, call, kwargs), limit)
    except asyncio.TimeoutError:
        logger.warning("Realtime tool %s did not answer within %s s.", name, limit)
        return finish("timeout", _message("timeout", f"{name} did not answer in time."))
    except _ToolRaised as boxed:
        error = boxed.__cause__
        if isinstance(error, ToolError):
            logger.info("Realtime tool %s failed: %s", name, error)
            return finish("error", _message("error", str(error)))
        logger.error("Realtime tool %s raised.", name, exc_info=error)
        return finish("error", _message("error", f"{name} failed; it is not available now."))
    try:
        output = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    except (TypeError, ValueError):
        logger.exception("Realtime tool %s returned a value JSON cannot hold.", name)
        return finish("error", _message("error", f"{name} failed; it is not available now."))
    return finish("ok", output)
