from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

#: The event type this app handles; the core receiver knows none by name.
CALL_INCOMING = "realtime.call.incoming"


class RealtimeSipConfig(AppConfig):
    name = "django_realtime.sip"
    label = "realtime_sip"
    verbose_name = _("OpenAI Realtime telephony")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_realtime import webhooks

        from . import checks  # noqa: F401  (registers the system checks)
        from .incoming import handle_call_incoming

        webhooks.register_handler(CALL_INCOMING, handle_call_incoming)
