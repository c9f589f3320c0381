"""Fault injection of the fake: answer the next requests to a path with an error,
a rate limit, a hang or a refused offer."""

from __future__ import annotations

import threading
from typing import Any

from .contract import INVALID_OFFER_MESSAGE
from .state import Fault
from .wire import route_path

__all__ = ["INVALID_OFFER_MESSAGE", "FaultInjection"]


class FaultInjection:
    """Mixed into :class:`~.fake.FakeRealtimeAPI`: the pending faults and their API."""

    faults: list[Fault]
    _lock: threading.RLock

    def add_fault(
        self,
        path: str,
        *,
        status: int = 500,
        json: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        method: str | None = "POST",
        timeout: float | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests to ``path`` (an fnmatch pattern, ``/v1``
        optional, e.g. ``/realtime/calls/*/accept``) with this status/JSON/headers, or
        with a hang of ``timeout`` seconds."""
        fault = Fault(
            path=route_path(path),
            status=status,
            json=json,
            headers=dict(headers or {}),
            times=times,
            method=method,
            timeout=timeout,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail_next(
        self,
        path: str,
        status: int = 500,
        *,
        message: str = "The server had an error while processing your request.",
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> Fault:
        """Answer the next ``times`` requests to ``path`` with an OpenAI-style error."""
        if error_type is None:
            error_type = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
        return self.add_fault(path, status=status, json=body, headers=headers, times=times)

    def rate_limit_next(
        self, path: str = "/realtime/*", *, retry_after: int | None = 1, times: int = 1
    ) -> Fault:
        """429 ``rate_limit_exceeded`` (with ``Retry-After`` unless ``None``)."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return self.fail_next(
            path,
            429,
            message="Rate limit reached for requests (fake).",
            code="rate_limit_exceeded",
            error_type="requests",
            headers=headers,
            times=times,
        )

    def timeout_next(self, path: str, *, seconds: float = 30.0, times: int = 1) -> Fault:
        """Hang the next requests: in-process ``httpx.ReadTimeout``; the server holds
        the request for ``seconds`` or until the client gives up."""
        return self.add_fault(path, timeout=seconds, times=times)

    def refuse_next_offer(self, message: str = INVALID_OFFER_MESSAGE, *, times: int = 1) -> Fault:
        """400 ``invalid_offer`` with ``message`` for the next SDP offers."""
        return self.fail_next(
            "/realtime/calls", 400, message=message, code="invalid_offer", times=times
        )

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None
