from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.exceptions import APIException

from django_realtime import gate
from django_realtime.audit import Attempt
from django_realtime.models import AuditAction, AuditOutcome, SessionPreset


class Command(BaseCommand):
    help = (
        "Mint one client secret with a preset, as a user, and print the outcome: an "
        "operator's smoke test of the key, the preset and the network path. Audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--preset", required=True, help="Preset slug.")
        parser.add_argument("--user", required=True, help="Username to mint as (audit row).")
        parser.add_argument(
            "--override",
            action="append",
            default=[],
            metavar="FIELD=JSON",
            help="A client override, e.g. --override voice='\"marin\"'; the preset must allow it.",
        )
        parser.add_argument(
            "--show-secret", action="store_true", help="Print the ek_ secret itself."
        )

    def handle(
        self,
        *args: Any,
        preset: str,
        user: str,
        override: list[str],
        show_secret: bool,
        **options: Any,
    ) -> None:
        User = get_user_model()
        try:
            account = User._default_manager.get_by_natural_key(user)
        except User.DoesNotExist as err:
            raise CommandError(f"No user {user!r}.") from err
        try:
            chosen = SessionPreset.objects.get(slug=preset)
        except SessionPreset.DoesNotExist as err:
            raise CommandError(f"No preset {preset!r}.") from err
        attempt = Attempt(AuditAction.MINT, user=account)
        try:
            minted = gate.try_mint(chosen, _parse_overrides(override), attempt)
        except APIException as exc:
            entry = attempt.entry
            assert entry is not None  # try_mint finished it
            detail = (
                f" (upstream status {entry.upstream_status}, request id "
                f"{entry.upstream_request_id or '-'})"
                if entry.upstream_status
                else ""
            )
            raise CommandError(
                f"Mint failed: {gate.error_code(exc)}: {exc.detail}{detail}. "
                f"Audit entry #{entry.pk}."
            ) from exc
        entry = attempt.finish(AuditOutcome.ISSUED)
        secret = minted.secret
        self.stdout.write(self.style.SUCCESS(f"Minted a secret with preset {chosen.slug!r}."))
        expires = entry.secret_expires_at.isoformat() if entry.secret_expires_at else "?"
        self.stdout.write(f"  expires at:  {expires}")
        self.stdout.write(f"  request id:  {secret.request_id or '-'}")
        self.stdout.write(f"  fingerprint: {entry.secret_fingerprint}")
        self.stdout.write(f"  audit entry: #{entry.pk}")
        if show_secret:
            self.stdout.write(f"  secret:      {secret.value}")
        else:
            self.stdout.write("  (secret hidden; pass --show-secret to print it)")


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--override takes FIELD=JSON, got {item!r}.")
        try:
            overrides[name] = json.loads(raw)
        except ValueError:
            overrides[name] = raw  # a bare word such as marin
    return overrides
