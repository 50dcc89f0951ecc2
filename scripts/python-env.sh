#!/usr/bin/env bash
# Creates (or reuses) the Python venv with the real OpenStack packages that the interop tests
# drive. Idempotent: a venv whose recorded requirements match is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${BATON_VENV:-$root/.venv}
req=$root/tests/interop/requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q -U pip
"$venv/bin/pip" install -q -r "$req"
echo "$want" > "$stamp"
