"""The example project's ``SharedPoolRedisCache``: every cache object of a process with
the same servers and options shares one client (and its connection pool), where
Django's ``RedisCache`` builds one per object (per thread, and per request under ASGI).
No connection is made: clients connect lazily."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.cache.backends.redis import RedisCache

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example_project"))

from example_project.redis_cache import SharedPoolRedisCache


def test_cache_objects_with_the_same_servers_share_one_client() -> None:
    first = SharedPoolRedisCache("redis://127.0.0.1:6390/0", {})
    second = SharedPoolRedisCache("redis://127.0.0.1:6390/0", {})
    other = SharedPoolRedisCache("redis://127.0.0.1:6390/1", {})
    assert first is not second
    assert first._cache is second._cache
    assert first._cache._get_connection_pool(write=True) is second._cache._get_connection_pool(
        write=True
    )
    assert other._cache is not first._cache
    # Django's own backend: one client per cache object.
    plain = RedisCache("redis://127.0.0.1:6390/0", {})
    again = RedisCache("redis://127.0.0.1:6390/0", {})
    assert plain._cache is not again._cache


def test_one_redis_object_per_pool_not_per_operation() -> None:
    cache = SharedPoolRedisCache("redis://127.0.0.1:6390/2", {})
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client("any-key", write=True) is client
    assert client.connection_pool is cache._cache._get_connection_pool(write=True)
    # Django's own client: a new redis.Redis for each operation.
    plain = RedisCache("redis://127.0.0.1:6390/2", {})
    assert plain._cache.get_client(write=True) is not plain._cache.get_client(write=True)
