"""Keep the fake's ICE host candidates on 127.0.0.1, for the fake's threads only.

Why: aioice gathers host candidates from every interface *except* 127.0.0.1
(``aioice.ice.get_host_addresses``). The fake's answer would then advertise the
machine's LAN addresses, and a browser confined to loopback (``unshare -n`` or
``--allow-loopback-in-peer-connection``) could never connect; on a normal host the
checks would also go to LAN addresses. With only 127.0.0.1 nothing leaves the machine.

Why scoped: patching the function for the whole process would silently change any
other aiortc code running in it (a user's own WebRTC code, or a client peer in a test
that wants real interfaces). So the patch is installed once (idempotent: it marks
itself, and never wraps a wrapper) and only answers "127.0.0.1" on threads that
asked for it; everyone else gets aioice's normal answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LOOPBACK = "127.0.0.1"

_lock = threading.Lock()
_loopback_threads: dict[int, int] = {}  # thread ident -> nesting depth
_MARK = "_django_realtime_loopback"


def _is_loopback_thread() -> bool:
    return _loopback_threads.get(threading.get_ident(), 0) > 0


def install() -> None:
    """Wrap ``aioice.ice.get_host_addresses`` once per process (safe to call repeatedly)."""
    import aioice.ice

    with _lock:
        current = aioice.ice.get_host_addresses
        if getattr(current, _MARK, False):
            return
        original: Callable[..., list[str]] = current

        def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            if _is_loopback_thread():
                return [LOOPBACK] if use_ipv4 else []
            return original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)

        setattr(get_host_addresses, _MARK, True)
        aioice.ice.get_host_addresses = get_host_addresses


def restrict_current_thread() -> None:
    """Make every ICE gathering on this thread loopback-only, for the thread's lifetime.

    For a thread that runs only the fake's peers (its event-loop thread).
    """
    install()
    with _lock:
        ident = threading.get_ident()
        _loopback_threads[ident] = _loopback_threads.get(ident, 0) + 1


def release_current_thread() -> None:
    """Undo one :func:`restrict_current_thread` on this thread."""
    with _lock:
        ident = threading.get_ident()
        depth = _loopback_threads.get(ident, 0) - 1
        if depth > 0:
            _loopback_threads[ident] = depth
        else:
            _loopback_threads.pop(ident, None)


@contextmanager
def loopback_only() -> Iterator[None]:
    """Within the block, aiortc peers gathering on *this* thread use 127.0.0.1 only.

    Use it around a test's own aiortc client peer (its gathering happens on the
    thread running the test's event loop).
    """
    restrict_current_thread()
    try:
        yield
    finally:
        release_current_thread()


def is_installed() -> bool:
    """Whether the scoped patch is in place (for tests and diagnostics)."""
    try:
        import aioice.ice
    except ImportError:
        return False
    fn: Any = aioice.ice.get_host_addresses
    return bool(getattr(fn, _MARK, False))
