"""Serve the fake over HTTP on 127.0.0.1: a thread for tests, a CLI for humans.

``FakeRealtimeServer`` runs uvicorn in a daemon thread with its own event loop, on a
socket bound *before* the thread starts (port 0: a free port with no race), so sync
tests (Playwright's sync API, pytest-django's ``live_server``) can use it::

    with FakeRealtimeServer() as server:
        settings.DJANGO_REALTIME["API_BASE"] = server.url   # http://127.0.0.1:PORT/v1
        ...
        server.fake.last_call.stats()

CLI (loopback only, any other host is refused)::

    python -m django_realtime.testing.server --port 8765 [--api-key sk-...] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from .errors import MissingExtraError
from .fake import FakeRealtimeAPI

LOOPBACK_HOSTS = ("127.0.0.1",)
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def _check_host(host: str) -> None:
    # The fake accepts any sk- key and answers with a live media peer: it must never be
    # reachable from another machine.
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"The fake Realtime API binds 127.0.0.1 only, not {host!r}.")


class FakeRealtimeServer:
    """uvicorn serving a :class:`FakeRealtimeAPI` in a daemon thread on 127.0.0.1.

    ``url`` is the API base (``http://127.0.0.1:PORT/v1``), ``origin`` the server root,
    ``fake`` the shared state (stats, faults, calls). A context manager; :meth:`stop`
    hangs up every call and stops the thread.
    """

    def __init__(
        self,
        fake: FakeRealtimeAPI | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **fake_options: Any,
    ) -> None:
        _check_host(host)
        self.fake = fake if fake is not None else FakeRealtimeAPI(**fake_options)
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        if self.port is None:
            raise RuntimeError("FakeRealtimeServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base to put in ``DJANGO_REALTIME["API_BASE"]``."""
        return f"{self.origin}/v1"

    @property
    def calls_url(self) -> str:
        """Where a browser posts its SDP offer (``CONNECT_URL``)."""
        return f"{self.url}/realtime/calls"

    def start(self) -> FakeRealtimeServer:
        """Bind, start the thread, wait until uvicorn accepts connections."""
        try:
            import uvicorn
        except ImportError as exc:
            raise MissingExtraError("uvicorn", "FakeRealtimeServer") from exc
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.fake.asgi_app(),
            loop="asyncio",
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="fake-realtime-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Realtime API server did not start")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        # uvicorn skips signal handlers off the main thread, so this is safe here.
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def stop(self) -> None:
        """Hang up every call, stop uvicorn and the peers' thread."""
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.fake.close()

    def __enter__(self) -> FakeRealtimeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m django_realtime.testing.server``: serve the fake until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m django_realtime.testing.server",
        description="Serve a FAKE OpenAI Realtime API (GA contract) on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 only (default)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        help="accept this server key (any sk-... key is accepted anyway)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument(
        "--no-webrtc",
        action="store_true",
        help="answer offers with a static SDP instead of an aiortc peer",
    )
    args = parser.parse_args(argv)
    try:
        _check_host(args.host)
    except ValueError as err:
        parser.error(str(err))
    server = FakeRealtimeServer(
        host=args.host,
        port=args.port,
        api_keys=args.api_keys,
        latency=args.latency,
        webrtc=not args.no_webrtc,
    )
    server.start()
    print(
        f"FAKE OpenAI Realtime API (django_realtime.testing), not the real service: "
        f"nothing leaves this machine.\nAPI base: {server.url}\n"
        f"Stats: {server.origin}/_fake/stats",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
