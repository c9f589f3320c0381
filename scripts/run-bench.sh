#!/usr/bin/env bash
# `make bench`: print benchmark figures (not tests; nothing here asserts a speed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for bench in bench/bench_*.py; do
  echo "== $bench"
  "$root/.venv/bin/python" "$bench"
done
