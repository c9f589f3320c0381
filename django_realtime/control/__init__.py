"""The call controller: every live call on a server-side leash.

- :mod:`.sideband`: the only WebSocket module; attaches to a call by ``call_id``,
  re-dials on any close, ends with :class:`~django_realtime.exceptions.CallNotFound`.
- :mod:`.pricing`: usage counters from server events, and their cost in ``Decimal``.
- :mod:`.controller`: one call's leash (metering, limits, config lock), independent
  of the database.

Nothing is imported here, so ``import django_realtime.control.pricing`` works without
the ``websockets`` library being imported.
"""

from __future__ import annotations
