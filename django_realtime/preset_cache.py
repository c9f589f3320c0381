"""Active presets (with their allowed groups), and whether any usage limit exists,
served from process memory, invalidated at once on every process through a version
in the shared cache.

A mint looks its preset up on every request; the preset and its groups are two
queries that rarely change. Each process keeps the presets it has loaded under
the *version* it read from the shared cache (the rate-limit cache, so the same
one every process already shares) before loading them. Saving or deleting a
preset, changing its groups, deleting a group, or saving or deleting a usage limit
writes a new version, so the
next request on any process sees the change: one cache read per lookup, no timer.

The version is written when the change is made and again when its transaction
commits: the first makes the change visible to the transaction that made it, the
second stops another process from caching the old row under the new version
before the commit. ``QuerySet.update()`` sends no signals: call
:func:`invalidate` after one.

A memoised preset is shared by every request of the process: treat it as
read-only (the gate does; the admin loads its own).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisSerializer
from django.db import transaction

from . import counters
from .models import SessionPreset, UsageLimit

logger = logging.getLogger(__name__)

VERSION_KEY = "django_realtime:presets:version"
#: Presets kept per process; beyond it, the memo starts again (a site has a handful).
MAX_MEMO = 1024

#: Reads what Django's RedisCache wrote (pickled unless an int).
_SERIALIZER = RedisSerializer()
_lock = threading.Lock()
_memo_version: str | None = None
_memo: dict[str, SessionPreset] = {}
#: Whether any ``UsageLimit`` row exists, under ``_memo_version`` (``None``: not read).
_limits_exist: bool | None = None


def _cache() -> Any:
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def invalidate() -> None:
    """Write a new version now and when the current transaction commits."""
    _write_version()
    transaction.on_commit(_write_version)


def _write_version() -> None:
    try:
        _cache().set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception as err:  # the cache backend's own error type
        # Nothing can be served stale by a process that cannot read the version
        # either: lookups then go to the database (see current_version).
        logger.error("Could not invalidate the preset cache (%s).", type(err).__name__)


def _read_version(cache: Any) -> Any:
    if isinstance(cache, RedisCache):
        # The process-wide client: Django's own opens a connection per ASGI request.
        raw = counters.redis_client(cache).get(cache.make_and_validate_key(VERSION_KEY))
        return None if raw is None else _SERIALIZER.loads(raw)
    return cache.get(VERSION_KEY)


def current_version() -> str | None:
    """The shared version (created when missing); ``None`` when the cache is down."""
    cache = _cache()
    try:
        version = _read_version(cache)
        if version is None:
            cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
            version = cache.get(VERSION_KEY)
    except Exception as err:
        logger.warning("Preset cache version unreadable (%s): reading the database.", err)
        return None
    return str(version) if version is not None else None


def _load(slug: str) -> SessionPreset | None:
    return (
        SessionPreset.objects.filter(slug=slug, is_active=True)
        .prefetch_related("allowed_groups")
        .first()
    )


def active_preset(slug: str) -> SessionPreset | None:
    """The active preset ``slug`` with its groups prefetched, or ``None``.

    No query when this process already loaded it under the current version.
    Unknown slugs are not memoised (a probe for random slugs cannot grow the memo).
    """
    return _preset_under(current_version(), slug)


def usage_limits_exist() -> bool:
    """Whether the site has any ``UsageLimit`` row (``True`` when the cache is down).

    Memoised under the same version as the presets (a limit's save or delete writes a
    new one), so a site without quotas spends no query on them per mint.
    """
    return _limits_under(current_version())


def preset_and_limits(slug: str) -> tuple[SessionPreset | None, bool]:
    """:func:`active_preset` and :func:`usage_limits_exist` on one version read."""
    version = current_version()
    return _preset_under(version, slug), _limits_under(version)


def _adopt(version: str) -> None:
    """Drop what was memoised under another version (call with ``_lock`` held)."""
    global _memo_version, _limits_exist
    if version != _memo_version:
        _memo.clear()
        _limits_exist = None
        _memo_version = version


def _preset_under(version: str | None, slug: str) -> SessionPreset | None:
    if version is None:
        return _load(slug)
    with _lock:
        _adopt(version)
        found = _memo.get(slug)
    if found is not None:
        return found
    preset = _load(slug)  # loaded after reading ``version``: never newer than it says
    if preset is not None:
        with _lock:
            if _memo_version == version:
                if len(_memo) >= MAX_MEMO:
                    _memo.clear()
                _memo[slug] = preset
    return preset


def _limits_under(version: str | None) -> bool:
    global _limits_exist
    if version is None:
        return True
    with _lock:
        _adopt(version)
        known = _limits_exist
    if known is not None:
        return known
    exists = UsageLimit.objects.exists()  # read after the version: never newer than it
    with _lock:
        if _memo_version == version:
            _limits_exist = exists
    return exists


def clear_local() -> None:
    """Forget this process's memo (tests; the shared version is untouched)."""
    global _memo_version, _limits_exist
    with _lock:
        _memo.clear()
        _memo_version = None
        _limits_exist = None


def on_preset_change(sender: Any, **kwargs: Any) -> None:
    """Receiver for preset saves/deletes, group changes and group deletes."""
    invalidate()


def connect() -> None:
    """Connect :func:`on_preset_change` (called once, from the app's ``ready()``)."""
    from django.contrib.auth.models import Group
    from django.db.models.signals import m2m_changed, post_delete, post_save

    uid = "django_realtime.preset_cache"
    post_save.connect(on_preset_change, sender=SessionPreset, dispatch_uid=f"{uid}.save")
    post_delete.connect(on_preset_change, sender=SessionPreset, dispatch_uid=f"{uid}.delete")
    through = SessionPreset.allowed_groups.through
    m2m_changed.connect(on_preset_change, sender=through, dispatch_uid=f"{uid}.groups")
    # Deleting a group removes its rows from the through table without m2m_changed.
    post_delete.connect(on_preset_change, sender=Group, dispatch_uid=f"{uid}.group")
    post_save.connect(on_preset_change, sender=UsageLimit, dispatch_uid=f"{uid}.limit.save")
    post_delete.connect(on_preset_change, sender=UsageLimit, dispatch_uid=f"{uid}.limit.delete")
