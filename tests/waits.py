"""Waiting on a condition in async tests: poll it every 10 ms, fail after ``timeout``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 10
) -> None:
    """Return once ``predicate()`` (a plain or async callable) is true."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
