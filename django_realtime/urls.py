"""Mount with ``path("realtime/", include("django_realtime.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import views, webhooks

app_name = "django_realtime"

urlpatterns = [
    path("presets/", views.PresetListView.as_view(), name="presets"),
    path("client-secrets/", views.ClientSecretView.as_view(), name="client-secrets"),
    path("calls/", views.CallView.as_view(), name="calls"),
    path("webhooks/openai/", webhooks.OpenAIWebhookView.as_view(), name="webhook"),
]
