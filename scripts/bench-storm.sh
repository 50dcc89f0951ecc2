#!/usr/bin/env bash
# Token validation while a login storm saturates password hashing (issue 15), Baton beside the
# real Keystone in one run.
#
#   bash scripts/bench-storm.sh            # about 5 minutes on 2 cores
#
# Each server in turn (SQLite, bcrypt cost 12 as Keystone's default):
#   * Baton with the defaults: `[baton] password_hash_workers = 0` (one fewer hashing thread
#     than the cores at the server's priority, and a spare thread per core left over, at
#     `password_hash_nice`, that hashes only while no token is being validated);
#   * Baton with `password_hash_workers` = the cores (hashing may take every core at the
#     server's priority, as before the bounded slots);
#   * the real Keystone 30 under gunicorn (2 workers, its memory cache on);
# wrk runs two loads at once for BENCH_DURATION seconds: password logins (bench/issue.lua,
# c=BENCH_ISSUE_CONC, 1 thread) and validation of one cached token (bench/validate.lua,
# c=BENCH_VALIDATE_CONC, 1 thread). The validation rate and p99 are what the storm costs the
# services that only validate. Writes bench/results/storm-<UTC date-time>.md.
#
# Needs: cargo, curl, jq, python3, wrk. Knobs: BENCH_DURATION (20), BENCH_ISSUE_CONC (8),
# BENCH_VALIDATE_CONC (16), BENCH_QUIET_LOAD (0.7), BENCH_QUIET_BUDGET (600), BENCH_WORKDIR,
# BENCH_SKIP_BUILD=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

DURATION=${BENCH_DURATION:-20}
ISSUE_CONC=${BENCH_ISSUE_CONC:-8}
VALIDATE_CONC=${BENCH_VALIDATE_CONC:-16}
THREADS=1
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-600}
PASSWORD=bench-admin-pass
export BENCH_DIR=$root/bench
TARGET=${CARGO_TARGET_DIR:-$root/target}
# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
bench_workdir bench-storm
report=$root/bench/results/storm-$stamp.md
BENCH_NAME=bench-storm
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

baton_pid=
issue_pid=
ks_dir=
cleanup() {
  [ -n "$issue_pid" ] && kill "$issue_pid" 2>/dev/null || true
  [ -n "$baton_pid" ] && kill "$baton_pid" 2>/dev/null || true
  if [ -n "$ks_dir" ] && [ -f "$ks_dir/keystone-oracle.pid" ]; then
    "$VENV/bin/python" tests/interop/keystone_oracle.py stop --workdir "$ks_dir" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton (release)"
  cargo build --release -q -p baton-cli
fi
BATON=$TARGET/release/baton
[ -x "$BATON" ] || { echo "bench-storm: $BATON missing" >&2; exit 1; }
# The venv with keystone 30 and gunicorn (created when missing; BATON_VENV overrides).
VENV=${BATON_VENV:-$(bash scripts/python-env.sh)}

body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}' "$PASSWORD")
issue_token() { # url file-prefix -> the token
  curl -s -m 60 -D "$2.headers" -o "$2.json" -H 'Content-Type: application/json' -d "$body" "$1/v3/auth/tokens" >/dev/null
  awk 'tolower($1) == "x-subject-token:" {print $2}' "$2.headers" | tr -d '\r'
}

