#!/usr/bin/env bash
# `make bench`: print benchmark figures (not tests; nothing here asserts a speed).
#   scripts/run-bench.sh            every bench/bench_*.py (bench_mint.py: ~7 minutes)
#   scripts/run-bench.sh --quick    the same, bench_mint.py in its ~2-minute form
# Arguments go to bench_mint.py. PYTHON overrides the interpreter (default .venv's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-$root/.venv/bin/python}
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq wrk >/dev/null
  else
    echo "bench_mint.py needs wrk: sudo apt-get install wrk" >&2
    exit 1
  fi
fi
for bench in bench/bench_*.py; do
  echo "== $bench"
  if [ "$bench" = bench/bench_mint.py ]; then
    "$python" "$bench" "$@"
  else
    "$python" "$bench"
  fi
done
