"""A fake OpenAI Realtime API (GA contract) for offline tests, shipped with the app.

- :class:`FakeRealtimeAPI`: the contract and its state (secrets, calls, faults, the
  request log); ``fake.transport`` is an httpx transport (sync and async) to install
  with ``django_realtime.client.set_transport``.
- :class:`FakeRealtimeServer`: the same fake served by uvicorn on 127.0.0.1 (for real
  browsers), also ``python -m django_realtime.testing.server``.
- Each WebRTC call is answered by a real aiortc peer that opens ``oai-events``, sends
  ``session.created``, plays a tone and counts the audio it hears.
- pytest fixtures: ``pytest_plugins = ["django_realtime.testing.pytest_plugin"]``.

aiortc and uvicorn come with the ``testing`` extra
(``pip install 'django-openai-realtime[testing]'``); the HTTP-only fake works without.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import APIError, MissingExtraError, SimulatedTimeout
from .fake import FakeRealtimeAPI
from .state import FakeCall, Fault, LoggedRequest, MintedSecret, PeerOptions
from .transport import FakeTransport
from .wire import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from .server import FakeRealtimeServer


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m django_realtime.testing.server`` does not find its own
    # module already imported by the package (runpy warns about that).
    if name == "FakeRealtimeServer":
        from .server import FakeRealtimeServer

        return FakeRealtimeServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APIError",
    "FakeCall",
    "FakeRealtimeAPI",
    "FakeRealtimeServer",
    "FakeRequest",
    "FakeResponse",
    "FakeTransport",
    "Fault",
    "LoggedRequest",
    "MintedSecret",
    "MissingExtraError",
    "PeerOptions",
    "SimulatedTimeout",
]
