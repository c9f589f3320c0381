from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoRealtimeConfig(AppConfig):
    name = "django_realtime"
    label = "django_realtime"
    verbose_name = _("OpenAI Realtime")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            preset_cache,
        )
        from .tools import autodiscover

        preset_cache.connect()
        autodiscover()  # every installed app's realtime_tools.py, like admin.py
        from .call_models import RealtimeCall
        from .pruning import Target, register

        # Ended calls go with their events (CASCADE); live ones are never pruned.
        register(Target("calls", RealtimeCall, "ended_at", "ended calls"))
        # issue 10: transcript lines go after TRANSCRIPT_RETENTION_DAYS (the other events stay).
        from django.db.models import Q

        from .call_models import CallEvent
        from .conf import conf

        register(
            Target(
                "transcripts",
                CallEvent,
                "created_at",
                "transcript lines",
                keep=~Q(kind="transcript"),
                default_days=lambda: conf.TRANSCRIPT_RETENTION_DAYS,
            )
        )
