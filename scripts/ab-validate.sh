#!/usr/bin/env bash
# Cached validation (GET /v3/auth/tokens, caller and subject cached) of two `baton` binaries,
# alternating on one database so that drift on a shared machine hits both: for judging one
# change (an allocator, a build option) by wall clock where callgrind counts only instructions.
#
#   bash scripts/ab-validate.sh OLD_BATON NEW_BATON       # about 1 minute a round
#
# Each round serves the same SQLite database with OLD then NEW (`baton serve`, defaults), issues
# a token, warms up for 3 s and runs wrk -t2 -c32 for AB_SECONDS (10); prints the rate, the
# server's CPU per validation and its RSS at the end. Knobs: AB_ROUNDS (3), AB_SECONDS,
# BENCH_WORKDIR. Needs: curl, wrk, python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 OLD_BATON NEW_BATON" >&2; exit 2; }
ROUNDS=${AB_ROUNDS:-3}
SECONDS_EACH=${AB_SECONDS:-10}
PASSWORD=ab-admin-pass
QUIET_BUDGET=0
export BENCH_DIR=$root/bench
# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
work=${BENCH_WORKDIR:-$(mktemp -d /tmp/ab-validate.XXXXXX)}
port=$(free_port)
url=http://127.0.0.1:$port
BATON=$1
init_sqlite_baton "$work/baton" "$port" < /dev/null
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT
body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}' "$PASSWORD")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq 1 "$ROUNDS"); do
  for bin in "$1" "$2"; do
    setsid "$bin" serve --config "$work/baton/baton.conf" --bind "127.0.0.1:$port" > "$work/serve.log" 2>&1 < /dev/null &
    pid=$!
    wait_for_server "$pid" "$url/v3" "$work/serve.log"
    token=$(curl -s -m 60 -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" "$url/v3/auth/tokens" \
      | awk 'tolower($1) == "x-subject-token:" {print $2}' | tr -d '\r')
    export BENCH_AUTH_TOKEN=$token BENCH_SUBJECT_TOKEN=$token
    wrk -t2 -c32 -d3s -s "$BENCH_DIR/validate.lua" "$url" > /dev/null
    t0=$(ticks "$pid")
    rps=$(wrk -t2 -c32 -d"${SECONDS_EACH}s" -s "$BENCH_DIR/validate.lua" "$url" | awk '/^Requests\/sec/ {print $2}')
    t1=$(ticks "$pid")
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    awk -v r="$round" -v b="$bin" -v rps="$rps" -v t="$((t1 - t0))" -v s="$SECONDS_EACH" -v rss="$rss" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "round %s  %-40s %9.0f validations/s  server %5.1f us each  RSS %.1f MiB\n",
        r, b, rps, t / hz * 1e6 / (rps * s), rss / 1024}'
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
