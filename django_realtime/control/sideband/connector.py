"""Opening one sideband socket: the ``websockets`` connector, and what a refusal means.

Part of the sideband package (the app's only WebSocket code). ``Connection`` is what
:class:`~django_realtime.control.sideband.Sideband` needs from an open socket, and a
``Connector`` opens one; tests pass their own (``testing.sideband_memory``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from ...conf import conf
from ...exceptions import CallNotFound, SidebandError, UpstreamAuthenticationError
from ..endpoint import USER_AGENT

logger = logging.getLogger(__name__)

#: Server events are small JSON; a session.created with long instructions and tools
#: stays well under this.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class Connection(Protocol):
    """What :class:`Sideband` needs from an open WebSocket (websockets' ClientConnection).

    Once the socket is closed, ``recv`` and ``send`` raise
    ``websockets.exceptions.ConnectionClosed`` (its ``rcvd`` carries the close code).
    """

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


#: ``await connector(url, headers)`` opens one connection. It raises ``CallNotFound``
#: for a call that is over and ``UpstreamAuthenticationError`` for a refused key (both
#: final); anything else (``OSError``, ``SidebandError``, timeouts) is retried.
Connector = Callable[[str, dict[str, str]], Awaitable[Connection]]


class _RedactHeaders(logging.Filter):
    """websockets logs the handshake's headers at DEBUG: never let the key through."""

    SECRET_HEADERS = frozenset({"authorization", "api-key"})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and str(args[0]).lower() in self.SECRET_HEADERS
        ):
            record.args = (args[0], "[redacted]")
        return True


#: The logger handed to websockets (its frames and handshake, at DEBUG).
ws_logger = logging.getLogger(f"{__package__}.websockets")
ws_logger.addFilter(_RedactHeaders())


def refusal_error(status: int, body: bytes | None, request_id: str | None = None) -> Exception:
    """An HTTP answer to the upgrade request -> our error tree (never the key).

    404 is :class:`CallNotFound`, 401/403 :class:`UpstreamAuthenticationError`, any
    other status a (retried) :class:`SidebandError`.
    """
    parsed: Any = None
    try:
        parsed = json.loads(body or b"")
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    fields: dict[str, Any] = {
        "status_code": status,
        "error_code": error.get("code") if isinstance(error, dict) else None,
        "error_message": error.get("message") if isinstance(error, dict) else None,
        "request_id": request_id,
    }
    if status == 404:
        return CallNotFound("The call is over (sideband: call_id_not_found).", **fields)
    if status in (401, 403):
        return UpstreamAuthenticationError("The API refused our key on the sideband.", **fields)
    return SidebandError("The API refused the sideband upgrade.", **fields)


class WebsocketsConnector:
    """The default :data:`Connector`: ``websockets``, with keepalive pings.

    A pong missing for ``ping_timeout`` seconds closes the socket (code 1011), which
    :class:`Sideband` treats like any close: it re-dials. ``compression`` is off by
    default (``"deflate"`` turns it on): permessage-deflate costs every socket its own
    zlib state and every frame CPU, for server events that are small JSON, and a worker
    holds many sockets.
    """

    def __init__(
        self,
        *,
        open_timeout: float | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float | None = 2.0,
        max_size: int = MAX_MESSAGE_BYTES,
        compression: str | None = None,
    ) -> None:
        self.compression = compression
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_size = max_size

    async def __call__(self, url: str, headers: dict[str, str]) -> Connection:
        user_agent = headers.pop("User-Agent", USER_AGENT)
        try:
            return await ws_connect(
                url,
                additional_headers=headers,
                user_agent_header=user_agent,
                open_timeout=self.open_timeout or conf.CONNECT_TIMEOUT,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=self.close_timeout,
                max_size=self.max_size,
                compression=self.compression,
                proxy=None,
                logger=ws_logger,
            )
        except InvalidStatus as err:
            response = err.response
            raise refusal_error(
                response.status_code, bytes(response.body), response.headers.get("x-request-id")
            ) from err
