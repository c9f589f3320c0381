"""The daily budget of a running call: a spoken warning, then a hang-up (reason ``quota``).

When the controller attaches, the watch reads what the call's user has left today under
the :class:`~django_realtime.models.UsageLimit` rows of the call's preset
(:func:`~django_realtime.quotas.remaining_seconds_and_dollars`, which counts this call
too). The minutes run out at a known moment on the controller's clock; the cost is
re-read every :data:`POLL_SECONDS` (it grows with each ``response.done``). A limit raised
in the admin during the call applies to the minutes from the next call on.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from .. import quotas
from ..call_models import RealtimeCall
from ..conf import conf

if TYPE_CHECKING:
    from .controller import CallController

__all__ = ["POLL_SECONDS", "QUOTA_WARNING", "QuotaWatch"]

logger = logging.getLogger(__name__)

#: How often the remaining daily cost is re-read while a call runs.
POLL_SECONDS = 15.0
QUOTA_WARNING = (
    "In one short sentence, tell the caller that their daily voice allowance is "
    "nearly used up and the call will end shortly."
)


def _budget(pk: int) -> tuple[float | None, Decimal | None]:
    call = RealtimeCall.objects.select_related("user", "preset").filter(pk=pk).first()
    if call is None or call.user is None:
        return None, None
    return quotas.remaining_seconds_and_dollars(call.user, call.preset)


class QuotaWatch:
    """Warns, then ends ``controller``'s call when its user's daily budget runs out."""

    def __init__(self, controller: CallController) -> None:
        self.controller = controller
        self.warned = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin watching (after attach); a store without a database row has no budget."""
        if getattr(self.controller.store, "pk", None) is None:
            return
        self.task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _read(self) -> tuple[float | None, Decimal | None]:
        return await sync_to_async(_budget)(self.controller.store.pk)  # type: ignore[attr-defined]

    async def _run(self) -> None:
        clock = self.controller.clock
        seconds, dollars = await self._read()
        if seconds is None and dollars is None:
            return
        deadline = None if seconds is None else clock.now() + seconds
        warn_before = conf.QUOTA_WARNING_SECONDS
        while self.controller.end_reason is None:
            now = clock.now()
            out_of_money = dollars is not None and dollars <= 0
            if out_of_money or (deadline is not None and now >= deadline):
                logger.info("call %s: daily quota used up", self.controller.call_id)
                self.controller.request_end("quota")
                return
            if not self.warned and deadline is not None and now >= deadline - warn_before:
                await self._warn(deadline - now)
            wake = [POLL_SECONDS]
            if deadline is not None:
                wake.append(deadline - now if self.warned else deadline - warn_before - now)
            await clock.sleep(max(0.0, min(wake)))
            if dollars is not None:
                _, dollars = await self._read()

    async def _warn(self, seconds_left: float) -> None:
        self.warned = True
        await self.controller.sideband.send(
            {"type": "response.create", "response": {"instructions": QUOTA_WARNING}}
        )
        await self.controller.store.record_event(
            "warning", {"message": "daily quota near", "seconds_left": round(seconds_left)}
        )
