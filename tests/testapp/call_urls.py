"""A root URLconf whose ``django_realtime`` namespace also has the call controller's
``call-attach`` / ``call-end`` names, served by recording stand-ins (tests/testapp/views.py).

Use with ``override_settings(ROOT_URLCONF="tests.testapp.call_urls")``.
"""

from __future__ import annotations

from django.urls import include, path

from django_realtime import urls as realtime_urls

from . import views

STANDING_IN = {"call-attach", "call-end"}

controller = [
    path("calls/attach/", views.call_attach, name="call-attach"),
    path("calls/<str:call_id>/end/", views.call_end, name="call-end"),
]
# Once the package has real endpoints of these names, the stand-ins replace them.
package = [p for p in realtime_urls.urlpatterns if getattr(p, "name", None) not in STANDING_IN]

urlpatterns = [
    path("realtime/", include(([*controller, *package], "django_realtime"))),
    path("", include("tests.testapp.urls")),
]
