"""Answering the model's function calls of server tools, from the controller's sideband.

For each ``function_call`` of a server tool (seen in ``response.function_call_arguments.done``
or in ``response.done``'s output items) the dispatcher runs the tool as the call's user
(:func:`~django_realtime.tools.run_tool`: permission, still active, timeout, never a
traceback), records a ``tool_call`` event (``name``, ``arguments``, ``outcome``,
``duration_ms``, ``output``, ``call_id``) and, once every server call of that response is
answered, sends their ``function_call_output`` items in the response's order and ONE
``response.create``.

A function call is never answered twice: the dispatcher remembers each ``call_id`` it
took (across a re-dialled sideband, the controller is the same), the ones already
recorded in the database (a worker that took the call over), and the outputs somebody
else added to the conversation (a browser that answered first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from ..call_models import CallEvent, RealtimeCall
from ..conf import conf
from ..tools import registry, run_tool

if TYPE_CHECKING:
    from .leash import CallStore, Leash
    from .sideband import Sideband

__all__ = ["ToolDispatcher", "server_tool_names"]

logger = logging.getLogger(__name__)

ARGUMENTS_DONE = "response.function_call_arguments.done"
ITEM_EVENTS = ("conversation.item.added", "conversation.item.created", "conversation.item.done")


def server_tool_names(session: Mapping[str, Any], chosen: Iterable[str] | None = None) -> set[str]:
    """The function tools of ``session`` the server answers: registered, and (when the
    preset is known) among its ``server_tools``."""
    names = {
        str(tool.get("name"))
        for tool in session.get("tools") or ()
        if isinstance(tool, Mapping) and tool.get("type") == "function"
    }
    names &= set(registry)
    return names if chosen is None else names & set(chosen)


class ToolDispatcher:
    """The server tools' side of one call (the controller feeds it every event)."""

    def __init__(
        self,
        sideband: Sideband,
        store: CallStore,
        leash: Leash,
        *,
        user: Any = None,
        call: Any = None,
        pending: set[asyncio.Task[None]] | None = None,
    ) -> None:
        self.sideband = sideband
        self.store = store
        self.names = server_tool_names(leash.session)
        self._user, self._call = user, call
        self._loaded = user is not None or call is not None
        self.answered: set[str] = set()
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._by_response: dict[str, list[str]] = {}
        #: The answering tasks (the controller's set, so it waits for them at the end).
        self.tasks: set[asyncio.Task[None]] = pending if pending is not None else set()

    def bind(self, *, user: Any, call: Any = None) -> None:
        """Run the tools as ``user`` for ``call`` (instead of reading them from the
        store's database row: a store without one, or a test)."""
        self._user, self._call, self._loaded = user, call, True

    async def handle(self, event: Mapping[str, Any]) -> bool:
        """Take ``event`` if it is a server tool's function call; ``True`` when taken."""
        kind = event.get("type")
        if kind in ITEM_EVENTS:
            item = event.get("item") or {}
            if isinstance(item, Mapping) and item.get("type") == "function_call_output":
                self.answered.add(str(item.get("call_id")))  # someone answered it
            return False
        if not self.names or kind not in (ARGUMENTS_DONE, "response.done"):
            return False
        await self._load()
        if kind == ARGUMENTS_DONE:
            if event.get("name") not in self.names:
                return False
            await self._start(str(event.get("response_id") or ""), event)
            return True
        if kind == "response.done":
            response = event.get("response") or {}
            items = [
                item
                for item in response.get("output") or ()
                if isinstance(item, Mapping)
                and item.get("type") == "function_call"
                and item.get("name") in self.names
            ]
            response_id = str(response.get("id") or "")
            for item in items:
                await self._start(response_id, item)
            order = self._by_response.pop(response_id, [])
            if order:
                task = asyncio.ensure_future(self._answer(order))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            return False  # the controller still meters the response
        return False

    async def _start(self, response_id: str, call: Mapping[str, Any]) -> None:
        call_id = str(call.get("call_id") or "")
        if not call_id or call_id in self._running:
            return
        if call_id in self.answered:
            logger.info("call %s: function call %s already answered", self.sideband, call_id)
            return
        self.answered.add(call_id)
        name, arguments = str(call.get("name")), call.get("arguments")
        self._running[call_id] = asyncio.ensure_future(
            run_tool(
                name,
                arguments if isinstance(arguments, str) else "",
                user=self._user,
                call=self._call,
                timeout=conf.TOOL_TIMEOUT,
            )
        )
        self._by_response.setdefault(response_id, []).append(call_id)

    async def _answer(self, call_ids: list[str]) -> None:
        results = await asyncio.gather(*(self._running[c] for c in call_ids))
        for call_id, result in zip(call_ids, results, strict=True):
            await self.store.record_event("tool_call", {**result.event_data(), "call_id": call_id})
            await self.sideband.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call_output",
                        "call_id": call_id,
                        "output": result.output,
                    },
                }
            )
        await self.sideband.send({"type": "response.create"})

    async def _load(self) -> None:
        """The call's user and ``RealtimeCall``, and the calls answered before (once)."""
        if self._loaded:
            return
        self._loaded = True
        pk = getattr(self.store, "pk", None)
        if pk is None:
            return
        self._call, self._user, done = await sync_to_async(_context)(pk)
        self.answered |= done
        if self._call is not None and self._call.preset is not None:
            self.names &= set(self._call.preset.server_tools or ())


def _context(pk: int) -> tuple[Any, Any, set[str]]:
    call = RealtimeCall.objects.select_related("user", "preset").filter(pk=pk).first()
    done = CallEvent.objects.filter(call_id=pk, kind="tool_call").values_list("data", flat=True)
    ids = {str(data.get("call_id")) for data in done if isinstance(data, dict)}
    return call, (call.user if call is not None else None), ids
