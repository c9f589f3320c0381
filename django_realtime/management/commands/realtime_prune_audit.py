from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_realtime.models import AuditLogEntry


class Command(BaseCommand):
    help = "Delete audit log entries older than N days, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, required=True, metavar="N")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(
        self, *args: Any, older_than_days: int, batch_size: int, dry_run: bool, **options: Any
    ) -> None:
        if older_than_days < 0:
            raise CommandError("--older-than-days must be 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        cutoff = timezone.now() - timedelta(days=older_than_days)
        old = AuditLogEntry.objects.filter(created_at__lt=cutoff)
        if dry_run:
            self.stdout.write(
                f"Would delete {old.count()} audit log entries older than {older_than_days} days."
            )
            return
        total = 0
        # Batches keep each transaction and lock short on a large table.
        while True:
            ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            deleted, _ = AuditLogEntry.objects.filter(pk__in=ids).delete()
            total += deleted
        self.stdout.write(f"Deleted {total} audit log entries older than {older_than_days} days.")
