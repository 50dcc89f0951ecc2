#!/usr/bin/env bash
# Baton vs the real OpenStack Keystone: token validation and issue throughput/latency, the
# bcrypt bound on issue, and Baton's memory while validating a million distinct tokens.
#
#   bash scripts/bench-identity.sh            # whole run, about 10-15 minutes on 2 cores
#
# One run does, all on 127.0.0.1:
#   1. builds `baton` (release), the token minter example and the bcrypt criterion bench;
#      creates the Python venv with keystone 30 + gunicorn if missing (scripts/python-env.sh);
#   2. sets up Baton (SQLite, default bcrypt cost 12) with `baton manage db_sync / fernet_setup /
#      bootstrap` and serves it; sets up the real Keystone (tests/interop/keystone_oracle.py:
#      sqlite, gunicorn with 2 workers, [cache] dogpile.cache.memory on, debug off);
#   3. measures, each phase only after the machine is quiet (1-minute load average below
#      BENCH_QUIET_LOAD, polled every 20 s, at most BENCH_QUIET_BUDGET seconds of waiting over the
#      whole run; if it never quiets the phase runs anyway and the table says so):
#        a. validate: wrk -t2 -c32 GET /v3/auth/tokens (admin X-Auth-Token, project-scoped
#           X-Subject-Token) for BENCH_DURATION s against Baton, then Keystone;
#        b. issue: wrk -t2 -c32 POST /v3/auth/tokens (password, project scope) for BENCH_DURATION s;
#           Keystone is re-run at BENCH_KS_FALLBACK_CONC when more than 1% of its requests fail;
#        c. a bare bcrypt verify at cost 12 (criterion bench crates/baton-server/benches/bcrypt.rs,
#           and Python's bcrypt.checkpw as Keystone uses it): bound = 2 cores / verify time;
#        d. Baton restarted, then BENCH_RSS_TOKENS distinct project-scoped tokens (minted offline by
#           crates/baton-token/examples/mint_tokens.rs) driven through GET /v3/auth/tokens by
#           bench/validate_many.lua while VmRSS of the server is sampled every second;
#        e. the same tokens on a restarted Baton with the validation snapshot off
#           (snapshot_cache_bytes = 0), for the cold path with and without it;
#   4. prints a Markdown report and writes it to bench/results/identity-<UTC date-time>.md
#      (raw wrk output, samples and server logs stay in the work directory it names).
#
# Needs: cargo, curl, jq, python3, wrk (Debian: apt-get install -y wrk jq).
# Knobs (environment): BENCH_DURATION (20), BENCH_CONC (32), BENCH_THREADS (2),
#   BENCH_KS_FALLBACK_CONC (8), BENCH_RSS_TOKENS (1000000), BENCH_RSS_MAX_SECONDS (720),
#   BENCH_QUIET_LOAD (0.7), BENCH_QUIET_BUDGET (900), BENCH_WORKDIR (default: a new /tmp dir),
#   BENCH_SKIP_BUILD=1 (use the existing release binaries as they are).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

DURATION=${BENCH_DURATION:-20}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-2}
KS_FALLBACK_CONC=${BENCH_KS_FALLBACK_CONC:-8}
RSS_TOKENS=${BENCH_RSS_TOKENS:-1000000}
RSS_MAX_SECONDS=${BENCH_RSS_MAX_SECONDS:-720}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-900}
PASSWORD=bench-admin-pass
VENV=${BATON_VENV:-}
export BENCH_DIR=$root/bench
TARGET=${CARGO_TARGET_DIR:-$root/target}

for tool in cargo curl jq python3 wrk; do
  command -v "$tool" >/dev/null || { echo "bench-identity: $tool is missing (Debian: apt-get install -y wrk jq curl)" >&2; exit 1; }
done

