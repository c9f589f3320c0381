"""Django's built-in middleware, run on the event loop under ASGI instead of in threads.

Under ASGI, Django runs every old-style (``MiddlewareMixin``) hook of every middleware
through ``sync_to_async``: with the default stack that is about a dozen thread hops
per request, each a thread switch and its bookkeeping, for code that does no I/O.
These subclasses run those hooks directly on the loop, and hop to a thread only in
the cases that touch the database or the cache: saving a modified session, and
storing messages (which may load the session). List them in ``MIDDLEWARE`` of an ASGI
deployment only, in place of Django's classes (the mint benchmark's ASGI site does);
under WSGI Django calls the hooks directly and the originals cost nothing extra.
``AuthenticationMiddleware`` is async-native since Django 5.0 and stays as it is.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware

__all__ = [
    "OnLoopCommonMiddleware",
    "OnLoopCsrfViewMiddleware",
    "OnLoopMessageMiddleware",
    "OnLoopSecurityMiddleware",
    "OnLoopSessionMiddleware",
    "OnLoopXFrameOptionsMiddleware",
]


class _OnLoop:
    """``__acall__`` without thread hops for hooks that do no I/O; ``must_hop`` says
    when ``process_response`` does (then it runs in a thread, as Django would)."""

    get_response: Any

    def must_hop(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        process_request = getattr(self, "process_request", None)
        if process_request is not None:
            response = process_request(request)
        response = response or await self.get_response(request)
        process_response = getattr(self, "process_response", None)
        if process_response is None:
            return response  # type: ignore[no-any-return]
        if self.must_hop(request, response):
            hop = sync_to_async(process_response, thread_sensitive=True)
            return await hop(request, response)  # type: ignore[no-any-return]
        return process_response(request, response)  # type: ignore[no-any-return]


class OnLoopSecurityMiddleware(_OnLoop, SecurityMiddleware):
    """``SecurityMiddleware`` (headers and redirects only)."""


class OnLoopCommonMiddleware(_OnLoop, CommonMiddleware):
    """``CommonMiddleware`` (URL checks against the URLconf, no I/O)."""


class OnLoopXFrameOptionsMiddleware(_OnLoop, XFrameOptionsMiddleware):
    """``XFrameOptionsMiddleware`` (one header)."""


class OnLoopSessionMiddleware(_OnLoop, SessionMiddleware):
    """``SessionMiddleware``: the session loads lazily (in the view's own thread, when it
    reads it); only a save goes to a thread."""

    def must_hop(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        session = getattr(request, "session", None)
        if session is None:
            return False
        return bool(session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class OnLoopMessageMiddleware(_OnLoop, MessageMiddleware):
    """``MessageMiddleware``: storing messages may read or write the session, so a
    request that used or added messages stores them in a thread."""

    def must_hop(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        storage = getattr(request, "_messages", None)
        return bool(storage is not None and (storage.used or storage.added_new))


class OnLoopCsrfViewMiddleware(_OnLoop, CsrfViewMiddleware):
    """``CsrfViewMiddleware``: its ``process_view`` reads the cookie, the header and, for
    a form post, the body Django has already received; it runs on the loop too."""

    async def process_view(  # type: ignore[override]  # Django awaits a coroutine hook
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> HttpResponseBase | None:
        return super().process_view(request, callback, callback_args, callback_kwargs)
