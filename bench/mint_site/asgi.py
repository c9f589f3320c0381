"""ASGI entry point for the benchmark site (the example project ships WSGI only)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mint_site.settings")
application = get_asgi_application()
