"""Mount with ``path("realtime/", include("django_realtime.async_urls"))`` under ASGI.

The same endpoints, names and contract as :mod:`django_realtime.urls`; minting and
relaying are ``async def`` views (:mod:`django_realtime.async_views`), so a request
waiting on the Realtime API holds no thread. Under WSGI mount ``django_realtime.urls``.
"""

from __future__ import annotations

from django.urls import path

from . import async_views, openapi, views, webhooks

app_name = "django_realtime"

urlpatterns = [
    path("presets/", views.PresetListView.as_view(), name="presets"),
    path("client-secrets/", async_views.AsyncClientSecretView.as_view(), name="client-secrets"),
    path("calls/", async_views.AsyncCallView.as_view(), name="calls"),
    path("webhooks/openai/", webhooks.OpenAIWebhookView.as_view(), name="webhook"),
    path("schema/", openapi.OpenAPISchemaView.as_view(), name="openapi-schema"),
]
