#!/usr/bin/env bash
# Baton as a fleet (issue 13): how fast a write on one node reaches another, and what HAProxy in
# front of three nodes gives compared with one node. Not run in CI.
#
#   bash scripts/bench-fleet.sh            # about 10 minutes on 2 cores
#
# One run does, all on 127.0.0.1, on the PostgreSQL of scripts/services.sh (a fresh database each
# time; tests/interop/fleet.py starts the nodes and HAProxy):
#   1. builds `baton` (release); creates the Python venv if missing; installs haproxy and wrk
#      from Debian's packages when missing;
#   2. propagation: three nodes behind HAProxy; BENCH_TRIALS times per kind (revocation with
#      DELETE /v3/auth/tokens, role assignment removed, user disabled), the write is made on node 1
#      and node 2 is asked directly (not through HAProxy) every ~10 ms with GET /v3/auth/tokens
#      until it refuses the token (which it had validated, so cached, before the write);
#   3. throughput: wrk -t2 -cBENCH_CONC GET /v3/auth/tokens (bench/validate.lua) for
#      BENCH_DURATION s through HAProxy to the three nodes, then directly to node 1, each phase
#      after the machine is quiet (bench-lib.sh's wait_quiet), all on the same 2 cores;
#   4. writes a Markdown report to bench/results/fleet-<UTC date-time>.md (raw output stays in the
#      work directory it names).
#
# Knobs (environment): BENCH_TRIALS (200), BENCH_DURATION (20), BENCH_CONC (32), BENCH_THREADS (2),
#   BENCH_QUIET_LOAD (0.7), BENCH_QUIET_BUDGET (300), BENCH_WORKDIR, BENCH_SKIP_BUILD=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

TRIALS=${BENCH_TRIALS:-200}
DURATION=${BENCH_DURATION:-20}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-2}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-300}
export BENCH_DIR=$root/bench
TARGET=${CARGO_TARGET_DIR:-$root/target}

# shellcheck source=services.sh
source scripts/services.sh
command -v haproxy >/dev/null || baton_apt_install haproxy
command -v wrk >/dev/null || baton_apt_install wrk
for tool in cargo curl jq python3 wrk haproxy; do
  command -v "$tool" >/dev/null || { echo "bench-fleet: $tool is missing" >&2; exit 1; }
done
baton_service PostgreSQL BATON_TEST_POSTGRES_URL 5432 baton_start_postgres

