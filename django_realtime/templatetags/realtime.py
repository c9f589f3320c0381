"""``{% load realtime %}``: deprecated alias of ``{% load django_realtime %}``.

Kept for one release so templates written for 0.1 keep rendering; each template that
loads it emits a :class:`DeprecationWarning` when it is compiled. Switch to
``{% load django_realtime %}``; the tags are the same.
"""

from __future__ import annotations

import warnings
from typing import Any

from django import template

from . import django_realtime

DEPRECATION_MESSAGE = (
    "{% load realtime %} is deprecated and will be removed in the next release; "
    "use {% load django_realtime %} (same tags)."
)


class DeprecatedLibrary(template.Library):
    """A library that hands out another library's tags and warns when a template loads it.

    Django imports every templatetags module when the template engine starts, so a warning
    at import time would fire for every site; ``{% load %}`` reads ``tags`` (and
    ``{% load x from y %}`` reads both mappings), so the warning goes there.
    """

    def __init__(self, target: template.Library, message: str) -> None:
        self._target = target
        self._message = message

    @property
    def tags(self) -> dict[str, Any]:
        warnings.warn(self._message, DeprecationWarning, stacklevel=2)
        return self._target.tags

    @tags.setter
    def tags(self, value: dict[str, Any]) -> None:  # pragma: no cover - never registered into
        raise AttributeError("the deprecated alias has no tags of its own")

    @property
    def filters(self) -> dict[str, Any]:
        return self._target.filters

    @filters.setter
    def filters(self, value: dict[str, Any]) -> None:  # pragma: no cover
        raise AttributeError("the deprecated alias has no filters of its own")


register = DeprecatedLibrary(django_realtime.register, DEPRECATION_MESSAGE)
