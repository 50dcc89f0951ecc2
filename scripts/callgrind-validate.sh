#!/usr/bin/env bash
# Instructions per cached token validation (GET /v3/auth/tokens, the caller's and the subject's
# token both in the validation cache), counted by valgrind's callgrind: stable where timings on
# these shared 2-core machines are not (issue 15).
#
#   bash scripts/callgrind-validate.sh        # about 2 minutes
#
# Starts `baton serve` (release build, SQLite, bootstrap admin) under callgrind twice, sends
# CG_WARM requests then CG_SHORT (resp. CG_LONG) more with `ab -k -c4`, and prints the
# difference of the two totals divided by CG_LONG - CG_SHORT (start-up and shutdown cancel
# out), then the costliest functions of the longer run (self cost). Knobs: CG_WARM (500),
# CG_SHORT (1000), CG_LONG (6000), BENCH_SKIP_BUILD=1, BENCH_WORKDIR.
# Needs: cargo, curl, ab (apache2-utils), valgrind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CG_WARM=${CG_WARM:-500}
CG_SHORT=${CG_SHORT:-1000}
CG_LONG=${CG_LONG:-6000}
PASSWORD=bench-admin-pass
TARGET=${CARGO_TARGET_DIR:-$root/target}
work=${BENCH_WORKDIR:-$(mktemp -d /tmp/callgrind-validate.XXXXXX)}
log() { echo "[callgrind $(date -u +%H:%M:%S)] $*" >&2; }
for tool in curl ab valgrind callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "callgrind-validate: $tool is missing (Debian: apt-get install -y curl apache2-utils valgrind)" >&2; exit 1; }
done
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton (release)"
  cargo build --release -q -p baton-cli
fi
BATON=$TARGET/release/baton
QUIET_BUDGET=0
# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
port=$(free_port)
url=http://127.0.0.1:$port
d=$work/baton
init_sqlite_baton "$d" "$port" < /dev/null

pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT
body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}' "$PASSWORD")
issue() { curl -s -m 120 -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" "$url/v3/auth/tokens" | awk 'tolower($1) == "x-subject-token:" {print $2}' | tr -d '\r'; }

run() { # n: total Ir after CG_WARM + n validations
  local n=$1 out=$work/callgrind-$1.out auth subj
  setsid valgrind --tool=callgrind --callgrind-out-file="$out" -q \
    "$BATON" serve --config "$d/baton.conf" --bind "127.0.0.1:$port" > "$work/serve-$n.log" 2>&1 < /dev/null &
  pid=$!
  wait_for_server "$pid" "$url/v3" "$work/serve-$n.log" 0.5
  auth=$(issue) subj=$(issue)
  for count in "$CG_WARM" "$n"; do
    ab -q -k -c 4 -n "$count" -H "X-Auth-Token: $auth" -H "X-Subject-Token: $subj" \
      "$url/v3/auth/tokens" > "$work/ab-$n-$count.txt" 2>&1
    if ! grep -q '^Failed requests: *0$' "$work/ab-$n-$count.txt" || grep -q '^Non-2xx' "$work/ab-$n-$count.txt"; then
      cat "$work/ab-$n-$count.txt" >&2; echo "callgrind-validate: not every validation answered 200" >&2; exit 1
    fi
  done
  kill "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  pid=
  sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$out" | head -1
}
short=$(run "$CG_SHORT")
long=$(run "$CG_LONG")
per=$(( (long - short) / (CG_LONG - CG_SHORT) ))
callgrind_annotate --inclusive=no "$work/callgrind-$CG_LONG.out" > "$work/annotate.txt" 2>&1 || true
echo "instructions per cached validation: $per ($short Ir after $CG_WARM + $CG_SHORT requests, $long after $CG_WARM + $CG_LONG; $(git describe --always --dirty))"
echo "costliest functions (self, whole run of $CG_WARM + $CG_LONG): $work/annotate.txt"
sed -n '/^Ir/,$p' "$work/annotate.txt" | head -40
