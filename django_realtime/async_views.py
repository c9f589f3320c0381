"""The mint and relay views for ASGI sites: no thread is held while the upstream answers.

Mount :mod:`django_realtime.async_urls` instead of :mod:`django_realtime.urls` under
an ASGI server. Each POST runs in three steps:

1. one worker-thread hop (``sync_to_async``) for everything before the upstream
   call, exactly the sync view's code: DRF authentication and permissions, the
   body, the preset, the rate limit, the ``pending`` audit row;
2. the upstream call on the event loop (:func:`~django_realtime.gate.acall_mint`,
   the async client, one pool per loop);
3. one hop for what follows: the finished audit row, the signal, the response
   (rendered there, so Django needs no further hop to render it).

Failures at any step go through the sync view's ``handle_exception`` (same codes,
same audit row, same anonymous budget). Two hops rather than the async ORM's one
per statement: each hop costs a thread switch, and authentication alone is two
statements. A client that disconnects mid-call cancels the view: its row is then
finished ``abandoned`` (the secret may exist upstream), never left ``pending``.
Other methods (``OPTIONS``, a wrong method) run DRF's sync dispatch in one hop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.response import Response

from . import gate
from .models import AuditOutcome
from .views import CallView, ClientSecretView, _GateView

__all__ = ["AsyncCallView", "AsyncClientSecretView"]


def _rendered(response: HttpResponseBase) -> HttpResponseBase:
    """A DRF ``Response`` as a plain, rendered ``HttpResponse`` (Django would render a
    template response in a thread hop of its own)."""
    if not isinstance(response, Response):
        return response
    response.render()
    plain = HttpResponse(response.content, status=response.status_code)
    for name, value in response.items():
        plain[name] = value
    return plain


class _AsyncGate(_GateView):
    """An ``async def dispatch`` around a sync gate view's ``before_upstream`` /
    ``after_upstream`` (subclasses say which upstream call runs between them)."""

    view_is_async = True  # Django reads it in as_view()

    async def upstream(self, ready: Any) -> Any:
        raise NotImplementedError

    async def dispatch(  # type: ignore[override]  # Django awaits an async view's dispatch
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> Any:
        if request.method != "POST":
            sync_dispatch = super().dispatch
            return _rendered(await sync_to_async(sync_dispatch)(request, *args, **kwargs))
        ready = await sync_to_async(self._before)(request, args, kwargs)
        if isinstance(ready, HttpResponseBase):
            return ready
        try:
            result = await self.upstream(ready)
        except asyncio.CancelledError:
            await asyncio.shield(sync_to_async(self._abandon)())
            raise
        except Exception as exc:
            return await sync_to_async(self._answer_failure)(exc)
        return await sync_to_async(self._after)(ready, result)

    def _before(self, request: HttpRequest, args: Any, kwargs: Any) -> Any:
        # What APIView.dispatch does before calling the handler.
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request, *args, **kwargs)
            return self.before_upstream(drf_request)  # type: ignore[attr-defined]
        except Exception as exc:
            return self._answer_failure(exc)

    def _after(self, ready: Any, result: Any) -> HttpResponseBase:
        try:
            response = self.after_upstream(ready, result)  # type: ignore[attr-defined]
        except Exception as exc:
            response = self.handle_exception(exc)
        return self._final(response)

    def _answer_failure(self, exc: Exception) -> HttpResponseBase:
        return self._final(self.handle_exception(exc))

    def _final(self, response: Any) -> HttpResponseBase:
        # Also CallView's plain HttpResponse (SDP), which DRF passes through.
        final = self.finalize_response(self.request, response, *self.args, **self.kwargs)
        return _rendered(final)

    def _abandon(self) -> None:
        if not self.attempt.finished:
            self.attempt.finish(
                AuditOutcome.ABANDONED,
                error_code="abandoned",
                error_message="The client went away before the upstream call finished.",
            )


class AsyncClientSecretView(_AsyncGate, ClientSecretView):
    """:class:`~django_realtime.views.ClientSecretView` for ASGI (same contract)."""

    async def upstream(self, ready: Any) -> Any:
        _preset, payload = ready
        return await gate.acall_mint(payload, self.attempt)


class AsyncCallView(_AsyncGate, CallView):
    """:class:`~django_realtime.views.CallView` for ASGI (same contract)."""

    async def upstream(self, ready: Any) -> Any:
        _preset, sdp, session = ready
        return await gate.acall_relay(sdp, session, self.attempt)
