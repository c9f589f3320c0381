#!/usr/bin/env bash
# `make test`: every test. Unit tests first, then the real-Chromium browser tests in
# their own pytest run (sync Playwright leaves an event loop running), inside a
# loopback-only network namespace when we can make one, so nothing can leave the machine.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pytest="$root/.venv/bin/pytest"

# Branch coverage of django_realtime from the unit run, with the floor CI enforces.
"$pytest" -m "not browser" --cov=django_realtime --cov-report=term --cov-fail-under=95 "$@"
unit=$?

# The browser run's threads write one database at once: a file SQLite that waits on
# locks instead of shared-cache memory that refuses them (see tests/settings.py).
export REALTIME_TEST_SQLITE_FILE=1
if unshare -n true 2>/dev/null; then
  echo "browser tests: inside 'unshare -n' (loopback only)"
  unshare -n sh -c 'ip link set lo up 2>/dev/null || true; exec "$0" -m browser "$@"' "$pytest" "$@"
else
  echo "browser tests: unshare -n unavailable here, running in the host network namespace"
  "$pytest" -m browser "$@"
fi
browser=$?
# pytest exits 5 when it collected nothing: a missing browser suite is a failure.
if [ "$unit" -ne 0 ] || [ "$browser" -ne 0 ]; then
  echo "FAILED: unit tests exit $unit, browser tests exit $browser"
  exit 1
fi
