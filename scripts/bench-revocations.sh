#!/usr/bin/env bash
# Cold validation and memory as revocation events pile up (issue 18), Baton beside the real
# Keystone on the same database file and key repository.
#
#   bash scripts/bench-revocations.sh            # about 10 minutes on 2 cores
#
# For each count N of BENCH_EVENTS (default "0 10000 100000 1000000"):
#   1. a fresh SQLite database (`baton manage db_sync / fernet_setup / bootstrap`, bcrypt cost 4:
#      logins are not measured) gets N revocation events written by this script with Keystone's
#      schema: 60% logouts (audit id), 15% chains, 15% users, 5% projects, 5% user+project pairs,
#      revoked at random instants of the last day, none naming the measured tokens;
#   2. `baton serve` starts (the time to answer and VmRSS after the start-up load are recorded);
#   3. BENCH_TOKENS distinct project-scoped tokens, minted offline with the shared key
#      (crates/baton-token/examples/mint_tokens.rs), are validated once each for BENCH_DURATION
#      seconds by wrk (bench/validate_many.lua): every validation is cold (decrypt, database
#      reads, revocation check); the rate, p99 and VmRSS after are recorded;
#   4. for N in BENCH_KS_EVENTS (default "0 10000"), the real Keystone 30 (gunicorn, 2 workers,
#      its memory cache on) is started on the same database file and key repository, Baton
#      stopped, and the same tokens (new to Keystone) are validated the same way.
# Writes a Markdown table to bench/results/revocations-<UTC date-time>.md. Bytes per event are
# (RSS at N - RSS at 0) / N after the start-up load.
#
# Needs: cargo, curl, jq, python3, wrk. Knobs: BENCH_EVENTS, BENCH_KS_EVENTS, BENCH_TOKENS
# (200000), BENCH_DURATION (20), BENCH_CONC (32), BENCH_THREADS (2), BENCH_QUIET_LOAD (0.7),
# BENCH_QUIET_BUDGET (600), BENCH_WORKDIR, BENCH_SKIP_BUILD=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

EVENTS=${BENCH_EVENTS:-0 10000 100000 1000000}
KS_EVENTS=${BENCH_KS_EVENTS:-0 10000}
TOKENS=${BENCH_TOKENS:-200000}
DURATION=${BENCH_DURATION:-20}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-2}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-600}
PASSWORD=bench-admin-pass
export BENCH_DIR=$root/bench
TARGET=${CARGO_TARGET_DIR:-$root/target}

# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
bench_workdir bench-revocations
report=$root/bench/results/revocations-$stamp.md
BENCH_NAME=bench-revocations
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

baton_pid=
ks_dir=
cleanup() {
  [ -n "$baton_pid" ] && kill "$baton_pid" 2>/dev/null || true
  if [ -n "$ks_dir" ] && [ -f "$ks_dir/keystone-oracle.pid" ]; then
    "$VENV/bin/python" tests/interop/keystone_oracle.py stop --workdir "$ks_dir" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton (release) and mint_tokens"
  cargo build --release -q -p baton-cli
  cargo build --release -q -p baton-token --example mint_tokens
fi
BATON=$TARGET/release/baton
MINT=$TARGET/release/examples/mint_tokens
[ -x "$BATON" ] && [ -x "$MINT" ] || { echo "bench-revocations: release binaries missing" >&2; exit 1; }
# The venv with keystone 30 and gunicorn (created when missing; BATON_VENV overrides).
VENV=${BATON_VENV:-$(bash scripts/python-env.sh)}

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }

# Writes N events into the revocation_event table of a SQLite file (Keystone's columns).
fill_events() { # db n
  python3 - "$1" "$2" <<'PY'
import os, random, sqlite3, sys, datetime, base64
db, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(18)
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
def audit():
    return base64.urlsafe_b64encode(rnd.randbytes(16)).decode().rstrip("=")
def hexid():
    return rnd.randbytes(16).hex()
con = sqlite3.connect(db)
rows = []
def flush():
    con.executemany(
        "INSERT INTO revocation_event (domain_id, project_id, user_id, role_id, trust_id, consumer_id,"
        " access_token_id, issued_before, expires_at, revoked_at, audit_id, audit_chain_id)"
        " VALUES (NULL, ?, ?, NULL, NULL, NULL, NULL, ?, NULL, ?, ?, ?)", rows)
    rows.clear()
for i in range(n):
    at = (now - datetime.timedelta(seconds=rnd.randrange(86400))).strftime("%Y-%m-%d %H:%M:%S.%f")
    k = rnd.random()
    project = user = a = chain = None
    if k < 0.60: a = audit()
    elif k < 0.75: chain = audit()
    elif k < 0.90: user = hexid()
    elif k < 0.95: project = hexid()
    else: user, project = hexid(), hexid()
    rows.append((project, user, at, at, a, chain))
    if len(rows) >= 50000: flush()
flush()
con.commit()
PY
}

declare -A B_START B_RSS0 B_RATE B_P99 B_RSS1 B_ERR K_RATE K_P99 K_ERR
for n in $EVENTS; do
  d=$work/n$n
  port=$(free_port)
  fill() { log "N=$n: writing events"; fill_events "$1/keystone.db" "$n"; wait_quiet "baton-$n"; t0=$(date +%s.%N); }
  BEFORE_SERVE=fill start_sqlite_baton "$d" "$port" <<EOF
[token]
expiration = 7200