work=${BENCH_WORKDIR:-$(mktemp -d /tmp/baton-bench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
results_dir=$root/bench/results
mkdir -p "$results_dir"
report=$results_dir/identity-$stamp.md
BENCH_NAME=bench-identity
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

baton_pid=
sampler_pid=
wrk_pid=
cleanup() {
  [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null || true
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  [ -n "$baton_pid" ] && kill "$baton_pid" 2>/dev/null || true
  if [ -f "$work/ks/keystone-oracle.pid" ]; then
    "$VENV/bin/python" tests/interop/keystone_oracle.py stop --workdir "$work/ks" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# ---- build ---------------------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton (release), mint_tokens and the bcrypt bench"
  cargo build --release -q -p baton-cli
  cargo build --release -q -p baton-token --example mint_tokens
  BCRYPT_BENCH=$(cargo bench -q -p baton-server --bench bcrypt --no-run --message-format=json \
    | jq -r 'select(.executable != null and .target.name == "bcrypt") | .executable' | tail -1)
else
  BCRYPT_BENCH=$(ls -t "$TARGET"/release/deps/bcrypt-* 2>/dev/null | grep -v '\.d$' | head -1)
fi
BATON=$TARGET/release/baton
MINT=$TARGET/release/examples/mint_tokens
[ -x "$BATON" ] && [ -x "$MINT" ] && [ -x "$BCRYPT_BENCH" ] || { echo "bench-identity: release binaries missing" >&2; exit 1; }
# The venv with keystone 30 and gunicorn (created when missing; BATON_VENV overrides).
[ -n "$VENV" ] && [ -x "$VENV/bin/gunicorn" ] || VENV=$(bash scripts/python-env.sh)

# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"

# ---- Baton set-up ------------------------------------------------------------------------------------
log "work directory: $work"
bport=$(free_port)
mkdir -p "$work/baton"
cat > "$work/baton/baton.conf" <<EOF
# written by scripts/bench-identity.sh
[database]
connection = sqlite:///$work/baton/baton.db

[token]
expiration = 3600

[fernet_tokens]
key_repository = $work/baton/fernet-keys
EOF
BCONF=$work/baton/baton.conf
"$BATON" manage --config "$BCONF" db_sync > "$work/baton/manage.log" 2>&1
"$BATON" manage --config "$BCONF" fernet_setup >> "$work/baton/manage.log" 2>&1
"$BATON" manage --config "$BCONF" bootstrap --bootstrap-password "$PASSWORD" \
  --bootstrap-region-id RegionOne --bootstrap-public-url "http://127.0.0.1:$bport/v3" >> "$work/baton/manage.log" 2>&1

start_baton() {
  setsid "$BATON" serve --config "$BCONF" --bind "127.0.0.1:$bport" >> "$work/baton/serve.log" 2>&1 < /dev/null &
  baton_pid=$!
  for _ in $(seq 1 100); do
    curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$bport/v3" 2>/dev/null | grep -q 200 && return 0
    kill -0 "$baton_pid" 2>/dev/null || break
    sleep 0.2
  done
  tail -20 "$work/baton/serve.log" >&2
  echo "bench-identity: baton did not start" >&2
  exit 1
}
stop_baton() { kill "$baton_pid" 2>/dev/null || true; for _ in $(seq 1 50); do kill -0 "$baton_pid" 2>/dev/null || break; sleep 0.1; done; baton_pid=; }
start_baton
log "baton serving on 127.0.0.1:$bport (pid $baton_pid)"

# ---- Keystone set-up ---------------------------------------------------------------------------------
kport=$(free_port)
mkdir -p "$work/ks"
log "setting up keystone (db_sync, fernet_setup, bootstrap: about 15 s)"
"$VENV/bin/python" tests/interop/keystone_oracle.py start --workdir "$work/ks" --port "$kport" \
  --init --bootstrap-password "$PASSWORD" --cache --workers 2 --timeout 90 > "$work/ks/start.json" 2> "$work/ks-start.err" \
  || { cat "$work/ks-start.err" >&2; exit 1; }
ks_master=$(jq -r .pid "$work/ks/keystone-oracle.pid")
log "keystone serving on 127.0.0.1:$kport (gunicorn master $ks_master)"

# ---- tokens ----------------------------------------------------------------------------------------
issue_body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}' "$PASSWORD")
issue_token() { # url out-prefix -> prints the token; body in <out-prefix>.json
  local code
  code=$(curl -s -m 60 -D "$2.headers" -o "$2.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$issue_body" "$1/v3/auth/tokens")
  [ "$code" = 201 ] || { echo "bench-identity: issue against $1 gave HTTP $code: $(head -c 300 "$2.json")" >&2; exit 1; }
  awk 'tolower($1) == "x-subject-token:" {print $2}' "$2.headers" | tr -d '\r'
}
B_AUTH=$(issue_token "http://127.0.0.1:$bport" "$work/baton/auth")
B_SUBJ=$(issue_token "http://127.0.0.1:$bport" "$work/baton/subject")
K_AUTH=$(issue_token "http://127.0.0.1:$kport" "$work/ks/auth")
K_SUBJ=$(issue_token "http://127.0.0.1:$kport" "$work/ks/subject")
user_id=$(jq -r .token.user.id "$work/baton/auth.json")
project_id=$(jq -r .token.project.id "$work/baton/auth.json")
for u in "$bport $B_AUTH $B_SUBJ" "$kport $K_AUTH $K_SUBJ"; do
  set -- $u
  code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $2" -H "X-Subject-Token: $3" "http://127.0.0.1:$1/v3/auth/tokens")
  [ "$code" = 200 ] || { echo "bench-identity: validate on port $1 gave HTTP $code" >&2; exit 1; }
done

log "minting $RSS_TOKENS tokens for user $user_id, project $project_id"
"$MINT" "$work/baton/fernet-keys" "$user_id" "$project_id" "$RSS_TOKENS" "$work/tokens.txt" 7200 2> "$work/mint.log"

# ---- c. bcrypt -----------------------------------------------------------------------------------------
wait_quiet bcrypt
measure_bcrypt
log "bcrypt cost 12: Rust ${bcrypt_ms} ms (bound $bound/s on 2 cores), Python ${py_bcrypt_ms} ms (bound $py_bound/s)"

# ---- a. validate ------------------------------------------------------------------------------------------
wait_quiet baton_validate
BENCH_AUTH_TOKEN=$B_AUTH BENCH_SUBJECT_TOKEN=$B_SUBJ run_wrk baton-validate "$baton_pid" validate.lua "$CONC" 10s "http://127.0.0.1:$bport"
save bv
wait_quiet ks_validate
BENCH_AUTH_TOKEN=$K_AUTH BENCH_SUBJECT_TOKEN=$K_SUBJ run_wrk ks-validate "$ks_master" validate.lua "$CONC" 30s "http://127.0.0.1:$kport"
save kv

# ---- b. issue ------------------------------------------------------------------------------------------------
export BENCH_USER=admin BENCH_PASSWORD=$PASSWORD BENCH_PROJECT=admin
wait_quiet baton_issue
run_wrk baton-issue "$baton_pid" issue.lua "$CONC" 30s "http://127.0.0.1:$bport"
save bi
bi_conc=$CONC
wait_quiet ks_issue
run_wrk ks-issue "$ks_master" issue.lua "$CONC" 30s "http://127.0.0.1:$kport"
save ki
ki_conc=$CONC
ks_issue_note=
if (( ki_errors * 100 > ki_requests )); then
  ks_issue_note="at concurrency $CONC Keystone failed $ki_errors of $ki_requests issue requests (status $ki_err_status, timeout $ki_err_timeout, read $ki_err_read, connect $ki_err_connect); re-run at $KS_FALLBACK_CONC"
  log "$ks_issue_note"
  wait_quiet ks_issue_fallback
  run_wrk ks-issue-c$KS_FALLBACK_CONC "$ks_master" issue.lua "$KS_FALLBACK_CONC" 30s "http://127.0.0.1:$kport"
  save ki
  ki_conc=$KS_FALLBACK_CONC
fi
bi_pct=$(pct "$bi_slope" "$bound"); bi_pct_window=$(pct "$bi_rps" "$bound")
ki_pct=$(pct "$ki_slope" "$py_bound"); ki_pct_window=$(pct "$ki_rps" "$py_bound")

# ---- d. memory at a million distinct tokens ------------------------------------------------------------------
stop_baton
start_baton
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
# The caller's token is validated once so that the 0 point includes it.
validate_caller() {
  curl -s -m 30 -o /dev/null -H "X-Auth-Token: $B_AUTH" -H "X-Subject-Token: $B_AUTH" "http://127.0.0.1:$bport/v3/auth/tokens"
}
validate_caller
wait_quiet baton_rss
export BENCH_AUTH_TOKEN=$B_AUTH BENCH_TOKENS_FILE=$work/tokens.txt BENCH_PROGRESS=$work/progress BENCH_THREADS=$THREADS
# distinct_run NAME SAMPLES PREFIX: every token of the file once (wrk stops at RSS_TOKENS), VmRSS
# sampled every second into SAMPLES; wrk's output in wrk-NAME.txt, its figures in PREFIX_rps,
# PREFIX_p99_us, ...
distinct_run() {
  local name=$1 samples=$2 prefix=$3 line kv
  rm -f "$work"/progress.*
  echo "seconds validated rss_kb" > "$samples"
  echo "0 0 $(rss_kb "$baton_pid")" >> "$samples"
  wrk -t"$THREADS" -c"$CONC" -d"${RSS_MAX_SECONDS}s" --timeout 30s --latency -s "$BENCH_DIR/validate_many.lua" \
    "http://127.0.0.1:$bport" > "$work/wrk-$name.txt" 2>&1 &
  wrk_pid=$!
  (
    for ((s = 1; s <= RSS_MAX_SECONDS + 5; s++)); do
      sleep 1
      kill -0 "$wrk_pid" 2>/dev/null || break
      # (no progress file yet while wrk loads the token file)
      n=$( { cat "$work"/progress.* 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')
      echo "$s $n $(rss_kb "$baton_pid")" >> "$samples"
      if (( n >= RSS_TOKENS )); then kill -INT "$wrk_pid" 2>/dev/null; break; fi
    done
  ) &
  sampler_pid=$!
  wait "$wrk_pid" || true
  wait "$sampler_pid" || true
  sampler_pid= wrk_pid=
  line=$(grep '^BENCH_RESULT' "$work/wrk-$name.txt" || true)
  for kv in ${line#BENCH_RESULT }; do eval "${prefix}_${kv%%=*}=${kv#*=}"; done
}
samples=$work/rss-samples.txt
rss0=$(rss_kb "$baton_pid")
distinct_run baton-rss "$samples" RSS
rss_peak=$(hwm_kb "$baton_pid")

# ---- e. the same tokens with the validation snapshot off: every cold validation reads SQL -----------------------
stop_baton
cp "$BCONF" "$BCONF.with-snapshot"
printf '\n[baton]\nsnapshot_cache_bytes = 0\n' >> "$BCONF"
start_baton
validate_caller
wait_quiet baton_nosnapshot
distinct_run baton-nosnapshot "$work/rss-samples-nosnapshot.txt" NS
ns_peak=$(hwm_kb "$baton_pid")
mv "$BCONF.with-snapshot" "$BCONF"
rm -f "$work/tokens.txt" # ~190 MB per million; mint_tokens regenerates it in seconds
rss_at() { # first sample with validated >= $1 -> "RSS MiB (t s)"
  awk -v n="$1" 'NR > 1 && $2 >= n {printf "%.1f MiB (t=%d s)", $3/1024, $1; found=1; exit} END {if (!found) print "not reached"}' "$samples"
}
rss_done=$(tail -1 "$samples" | awk '{print $2}')
log "rss: validated $rss_done, peak $(( rss_peak / 1024 )) MiB"

# ---- report ------------------------------------------------------------------------------------------------------
{
  echo "# Identity benchmark, $stamp"
  echo
  echo "Command: \`bash scripts/bench-identity.sh\` (commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' + local changes')). Host: $(nproc) cores, $(uname -sr)."
  echo "Load generator: wrk -t$THREADS -c$CONC -d${DURATION}s --latency on the same cores (its CPU is in the table)."
  echo "Baton: SQLite, bcrypt cost 12, validation cache default. Keystone 30: gunicorn 2 sync workers, sqlite, [cache] dogpile.cache.memory, debug off."
  echo
  echo "| measure | Baton | Keystone |"
  echo "|---|---|---|"
  echo "| validate req/s (c$CONC) | $(printf '%.0f' "$bv_rps") | $(printf '%.1f' "$kv_rps") |"
  echo "| validate p50 / p99 | $(ms "$bv_p50_us") / $(ms "$bv_p99_us") | $(ms "$kv_p50_us") / $(ms "$kv_p99_us") |"
  echo "| validate errors / requests | $bv_errors / $bv_requests | $kv_errors / $kv_requests |"
  echo "| validate CPU: server / wrk (cores) | $bv_server_cpu / $bv_wrk_cpu | $kv_server_cpu / $kv_wrk_cpu |"
  echo "| issue req/s, steady state (slope of completions; c = concurrency) | **$(printf '%.2f' "$bi_slope")** (c$bi_conc) | $(printf '%.2f' "$ki_slope") (c$ki_conc) |"
  echo "| issue req/s, completions / window (wrk's figure) | $(printf '%.2f' "$bi_rps") | $(printf '%.2f' "$ki_rps") |"
  echo "| issue p50 / p99 | $(ms "$bi_p50_us") / $(ms "$bi_p99_us") | $(ms "$ki_p50_us") / $(ms "$ki_p99_us") |"
  echo "| issue errors / requests | $bi_errors / $bi_requests | $ki_errors / $ki_requests |"
  echo "| issue CPU: server / wrk (cores) | $bi_server_cpu / $bi_wrk_cpu | $ki_server_cpu / $ki_wrk_cpu |"
  echo "| bcrypt verify, cost 12 (one core) | $bcrypt_ms ms (Rust \`bcrypt\`, criterion) | $py_bcrypt_ms ms (Python \`bcrypt.checkpw\`) |"
  echo "| bcrypt bound on 2 cores | $bound issues/s | $py_bound issues/s |"
  echo "| issue steady state as % of bound (wrk's figure) | **$bi_pct %** ($bi_pct_window %) | $ki_pct % ($ki_pct_window %) |"
  echo
  [ -n "$ks_issue_note" ] && { echo "Note: $ks_issue_note."; echo; }
  echo "Baton memory while validating distinct tokens (VmRSS, validation cache $(grep -q validation_cache_bytes "$BCONF" && echo configured || echo 'default 64 MiB')):"
  echo
  echo "| tokens validated | 0 | 100k | 150k | 500k | 1M | peak (VmHWM) |"
  echo "|---|---|---|---|---|---|---|"
  echo "| Baton RSS | $(awk -v k="$rss0" 'BEGIN{printf "%.1f MiB", k/1024}') | $(rss_at 100000) | $(rss_at 150000) | $(rss_at 500000) | $(rss_at 1000000) | $(awk -v k="$rss_peak" 'BEGIN{printf "%.1f MiB", k/1024}') |"
  echo
  echo "Distinct-token run (each token new to the server; one user, one project): ${rss_done} requests sent in the sampled window; wrk: **$(printf '%.0f' "${RSS_rps:-0}") req/s**, p50 $(ms "${RSS_p50_us:-0}"), p99 $(ms "${RSS_p99_us:-0}"), errors connect/read/write/status/timeout ${RSS_err_connect:-?}/${RSS_err_read:-?}/${RSS_err_write:-?}/${RSS_err_status:-?}/${RSS_err_timeout:-?}."
  echo
  echo "The same tokens on a restarted server with the validation snapshot off (\`[baton] snapshot_cache_bytes = 0\`: every cold validation reads users, projects and assignments with SQL): $(printf '%.0f' "${NS_rps:-0}") req/s, p50 $(ms "${NS_p50_us:-0}"), p99 $(ms "${NS_p99_us:-0}"), errors status/timeout ${NS_err_status:-?}/${NS_err_timeout:-?}, peak RSS $(awk -v k="$ns_peak" 'BEGIN{printf "%.1f MiB", k/1024}')."
  echo
  echo "Machine quiet before each phase (1-min load average < $QUIET_LOAD):"
  for p in bcrypt baton_validate ks_validate baton_issue ks_issue ks_issue_fallback baton_rss baton_nosnapshot; do
    [ -n "${QUIET[$p]:-}" ] && echo "- $p: $(quiet_cell "$p")"
  done
  echo
  echo "Raw outputs: $work (wrk-*.txt, rss-samples.txt, bcrypt-criterion.txt, mint.log, baton/serve.log, ks/*.log)."
} > "$report"
cat "$report"
log "report written to $report"
