"""Mount with ``path("realtime/", include("django_realtime.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import call_views, openapi, views, webhooks

app_name = "django_realtime"

urlpatterns = [
    path("presets/", views.PresetListView.as_view(), name="presets"),
    path("client-secrets/", views.ClientSecretView.as_view(), name="client-secrets"),
    path("calls/", views.CallView.as_view(), name="calls"),
    path("calls/attach/", call_views.CallAttachView.as_view(), name="call-attach"),
    path("calls/<str:call_id>/end/", call_views.CallEndView.as_view(), name="call-end"),
    path("webhooks/openai/", webhooks.OpenAIWebhookView.as_view(), name="webhook"),
    path("schema/", openapi.OpenAPISchemaView.as_view(), name="openapi-schema"),
]