[identity]
password_hash_rounds = 4
EOF
  B_START[$n]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  B_RSS0[$n]=$(rss_kb "$baton_pid")
  body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}' "$PASSWORD")
  auth=$(curl -s -m 30 -D "$d/auth.headers" -o "$d/auth.json" -H 'Content-Type: application/json' -d "$body" \
    "http://127.0.0.1:$port/v3/auth/tokens" >/dev/null; awk 'tolower($1) == "x-subject-token:" {print $2}' "$d/auth.headers" | tr -d '\r')
  [ -n "$auth" ] || { echo "bench-revocations: no token from baton" >&2; exit 1; }
  user_id=$(jq -r .token.user.id "$d/auth.json")
  project_id=$(jq -r .token.project.id "$d/auth.json")
  "$MINT" "$d/fernet-keys" "$user_id" "$project_id" "$TOKENS" "$d/tokens.txt" 7200 2> "$d/mint.log"
  export BENCH_AUTH_TOKEN=$auth BENCH_TOKENS_FILE=$d/tokens.txt BENCH_PROGRESS=$d/progress BENCH_THREADS=$THREADS
  run_wrk "baton-$n" "$baton_pid" validate_many.lua "$CONC" 30s "http://127.0.0.1:$port"
  B_RATE[$n]=$R_rps B_P99[$n]=$R_p99_us B_ERR[$n]=$R_errors
  B_RSS1[$n]=$(rss_kb "$baton_pid")
  log "N=$n: baton start ${B_START[$n]} s, RSS $(mib "${B_RSS0[$n]}") MiB, cold $(printf '%.0f' "$R_rps")/s"
  kill "$baton_pid"; wait "$baton_pid" 2>/dev/null || true; baton_pid=

  if [[ " $KS_EVENTS " == *" $n "* ]]; then
    ks_dir=$d/ks
    kport=$(free_port)
    "$VENV/bin/python" tests/interop/keystone_oracle.py start --workdir "$ks_dir" --port "$kport" \
      --sqlite "$d/keystone.db" --key-repository "$d/fernet-keys" --cache --workers 2 --timeout 90 \
      > "$d/ks-start.json" 2> "$d/ks-start.err" || { cat "$d/ks-start.err" >&2; exit 1; }
    ks_master=$(jq -r .pid "$ks_dir/keystone-oracle.pid")
    # Warm both workers on the caller's token, then the same tokens, new to Keystone.
    for _ in 1 2 3 4; do curl -s -m 60 -o /dev/null -H "X-Auth-Token: $auth" -H "X-Subject-Token: $auth" "http://127.0.0.1:$kport/v3/auth/tokens"; done
    rm -f "$d"/progress.*
    wait_quiet "keystone-$n"
    run_wrk "keystone-$n" "$ks_master" validate_many.lua 8 60s "http://127.0.0.1:$kport"
    K_RATE[$n]=$R_rps K_P99[$n]=$R_p99_us K_ERR[$n]=$R_errors
    "$VENV/bin/python" tests/interop/keystone_oracle.py stop --workdir "$ks_dir" >/dev/null 2>&1 || true
    ks_dir=
  fi
  rm -f "$d/tokens.txt"
done

first=${EVENTS%% *}
{
  echo "# Cold validation as revocation events pile up ($stamp)"
  echo
  echo "\`bash scripts/bench-revocations.sh\` (BENCH_EVENTS=\"$EVENTS\", BENCH_KS_EVENTS=\"$KS_EVENTS\", $TOKENS distinct tokens, wrk -t$THREADS for ${DURATION} s, c=$CONC for Baton and c=8 for Keystone), SQLite, $(nproc) cores, $(git -C "$root" describe --always --dirty)."
  echo "Every validation is of a token new to the server. Work directory: $work."
  echo
  echo "| events | Baton start | Baton RSS after start | bytes per event | Baton cold validations/s | p99 | vs none | RSS after | Keystone 30 cold validations/s | p99 |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for n in $EVENTS; do
    per=-; vs=-
    if [ "$n" != 0 ] && [ -n "${B_RSS0[0]:-}" ]; then
      per=$(awk -v a="${B_RSS0[$n]}" -v b="${B_RSS0[0]}" -v n="$n" 'BEGIN{printf "%.0f", (a-b)*1024/n}')
    fi
    if [ -n "${B_RATE[$first]:-}" ]; then vs=$(pct "${B_RATE[$n]}" "${B_RATE[$first]}")%; fi
    ks=-; ksp=-
    if [ -n "${K_RATE[$n]:-}" ]; then ks=$(printf '%.0f' "${K_RATE[$n]}"); ksp=$(ms "${K_P99[$n]}"); [ "${K_ERR[$n]}" = 0 ] || ks="$ks (${K_ERR[$n]} errors)"; fi
    rate=$(printf '%.0f' "${B_RATE[$n]}"); [ "${B_ERR[$n]}" = 0 ] || rate="$rate (${B_ERR[$n]} errors)"
    echo "| $n | ${B_START[$n]} s | $(mib "${B_RSS0[$n]}") MiB | $per | $rate | $(ms "${B_P99[$n]}") | $vs | $(mib "${B_RSS1[$n]}") MiB | $ks | $ksp |"
  done
  echo
  echo "Quiet-machine checks: $(for k in "${!QUIET[@]}"; do printf '%s: %s; ' "$k" "${QUIET[$k]}"; done)"
} > "$report"
cat "$report"
log "report: $report"
