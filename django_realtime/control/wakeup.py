"""Waking a worker at once on PostgreSQL: ``LISTEN`` on the channel the site NOTIFYs.

The site sends ``NOTIFY`` (:func:`django_realtime.calls.notify_workers`) when it
records a call or asks for one's end; a worker running :func:`listen` hears it on its
own asynchronous psycopg 3 connection (autocommit, on the worker's loop: waiting for a
notification never blocks the loop nor takes the database thread) and polls at once.
Polling every ``CONTROL_POLL_SECONDS`` stays as the fallback: for a lost connection
(re-opened with backoff), a notification sent while it was down, and for every other
database (SQLite has no NOTIFY).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)

#: The channel the site NOTIFYs and workers LISTEN on (a new call, or an end request).
NOTIFY_CHANNEL = "django_realtime_calls"
#: Re-opening a lost listening connection: first delay, doubled up to the maximum.
RECONNECT_INITIAL = 0.5
RECONNECT_MAX = 30.0
#: Keys of Django's connection parameters that only its own (sync) cursors understand.
_DJANGO_ONLY = frozenset({"cursor_factory", "context", "prepare_threshold"})


def can_listen(alias: str = "default") -> bool:
    """``True`` on PostgreSQL with psycopg 3 installed (what :func:`listen` needs)."""
    if connections[alias].vendor != "postgresql":
        return False
    try:
        import psycopg  # noqa: F401
    except ImportError:  # psycopg2: the worker polls
        return False
    return True


def connection_params(alias: str = "default") -> dict[str, Any]:
    """Django's parameters for ``alias`` (no connection is opened), for psycopg 3."""
    params = connections[alias].get_connection_params()
    return {k: v for k, v in params.items() if k not in _DJANGO_ONLY}


async def listen(
    wake: Callable[[], None],
    *,
    alias: str = "default",
    channel: str = NOTIFY_CHANNEL,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Call ``wake()`` for each notification on ``channel`` until cancelled.

    ``on_listening`` is called each time the ``LISTEN`` is in place (the worker then
    polls once: anything recorded while nobody listened is found). Never returns on
    its own; a lost connection is re-opened with backoff.
    """
    import psycopg

    params = connection_params(alias)
    delay = RECONNECT_INITIAL
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
            async with conn:
                await conn.execute(f"LISTEN {channel}")
                delay = RECONNECT_INITIAL
                if on_listening is not None:
                    on_listening()
                async for _ in conn.notifies():
                    wake()
        except psycopg.Error as err:
            logger.warning("LISTEN %s: %s; retrying in %.1f s", channel, err, delay)
        await asyncio.sleep(delay)
        delay = min(RECONNECT_MAX, delay * 2)
