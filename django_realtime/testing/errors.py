"""Exceptions of the fake Realtime API, shared by its HTTP core, transport and server."""

from __future__ import annotations

import json
from typing import Any


class MissingExtraError(ImportError):
    """An optional dependency of the testing kit (aiortc, uvicorn) is not installed."""

    def __init__(self, package: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs {package!r}, which is not installed. Install the testing extra: "
            "pip install 'django-openai-realtime[testing]'"
        )
        self.package = package


class APIError(Exception):
    """An error the fake answers the way OpenAI does: ``{"error": {...}}`` with a status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",  # OpenAI's own field name
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        """The JSON error body, with all four fields OpenAI always sends."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()


class SimulatedTimeout(Exception):
    """Raised by the fake's core when a timeout fault fires.

    The in-process transport turns it into ``httpx.ReadTimeout``; the ASGI server
    holds the request open for ``seconds`` (or until the client gives up).
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"simulated upstream timeout ({seconds:g} s)")
        self.seconds = seconds
