"""A clock that tests move by hand, for code that takes ``clock=`` (the call controller).

::

    clock = ManualClock()
    controller = CallController(..., clock=clock)
    await clock.advance(50)  # every sleeper due by then wakes, in deadline order
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class ManualClock:
    """``now()`` (seconds, like ``time.time``) and ``await sleep(seconds)`` that only
    return when :meth:`advance` moves the clock past their deadline."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (a test can wait until the code under test sleeps)."""
        return sum(1 for *_, future in self._sleepers if not future.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move forward, waking every sleeper due, and let them run."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)
