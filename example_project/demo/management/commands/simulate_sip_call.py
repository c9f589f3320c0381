"""Ring the demo site like OpenAI would, offline: register a pending SIP call at the
fake Realtime API, then deliver a signed ``realtime.call.incoming`` webhook to the site
and print what the routes decided."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.management.base import BaseCommand, CommandError

from django_realtime import signing
from django_realtime.conf import conf
from django_realtime.sip.models import SipCall


class Command(BaseCommand):
    help = "Simulate an incoming SIP call against the offline demo (needs `make demo` running)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--from", dest="caller", default="+14155550100")
        parser.add_argument("--to", dest="callee", default="+14155550123")
        parser.add_argument("--site", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, caller: str, callee: str, site: str, **options: Any) -> None:
        api = urlsplit(conf.API_BASE)
        if api.hostname != "127.0.0.1":
            raise CommandError("Only for the offline demo: API_BASE is not the local fake.")
        if not conf.WEBHOOK_SECRETS:
            raise CommandError("Set OPENAI_WEBHOOK_SECRET (make demo sets one offline).")
        fake = f"{api.scheme}://{api.netloc}"
        call = httpx.post(f"{fake}/_fake/sip_calls", json={}, timeout=10).json()
        event = {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": "realtime.call.incoming",
            "created_at": int(time.time()),
            "data": {
                "call_id": call["id"],
                "sip_headers": [
                    {"name": "From", "value": f'"Demo caller" <sip:{caller}@pstn.example>;tag=1'},
                    {"name": "To", "value": f"<sip:{callee}@sip.api.openai.com>"},
                ],
            },
        }
        body = json.dumps(event).encode()
        headers = signing.sign(
            body,
            secret=conf.WEBHOOK_SECRETS[0],
            msg_id=f"wh_{uuid.uuid4().hex}",
            timestamp=int(time.time()),
        )
        reply = httpx.post(
            f"{site.rstrip('/')}/realtime/webhooks/openai/",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=30,
        )
        self.stdout.write(f"webhook answered {reply.status_code}")
        stored = SipCall.objects.filter(call_id=call["id"]).select_related("route").first()
        if stored is None:
            raise CommandError("The site recorded no call (is `make demo` running?).")
        route = stored.route.name if stored.route else "(none: default action)"
        self.stdout.write(f"call {stored.call_id}: {stored.status} via route {route}")
        stats = httpx.get(f"{fake}/_fake/stats", timeout=10).json()["calls"][call["id"]]
        actions = [f"{a['action']} {json.dumps(a['body'])}" for a in stats.get("actions", [])]
        self.stdout.write("the fake API received: " + ("; ".join(actions) or "nothing"))
