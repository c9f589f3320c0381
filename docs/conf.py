"""Sphinx configuration: `make docs` builds the site with warnings as errors."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_version = re.search(
    r'^__version__ = "([^"]+)"', (ROOT / "django_realtime" / "__init__.py").read_text(), re.M
)

project = "django-openai-realtime"
author = "django-openai-realtime developers"
copyright = "django-openai-realtime developers"
release = _version.group(1) if _version else "unknown"
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
master_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Anchors for `[text](page.md#heading)` links down to level 3; a broken one is a warning.
myst_heading_anchors = 3

html_theme = "furo"
html_title = "django-openai-realtime"
html_static_path: list[str] = []
pygments_style = "sphinx"
