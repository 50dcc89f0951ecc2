#!/usr/bin/env bash
# Creates (or reuses) the Python venv with the real OpenStack packages that the interop tests
# drive. Idempotent: a venv whose recorded requirements match is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req=$root/tests/interop/requirements.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
# Kept outside the checkout (keyed by the requirements) so fresh clones on the same machine reuse
# it; BATON_VENV overrides. Prints the venv path on stdout.
venv=${BATON_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/baton/venv-${want:0:12}}
stamp=$venv/.requirements.sha256
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$venv"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install -q -U pip >&2
"$venv/bin/pip" install -q -r "$req" >&2
echo "$want" > "$stamp"
# The repository's .venv points at it, for people's convenience (an older real .venv is left).
if [ -L "$root/.venv" ] || [ ! -e "$root/.venv" ]; then ln -sfn "$venv" "$root/.venv"; fi
echo "$venv"