# Runs the storm against url; pids are the server's. Sets S_<field> for the validation load and
# I_rps / I_errors for the logins.
storm() { # tag pids url
  local tag=$1 pids=$2 url=$3 auth subj
  auth=$(issue_token "$url" "$work/$tag-auth")
  subj=$(issue_token "$url" "$work/$tag-subject")
  [ -n "$auth" ] && [ -n "$subj" ] || { echo "bench-storm: no token from $url" >&2; exit 1; }
  curl -s -m 30 -o /dev/null -H "X-Auth-Token: $auth" -H "X-Subject-Token: $subj" "$url/v3/auth/tokens"
  wait_quiet "$tag"
  BENCH_USER=admin BENCH_PASSWORD=$PASSWORD BENCH_PROJECT=admin \
    wrk -t1 -c"$ISSUE_CONC" -d"${DURATION}s" --timeout 60s --latency -s "$BENCH_DIR/issue.lua" "$url" \
    > "$work/wrk-$tag-issue.txt" 2>&1 &
  issue_pid=$!
  sleep 2 # the hashing is saturated before validation is measured
  BENCH_AUTH_TOKEN=$auth BENCH_SUBJECT_TOKEN=$subj run_wrk "$tag-validate" "$pids" validate.lua "$VALIDATE_CONC" 30s "$url"
  S_rps=$R_rps S_p50=$R_p50_us S_p99=$R_p99_us S_errors=$R_errors
  wait "$issue_pid" || true
  issue_pid=
  local line
  line=$(grep '^BENCH_RESULT' "$work/wrk-$tag-issue.txt") || { cat "$work/wrk-$tag-issue.txt" >&2; exit 1; }
  for kv in ${line#BENCH_RESULT }; do eval "R_${kv%%=*}=${kv#*=}"; done
  I_rps=$R_rps
  I_errors=$((R_err_connect + R_err_read + R_err_write + R_err_status + R_err_timeout))
  log "$tag: validation $(printf '%.0f' "$S_rps")/s p99 $(ms "$S_p99") during $(printf '%.1f' "$I_rps") logins/s ($I_errors failed)"
}

declare -A ROW
cores=$(nproc)
fewer=$((cores > 1 ? cores - 1 : 1))
spare=$((cores - fewer))
# variant -> its [baton] lines
declare -A SETTINGS=(
  [default]=""
  [all]="password_hash_workers = $cores"
)
for variant in default all; do
  port=$(free_port)
  start_sqlite_baton "$work/baton-$variant" "$port" <<EOF
[baton]
${SETTINGS[$variant]}
EOF
  storm "baton-$variant" "$baton_pid" "http://127.0.0.1:$port"
  ROW[$variant]="$(printf '%.0f' "$S_rps") | $(ms "$S_p50") | $(ms "$S_p99") | $S_errors | $(printf '%.1f' "$I_rps") | $I_errors"
  kill "$baton_pid"; wait "$baton_pid" 2>/dev/null || true; baton_pid=
done

ks_dir=$work/ks
kport=$(free_port)
log "setting up keystone (db_sync, fernet_setup, bootstrap: about 15 s)"
"$VENV/bin/python" tests/interop/keystone_oracle.py start --workdir "$ks_dir" --port "$kport" \
  --init --bootstrap-password "$PASSWORD" --cache --workers 2 --timeout 90 > "$work/ks-start.json" 2> "$work/ks-start.err" \
  || { cat "$work/ks-start.err" >&2; exit 1; }
ks_master=$(jq -r .pid "$ks_dir/keystone-oracle.pid")
storm keystone "$ks_master" "http://127.0.0.1:$kport"
ks_row="$(printf '%.0f' "$S_rps") | $(ms "$S_p50") | $(ms "$S_p99") | $S_errors | $(printf '%.1f' "$I_rps") | $I_errors"

{
  echo "# Validation during a login storm ($stamp)"
  echo
  echo "\`bash scripts/bench-storm.sh\`: for ${DURATION} s, wrk -t1 -c$ISSUE_CONC password logins (bcrypt cost 12) and, at the same time, wrk -t1 -c$VALIDATE_CONC validations of one cached token; SQLite; $cores cores shared by servers and load; $(git -C "$root" describe --always --dirty). Work directory: $work."
  echo
  echo "| server | validations/s | p50 | p99 | validation errors | logins/s | login errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| Baton, defaults ($fewer hashing worker(s), $spare spare thread(s) idle while tokens are validated) | ${ROW[default]} |"
  echo "| Baton, \`password_hash_workers = $cores\` (hashing may take every core) | ${ROW[all]} |"
  echo "| Keystone 30, gunicorn 2 workers, memory cache | $ks_row |"
  echo
  echo "Quiet-machine checks: $(for k in "${!QUIET[@]}"; do printf '%s: %s; ' "$k" "${QUIET[$k]}"; done)"
} > "$report"
cat "$report"
log "report: $report"