work=${BENCH_WORKDIR:-$(mktemp -d /tmp/baton-bench-fleet.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
results_dir=$root/bench/results
mkdir -p "$results_dir"
report=$results_dir/fleet-$stamp.md
BENCH_NAME=bench-fleet
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
}
trap 'cleanup; baton_services_cleanup' EXIT

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton (release)"
  cargo build --release -q -p baton-cli
fi
export BATON_BIN=${BATON_BIN:-$TARGET/release/baton}
[ -x "$BATON_BIN" ] || { echo "bench-fleet: $BATON_BIN missing" >&2; exit 1; }
VENV=$(bash scripts/python-env.sh)
export BATON_VENV=$VENV
FLEET="$VENV/bin/python tests/interop/fleet.py"

# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
log "work directory: $work"

# ---- propagation ---------------------------------------------------------------------------------
wait_quiet propagation
log "propagation: $TRIALS trials per kind"
t0=$SECONDS
$FLEET propagation --workdir "$work/propagation" --trials "$TRIALS" --json "$work/propagation.json" \
  > "$work/propagation.md" 2> "$work/propagation.err" || { tail -30 "$work/propagation.err" >&2; exit 1; }
prop_seconds=$((SECONDS - t0))
cat "$work/propagation.md" >&2

# ---- throughput ----------------------------------------------------------------------------------
$FLEET serve --workdir "$work/serve" --state "$work/state.json" > "$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do
  [ -f "$work/state.json" ] && break
  kill -0 "$serve_pid" 2>/dev/null || { tail -30 "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done
[ -f "$work/state.json" ] || { echo "bench-fleet: the fleet did not start" >&2; exit 1; }
export BENCH_AUTH_TOKEN BENCH_SUBJECT_TOKEN
BENCH_AUTH_TOKEN=$(jq -r .auth_token "$work/state.json")
BENCH_SUBJECT_TOKEN=$(jq -r .subject_token "$work/state.json")
hp_url=$(jq -r .haproxy "$work/state.json")
node1_url=$(jq -r '.nodes[0]' "$work/state.json")
node_pids=$(jq -r '.node_pids | join(" ")' "$work/state.json")
node1_pid=$(jq -r '.node_pids[0]' "$work/state.json")
hp_pid=$(jq -r .haproxy_pid "$work/state.json")
for u in "$hp_url" "$node1_url"; do
  code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $BENCH_AUTH_TOKEN" \
    -H "X-Subject-Token: $BENCH_SUBJECT_TOKEN" "$u/v3/auth/tokens")
  [ "$code" = 200 ] || { echo "bench-fleet: validate on $u gave HTTP $code" >&2; exit 1; }
done

wait_quiet haproxy
run_wrk haproxy-3-nodes "$node_pids $hp_pid" validate.lua "$CONC" 10s "$hp_url"
save hp
wait_quiet direct
run_wrk direct-node1 "$node1_pid" validate.lua "$CONC" 10s "$node1_url"
save dn
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=

# ---- report --------------------------------------------------------------------------------------
{
  echo "# Baton fleet: propagation between nodes and throughput behind HAProxy"
  echo
  echo "Run $stamp, commit $(git rev-parse --short HEAD), $(nproc) cores, $(haproxy -v | head -1 | cut -d' ' -f1-3),"
  echo "PostgreSQL $(psql --version 2>/dev/null | awk '{print $3}'), \`baton\` release build, 3 nodes on one PostgreSQL"
  echo "database, Fernet keys shared through the database (\`key_distribution = database\`, each node its own mirror), \`[identity] password_hash_rounds = 4\`."
  echo "Command: \`bash scripts/bench-fleet.sh\` (BENCH_TRIALS=$TRIALS, BENCH_DURATION=$DURATION, BENCH_CONC=$CONC);"
  echo "work directory $work."
  echo
  echo "## Propagation: a write on node 1, refused by node 2"
  echo
  echo "Node 2 had validated (cached) the token before the write; it is then asked directly every ~10 ms"
  echo "until it refuses it. Time from the write's answer on node 1 to node 2's first refusal"
  echo "($prop_seconds s for the whole phase, $(quiet_cell propagation))."
  echo
  cat "$work/propagation.md"
  echo
  echo "## Validations per second: HAProxy to 3 nodes vs one node directly"
  echo
  echo "wrk -t$THREADS -c$CONC -d${DURATION}s GET /v3/auth/tokens (bench/validate.lua: one caller token, one"
  echo "subject token), on the same 2 cores as the servers and wrk."
  echo
  echo "| path | validations/s | p50 | p99 | errors | servers' CPU (cores) | wrk CPU | machine |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "| HAProxy -> 3 nodes | $(printf '%.0f' "$hp_rps") | $(ms "$hp_p50_us") | $(ms "$hp_p99_us") | $hp_errors | $hp_server_cpu (nodes + haproxy) | $hp_wrk_cpu | $(quiet_cell haproxy) |"
  echo "| node 1 directly | $(printf '%.0f' "$dn_rps") | $(ms "$dn_p50_us") | $(ms "$dn_p99_us") | $dn_errors | $dn_server_cpu | $dn_wrk_cpu | $(quiet_cell direct) |"
  echo
  echo "Through HAProxy: $(pct "$hp_rps" "$dn_rps") % of one node's rate. On 2 cores the three nodes, HAProxy"
  echo "and wrk share the same CPUs, so this measures the proxy's cost rather than a fleet's capacity,"
  echo "which grows with the machines added."
} > "$report"
cat "$report"
log "report: $report"
