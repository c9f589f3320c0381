"""Rate-limit counters in the shared cache, counted the way django-ratelimit counts them.

django-ratelimit's ``get_usage`` costs two cache round trips (``add``, then
``incr``), and Django's ``RedisCache`` builds a new ``redis.Redis`` object for each.
When the rate-limit cache is a ``RedisCache``, :func:`count` makes the same count
in one round trip: a Lua script (``INCR``, and ``EXPIRE`` on the first count) on a
client built once per process, on the same key, window and expiry as
django-ratelimit (its private helpers compute them, so both count one counter).
Any other cache backend goes through ``get_usage`` unchanged. ``INCR`` is atomic,
so the limit is exact across threads and processes either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django_ratelimit.core import (
    EXPIRATION_FUDGE,
    _get_window,
    _make_cache_key,
    _split_rate,
    get_usage,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

#: Counts one attempt; sets the expiry once, when the counter is created.
INCR_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""

#: Options of Django's RedisCache that are not connection-pool options.
_NOT_POOL_OPTIONS = ("pool_class", "parser_class", "serializer")


@dataclass(frozen=True)
class Usage:
    """One counted attempt: the count so far in this window, the limit, seconds left."""

    count: int
    limit: int
    time_left: int

    @property
    def should_limit(self) -> bool:
        return self.count > self.limit


class CacheUnavailable(Exception):
    """The counter could not be read or written (the gate then fails closed)."""


_lock = threading.Lock()
_clients: dict[tuple[str, ...], Any] = {}
_scripts: dict[tuple[str, ...], Any] = {}


def redis_client(cache: RedisCache) -> Any:
    """One ``redis.Redis`` per process and server list, on the cache's first server.

    Django keeps one cache object per thread, and under ASGI per request context, so
    its ``RedisCache`` opens a new connection pool (a TCP connect) for each request
    served in a new context; this client is shared by every request of the process.
    """
    servers: list[str] = list(cache._servers)  # type: ignore[attr-defined]
    key = tuple(servers)
    with _lock:
        client = _clients.get(key)
        if client is None:
            import redis

            options: dict[str, Any] = dict(cache._options)  # type: ignore[attr-defined]
            pool_options = {k: v for k, v in options.items() if k not in _NOT_POOL_OPTIONS}
            # The first server takes the writes, as in Django's RedisCache.
            pool = redis.ConnectionPool.from_url(servers[0], **pool_options)
            client = _clients[key] = redis.Redis(connection_pool=pool)
    return client


def _script(cache: RedisCache) -> Any:
    """The registered INCR script on the process's :func:`redis_client`."""
    key = tuple(cache._servers)  # type: ignore[attr-defined]
    script = _scripts.get(key)
    if script is None:
        script = redis_client(cache).register_script(INCR_SCRIPT)
        with _lock:
            _scripts[key] = script
    return script


def reset() -> None:
    """Forget the per-process clients (tests that switch Redis servers)."""
    with _lock:
        _clients.clear()
        _scripts.clear()


def count(
    request: HttpRequest,
    *,
    group: str,
    key: Callable[[str, HttpRequest], str],
    rate: str,
) -> Usage | None:
    """Count one attempt of ``key``'s value in ``group`` at ``rate``.

    ``None`` when rate limiting is off (``RATELIMIT_ENABLE = False``) or the cache is
    down and the site chose ``RATELIMIT_FAIL_OPEN``; raises :class:`CacheUnavailable`
    when it is down otherwise. Any cache error propagates as itself.
    """
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if not isinstance(cache, RedisCache):
        return _with_django_ratelimit(request, group=group, key=key, rate=rate)
    value = key(group, request)
    limit, period = _split_rate(rate)
    window = _get_window(value, period)
    cache_key = cache.make_and_validate_key(_make_cache_key(group, window, rate, value, None))
    counted = int(_script(cache)(keys=[cache_key], args=[period + EXPIRATION_FUDGE]))
    return Usage(count=counted, limit=limit, time_left=window - int(time.time()))


def _with_django_ratelimit(
    request: HttpRequest,
    *,
    group: str,
    key: Callable[[str, HttpRequest], str],
    rate: str,
) -> Usage | None:
    usage: dict[str, Any] | None = get_usage(
        request, group=group, key=key, rate=rate, increment=True
    )
    if usage is None:
        return None
    # django-ratelimit reports a cache it could not read or write as limit 0,
    # time_left -1 (unless RATELIMIT_FAIL_OPEN, which returns None: the site's choice).
    if usage["limit"] == 0 and usage["time_left"] == -1:
        raise CacheUnavailable("no counter")
    return Usage(count=int(usage["count"]), limit=int(usage["limit"]), time_left=usage["time_left"])
