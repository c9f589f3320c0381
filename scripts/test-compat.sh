#!/usr/bin/env bash
# `make test-compat`: the unit tests on the edges of the support matrix
# (Python 3.10 + Django 4.2 LTS, Python 3.12 + Django 6.x), each in its own venv.
# The browser tests run once, in `make test`, on the default interpreter.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
# Runtime and test dependencies only (no linters or stubs, whose pins follow Django 5.2),
# unpinned: each leg takes the newest release its Python supports (aiortc 1.16 needs 3.11).
deps=(djangorestframework django-ratelimit httpx sniffio uvicorn aiortc pytest pytest-django
      jsonschema standardwebhooks "psycopg[binary]" redis build "setuptools>=77" wheel
      websockets openapi-spec-validator hypothesis schemathesis time-machine pytest-randomly)
status=0
for leg in "3.10:django>=4.2,<5.0" "3.12:django>=6.0,<6.2"; do
  version=${leg%%:*}
  django=${leg#*:}
  python=$(ls -d "$pyenv_root"/versions/"$version".*/bin/python"$version" 2>/dev/null | tail -1)
  if [ -z "$python" ]; then
    python=$(command -v "python$version" || true)
  fi
  if [ -z "$python" ]; then
    echo "test-compat: no Python $version here; skipping $django"
    [ -n "${CI:-}" ] && status=1
    continue
  fi
  venv=".venv-compat/py$version"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q "${deps[@]}" "$django" && "$venv/bin/pip" install -q --no-deps -e . || { status=1; continue; }
  echo "== Python $version, $("$venv/bin/python" -m django --version | sed 's/^/Django /')"
  "$venv/bin/python" -m pytest -q -m "not browser and not scaleout" -p no:cacheprovider || status=1
done
exit $status
