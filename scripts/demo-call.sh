#!/usr/bin/env bash
# `make demo-call`: while `make demo` runs offline, deliver a signed
# realtime.call.incoming webhook to it and show what the SIP routes decided.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.demo"
[ -s "$state/webhook-secret" ] || { echo "Start the offline demo first: make demo"; exit 1; }
export DEMO_DB="$state/db.sqlite3"
export OPENAI_WEBHOOK_SECRET=$(cat "$state/webhook-secret")
export DJANGO_REALTIME_API_BASE="http://127.0.0.1:${FAKE_PORT:-8765}/v1"
export OPENAI_API_KEY="sk-offline-demo"
cd "$root/example_project"
exec "$root/.venv/bin/python" manage.py simulate_sip_call "$@"
