from __future__ import annotations

import warnings
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Deprecated (removed in the next release): use "
        "``realtime_prune --audit-days N``. Deletes audit log entries older than N days."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, required=True, metavar="N")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(
        self, *args: Any, older_than_days: int, batch_size: int, dry_run: bool, **options: Any
    ) -> None:
        message = "realtime_prune_audit is deprecated; use realtime_prune --audit-days N."
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        self.stderr.write(message)
        call_command(
            "realtime_prune",
            audit_days=older_than_days,
            batch_size=batch_size,
            dry_run=dry_run,
            stdout=self.stdout,
            stderr=self.stderr,
        )
