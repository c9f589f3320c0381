#!/usr/bin/env bash
# The unit tests against the built wheel, installed in a fresh virtualenv: a package
# file missing from the wheel (a template, a migration, a .mo) fails here even though
# the checkout has it. The tests run from a copy of tests/ in a temporary directory,
# so nothing on sys.path points into the checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python="${PYTHON:-$root/.venv/bin/python}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Build from a copy of the tracked files: a checkout's stale build/ directory would
# otherwise put deleted modules into the wheel.
mkdir "$work/src"
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work/src")
"$python" -m build --wheel --outdir "$work/dist" "$work/src" >/dev/null
wheel=$(ls "$work"/dist/django_openai_realtime-*.whl)
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements-test.txt"
"$work/venv/bin/pip" install -q --disable-pip-version-check --no-deps "$wheel"

# Everything tracked except the package itself: tests, docs, example project, settings.
mkdir "$work/run"
git -C "$root" ls-files -z | grep -zv '^django_realtime/' \
  | (cd "$root" && xargs -0 cp --parents -t "$work/run")
test ! -e "$work/run/django_realtime"
cd "$work/run"
# The package must come from site-packages, never from the checkout.
"$work/venv/bin/python" - "$root" <<'PY'
import sys
from pathlib import Path

import django_realtime

where = Path(django_realtime.__file__).resolve()
checkout = Path(sys.argv[1]).resolve()
print(f"django_realtime from {where}")
assert "site-packages" in where.parts, where
assert checkout not in where.parents, f"{where} is in the checkout {checkout}"
PY
# test_packaging builds the wheel from the checkout, and the docs' conf.py reads the
# version from the checkout's source: both have run in the unit suite.
"$work/venv/bin/pytest" -m "not browser" -q -p no:cacheprovider \
  --ignore=tests/test_packaging.py \
  --deselect=tests/test_docs.py::test_the_docs_release_is_the_package_version "$@"
