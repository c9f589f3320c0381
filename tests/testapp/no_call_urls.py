"""A root URLconf whose ``django_realtime`` namespace lacks the call controller's
``call-attach`` / ``call-end`` names: a site that mounts only the minting endpoints.

Use with ``override_settings(ROOT_URLCONF="tests.testapp.no_call_urls")``.
"""

from __future__ import annotations

from django.urls import include, path

from django_realtime import urls as realtime_urls

CONTROLLER = {"call-attach", "call-end"}
package = [p for p in realtime_urls.urlpatterns if getattr(p, "name", None) not in CONTROLLER]

urlpatterns = [
    path("realtime/", include((package, "django_realtime"))),
    path("", include("tests.testapp.urls")),
]
