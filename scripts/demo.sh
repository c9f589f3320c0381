#!/usr/bin/env bash
# `make demo`: the example site on http://127.0.0.1:8000, offline with the fake
# Realtime API when OPENAI_API_KEY is not set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
state="$root/.demo"
mkdir -p "$state"
export DEMO_DB="$state/db.sqlite3"
cd "$root/example_project"
# The demo runs on 127.0.0.1 only, with Django's debug pages and static serving.
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"

fake_pid=""
worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill -TERM "$worker_pid" 2>/dev/null || true
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${OPENAI_API_KEY:-}" ]; then
  port=${FAKE_PORT:-8765}
  "$py" -m django_realtime.testing.server --port "$port" &
  fake_pid=$!
  export DJANGO_REALTIME_API_BASE="http://127.0.0.1:$port/v1"
  # The fake accepts any sk- key; this one never leaves the machine.
  export OPENAI_API_KEY="sk-offline-demo"
  # A throwaway webhook secret, so the SIP webhook endpoint can be tried offline
  # (sign deliveries with django_realtime.signing.sign).
  # `make demo-call` rings the site with it while the demo runs.
  if [ -z "${OPENAI_WEBHOOK_SECRET:-}" ]; then
    [ -s "$state/webhook-secret" ] || "$py" -c 'import base64, os; print("whsec_" + base64.b64encode(os.urandom(24)).decode())' > "$state/webhook-secret"
    OPENAI_WEBHOOK_SECRET=$(cat "$state/webhook-secret")
    export OPENAI_WEBHOOK_SECRET
  fi
  echo "Try a phone call offline: make demo-call (in another terminal)"
  echo "============================================================"
  echo " OFFLINE DEMO: no OPENAI_API_KEY set, so the site talks to the"
  echo " fake Realtime API at $DJANGO_REALTIME_API_BASE"
  echo " (set OPENAI_API_KEY to use the real API)."
  echo "============================================================"
else
  echo "Using the Realtime API at ${DJANGO_REALTIME_API_BASE:-https://api.openai.com/v1}"
fi

"$py" manage.py migrate --noinput -v 0
"$py" manage.py seed_demo
# The call controller: follows every call (duration, tokens, cost, end reason in the
# admin's Calls list while you talk).
"$py" manage.py realtime_worker --name demo-worker &
worker_pid=$!
echo "Open http://127.0.0.1:8000/ (admin: http://127.0.0.1:8000/admin/)"
"$py" manage.py runserver 127.0.0.1:8000 --noreload
