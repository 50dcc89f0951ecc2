#!/usr/bin/env bash
# The whole test suite: Rust crates (unit, integration, storage on SQLite/PostgreSQL/MariaDB)
# and the interop suite against the real OpenStack Python packages. Installs what it needs.
#
# PostgreSQL, MariaDB, Redis and memcached: the ones running on their standard loopback ports are used;
# where one is not running, a throwaway instance is started from Debian's packages (installed
# if missing) and removed at the end (scripts/services.sh; BATON_SERVICES=throwaway forces it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

echo "== database and cache servers"
# shellcheck source=services.sh
source scripts/services.sh
baton_services

echo "== Python venv with the real OpenStack packages"
BATON_VENV=$(bash scripts/python-env.sh)
export BATON_VENV BATON_PYTHON="$BATON_VENV/bin/python"

echo "== build"
cargo build --workspace --all-targets --locked

echo "== Rust tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --run-ignored all
else
  cargo test --workspace --locked --no-fail-fast -- --include-ignored
fi

echo "== fuzzing: every cargo-fuzz target briefly over its corpus (the corpora are replayed above too)"
FUZZ_SECONDS=${FUZZ_SECONDS:-5} FUZZ_KEEP_CORPUS=1 bash scripts/fuzz.sh

echo "== interop tests (keystoneauth1, python-openstackclient, real Keystone)"
export BATON_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/baton"
set +e
"$BATON_VENV/bin/python" -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=15 tests/interop
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "interop tests failed (pytest exit $rc)"
  exit "$rc"
fi
echo "== all tests passed"
