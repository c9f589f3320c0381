"""Create the demo superuser, two presets, a usage limit and a SIP route (idempotent)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from django_realtime.models import SessionPreset, UsageLimit
from django_realtime.sip.models import SipRoute

PRESETS: list[dict[str, Any]] = [
    {
        "slug": "assistant",
        "name": "Voice assistant",
        "description": "Talk with a brief, friendly assistant.",
        "session_type": "realtime",
        "model": "gpt-realtime",
        "instructions": "You are a brief, friendly assistant for this website.",
        "voice": "marin",
        "transcription_model": "gpt-4o-mini-transcribe",
        "noise_reduction": "near_field",
        "turn_detection": "semantic_vad",
        "ttl_seconds": 60,
        "allowed_overrides": ["voice", "instructions"],
        # The call controller's leash: 10 minutes at most, spoken first words.
        "max_duration_seconds": 600,
        "greeting": "Greet the visitor in one short sentence.",
        # issue 10: a server tool (demo/realtime_tools.py) and stored transcripts
        "server_tools": ["time_in_city"],
        "store_transcripts": True,
    },
    {
        "slug": "dictation",
        "name": "Dictation",
        "description": "Speak and see a live transcript; the model does not answer.",
        "session_type": "transcription",
        "transcription_model": "gpt-4o-transcribe",
        "transcription_language": "en",
        "noise_reduction": "near_field",
        "turn_detection": "server_vad",
        "ttl_seconds": 60,
        "allowed_overrides": ["transcription_language"],
    },
]


class Command(BaseCommand):
    help = "Seed the demo: a superuser (password printed) and two presets."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="demo")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        for data in PRESETS:
            preset = SessionPreset.objects.filter(slug=data["slug"]).first() or SessionPreset()
            for key, value in data.items():
                setattr(preset, key, value)
            preset.full_clean()
            preset.save()
        # issue 10: everyone gets 10 minutes a day, one call at a time
        if not UsageLimit.objects.filter(group=None, preset=None).exists():
            UsageLimit.objects.create(max_concurrent_calls=1, minutes_per_day=10)
        if not SipRoute.objects.filter(name="Main line").exists():
            SipRoute.objects.create(
                name="Main line",
                priority=100,
                match_type="any",
                action="accept",
                preset=SessionPreset.objects.get(slug="assistant"),
            )
        User = get_user_model()
        user = User._default_manager.filter(username=username).first()
        password = secrets.token_urlsafe(9)
        if user is None:
            User._default_manager.create_superuser(username, f"{username}@example.com", password)
        else:
            user.set_password(password)
            user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo user: {username} / password: {password}  (a new password each run)"
            )
        )
