from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoRealtimeConfig(AppConfig):
    name = "django_realtime"
    label = "django_realtime"
    verbose_name = _("OpenAI Realtime")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
