#!/usr/bin/env bash
# Delegation, Baton vs the real OpenStack Keystone in one run (issue 12's figures):
# application-credential logins per second against the bcrypt bound, and validations per second
# of a trust-scoped token.
#
#   bash scripts/bench-delegation.sh            # whole run, about 5-10 minutes on 2 cores
#
# One run does, all on 127.0.0.1:
#   1. builds `baton` (release) and the bcrypt criterion bench; creates the Python venv with
#      keystone 30 + gunicorn if missing (scripts/python-env.sh);
#   2. sets up Baton (SQLite, bcrypt cost 12) and the real Keystone (tests/interop/keystone_oracle.py:
#      sqlite, gunicorn with 2 workers, [cache] dogpile.cache.memory, debug off), each with, made
#      through its own API as admin: an application credential of admin on project admin (the
#      secret hashed like a password, bcrypt cost 12 on both), a user `trustee` and a trust from
#      admin to trustee on project admin (role member, no impersonation, unlimited uses), and a
#      trust-scoped token of trustee;
#   3. measures, each phase only after the machine is quiet (as bench-identity.sh):
#        a. a bare bcrypt verify at cost 12 (Rust criterion; Python's bcrypt.checkpw): the bound
#           is 2 cores / verify time;
#        b. application-credential login: wrk -t2 -c32 POST /v3/auth/tokens (method
#           application_credential, by id) for BENCH_DURATION s, steady-state rate = slope of
#           completions (bench/issue.lua with BENCH_BODY_FILE);
#        c. trust-scoped token validation: wrk -t2 -c32 GET /v3/auth/tokens (admin X-Auth-Token,
#           the trust-scoped X-Subject-Token);
#   4. prints a Markdown report and writes it to bench/results/delegation-<UTC date-time>.md.
#
# Needs: cargo, curl, jq, python3, wrk (Debian: apt-get install -y wrk jq).
# Knobs (environment): BENCH_DURATION (20), BENCH_CONC (32), BENCH_THREADS (2),
#   BENCH_QUIET_LOAD (0.7), BENCH_QUIET_BUDGET (600), BENCH_WORKDIR, BENCH_SKIP_BUILD=1,
#   CARGO_TARGET_DIR (where the release binaries are).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

DURATION=${BENCH_DURATION:-20}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-2}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-600}
PASSWORD=bench-admin-pass
APP_SECRET=bench-app-cred-secret-7Qz
VENV=${BATON_VENV:-}
export BENCH_DIR=$root/bench
TARGET=${CARGO_TARGET_DIR:-$root/target}

for tool in cargo curl jq python3 wrk; do
  command -v "$tool" >/dev/null || { echo "bench-delegation: $tool is missing (Debian: apt-get install -y wrk jq curl)" >&2; exit 1; }
done

work=${BENCH_WORKDIR:-$(mktemp -d /tmp/baton-bench-delegation.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$root/bench/results"
report=$root/bench/results/delegation-$stamp.md
BENCH_NAME=bench-delegation
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

baton_pid=
cleanup() {
  [ -n "$baton_pid" ] && kill "$baton_pid" 2>/dev/null || true
  if [ -f "$work/ks/keystone-oracle.pid" ]; then
    "$VENV/bin/python" tests/interop/keystone_oracle.py stop --workdir "$work/ks" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# ---- build ---------------------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton (release) and the bcrypt bench"
  cargo build --release -q -p baton-cli
  BCRYPT_BENCH=$(cargo bench -q -p baton-server --bench bcrypt --no-run --message-format=json \
    | jq -r 'select(.executable != null and .target.name == "bcrypt") | .executable' | tail -1)
else
  BCRYPT_BENCH=$(ls -t "$TARGET"/release/deps/bcrypt-* 2>/dev/null | grep -v '\.d$' | head -1)
fi
BATON=$TARGET/release/baton
[ -x "$BATON" ] && [ -x "$BCRYPT_BENCH" ] || { echo "bench-delegation: release binaries missing" >&2; exit 1; }
# The venv with keystone 30 and gunicorn (created when missing; BATON_VENV overrides).
[ -n "$VENV" ] && [ -x "$VENV/bin/gunicorn" ] || VENV=$(bash scripts/python-env.sh)

# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"

# ---- the two servers -------------------------------------------------------------------------------
log "work directory: $work"
bport=$(free_port)
mkdir -p "$work/baton"
BCONF=$work/baton/baton.conf
printf '[database]\nconnection = sqlite:///%s/baton/baton.db\n\n[token]\nexpiration = 3600\n\n[fernet_tokens]\nkey_repository = %s/baton/fernet-keys\n' \
  "$work" "$work" > "$BCONF"
{
  "$BATON" manage --config "$BCONF" db_sync
  "$BATON" manage --config "$BCONF" fernet_setup
  "$BATON" manage --config "$BCONF" bootstrap --bootstrap-password "$PASSWORD" \
    --bootstrap-region-id RegionOne --bootstrap-public-url "http://127.0.0.1:$bport/v3"
} > "$work/baton/manage.log" 2>&1
setsid "$BATON" serve --config "$BCONF" --bind "127.0.0.1:$bport" >> "$work/baton/serve.log" 2>&1 < /dev/null &
baton_pid=$!
for _ in $(seq 1 100); do
  curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$bport/v3" 2>/dev/null | grep -q 200 && break
  sleep 0.2
done
kport=$(free_port)
mkdir -p "$work/ks"
log "setting up keystone (about 15 s)"
"$VENV/bin/python" tests/interop/keystone_oracle.py start --workdir "$work/ks" --port "$kport" \
  --init --bootstrap-password "$PASSWORD" --cache --workers 2 --timeout 90 > "$work/ks/start.json" 2> "$work/ks-start.err" \
  || { cat "$work/ks-start.err" >&2; exit 1; }
ks_master=$(jq -r .pid "$work/ks/keystone-oracle.pid")

# ---- what is measured, made through each server's API ------------------------------------------------
# call URL METHOD PATH TOKEN [BODY] -> the JSON body; headers in $work/last.headers
call() {
  local url=$1 method=$2 path=$3 token=$4 body=${5:-}
  curl -s -m 60 -D "$work/last.headers" -X "$method" -H 'Content-Type: application/json' \
    ${token:+-H "X-Auth-Token: $token"} ${body:+-d "$body"} "$url/v3$path"
}
subject() { awk 'tolower($1) == "x-subject-token:" {print $2}' "$work/last.headers" | tr -d '\r'; }
login() { # url user password [scope-json]
  local scope=${4:+,\"scope\":$4}
  call "$1" POST /auth/tokens "" "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$2\",\"domain\":{\"id\":\"default\"},\"password\":\"$3\"}}}$scope}}" > "$work/login.json"
  subject
}
prepare() { # url side -> writes $work/<side>-appcred.json and sets <side>_ADMIN, <side>_TRUST
  local url=$1 side=$2 admin project user trustee trust
  admin=$(login "$url" admin "$PASSWORD" '{"project":{"name":"admin","domain":{"id":"default"}}}')
  project=$(jq -r .token.project.id "$work/login.json")
  user=$(jq -r .token.user.id "$work/login.json")
  local cred
  cred=$(call "$url" POST "/users/$user/application_credentials" "$admin" \
    "{\"application_credential\":{\"name\":\"bench\",\"secret\":\"$APP_SECRET\"}}" | jq -r .application_credential.id)
  [ -n "$cred" ] && [ "$cred" != null ] || { echo "bench-delegation: $side made no application credential" >&2; exit 1; }
  printf '{"auth":{"identity":{"methods":["application_credential"],"application_credential":{"id":"%s","secret":"%s"}}}}' \
    "$cred" "$APP_SECRET" > "$work/$side-appcred.json"
  trustee=$(call "$url" POST /users "$admin" \
    "{\"user\":{\"name\":\"trustee\",\"password\":\"$PASSWORD\",\"domain_id\":\"default\"}}" | jq -r .user.id)
  trust=$(call "$url" POST /OS-TRUST/trusts "$admin" \
    "{\"trust\":{\"trustor_user_id\":\"$user\",\"trustee_user_id\":\"$trustee\",\"project_id\":\"$project\",\"impersonation\":false,\"roles\":[{\"name\":\"member\"}]}}" \
    | jq -r .trust.id)
  [ -n "$trust" ] && [ "$trust" != null ] || { echo "bench-delegation: $side made no trust" >&2; exit 1; }
  local trust_token
  trust_token=$(login "$url" trustee "$PASSWORD" "{\"OS-TRUST:trust\":{\"id\":\"$trust\"}}")
  [ "$(jq -r '.token["OS-TRUST:trust"].id' "$work/login.json")" = "$trust" ] \
    || { echo "bench-delegation: $side gave no trust-scoped token: $(head -c 300 "$work/login.json")" >&2; exit 1; }
  eval "${side}_ADMIN=\$admin ${side}_TRUST=\$trust_token"
}
prepare "http://127.0.0.1:$bport" baton
prepare "http://127.0.0.1:$kport" ks
log "application credentials, trusts and trust-scoped tokens made on both"

# ---- a. bcrypt -------------------------------------------------------------------------------------
wait_quiet bcrypt
measure_bcrypt
log "bcrypt cost 12: Rust ${bcrypt_ms} ms (bound $bound/s), Python ${py_bcrypt_ms} ms (bound $py_bound/s)"

# ---- b. application-credential logins ----------------------------------------------------------------
wait_quiet baton_appcred
BENCH_BODY_FILE=$work/baton-appcred.json run_wrk baton-appcred "$baton_pid" issue.lua "$CONC" 30s "http://127.0.0.1:$bport"
save ba
wait_quiet ks_appcred
BENCH_BODY_FILE=$work/ks-appcred.json run_wrk ks-appcred "$ks_master" issue.lua "$CONC" 30s "http://127.0.0.1:$kport"
save ka

# ---- c. trust-scoped token validations ----------------------------------------------------------------
wait_quiet baton_trust
BENCH_AUTH_TOKEN=$baton_ADMIN BENCH_SUBJECT_TOKEN=$baton_TRUST run_wrk baton-trust "$baton_pid" validate.lua "$CONC" 10s "http://127.0.0.1:$bport"
save bt
wait_quiet ks_trust
BENCH_AUTH_TOKEN=$ks_ADMIN BENCH_SUBJECT_TOKEN=$ks_TRUST run_wrk ks-trust "$ks_master" validate.lua "$CONC" 30s "http://127.0.0.1:$kport"
save kt

# ---- report -------------------------------------------------------------------------------------------
{
  echo "# Delegation benchmark, $stamp"
  echo
  echo "Command: \`bash scripts/bench-delegation.sh\` (commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' + local changes')). Host: $(nproc) cores, $(uname -sr)."
  echo "Load generator: wrk -t$THREADS -c$CONC -d${DURATION}s --latency on the same cores."
  echo "Baton: SQLite, bcrypt cost 12. Keystone 30: gunicorn 2 sync workers, sqlite, [cache] dogpile.cache.memory, debug off."
  echo
  echo "| measure | Baton | Keystone |"
  echo "|---|---|---|"
  echo "| application-credential logins/s, steady state (slope of completions) | **$(printf '%.2f' "$ba_slope")** | $(printf '%.2f' "$ka_slope") |"
  echo "| as % of the bcrypt bound (Rust $bound/s, Python $py_bound/s on 2 cores) | **$(pct "$ba_slope" "$bound") %** | $(pct "$ka_slope" "$py_bound") % |"
  echo "| logins p50 / p99 | $(ms "$ba_p50_us") / $(ms "$ba_p99_us") | $(ms "$ka_p50_us") / $(ms "$ka_p99_us") |"
  echo "| logins errors / requests | $ba_errors / $ba_requests | $ka_errors / $ka_requests |"
  echo "| trust-scoped token validations/s (c$CONC) | **$(printf '%.0f' "$bt_rps")** | $(printf '%.1f' "$kt_rps") |"
  echo "| validation p50 / p99 | $(ms "$bt_p50_us") / $(ms "$bt_p99_us") | $(ms "$kt_p50_us") / $(ms "$kt_p99_us") |"
  echo "| validation errors / requests | $bt_errors / $bt_requests | $kt_errors / $kt_requests |"
  echo "| validation CPU: server / wrk (cores) | $bt_server_cpu / $bt_wrk_cpu | $kt_server_cpu / $kt_wrk_cpu |"
  echo "| bcrypt verify, cost 12 (one core) | $bcrypt_ms ms (Rust) | $py_bcrypt_ms ms (Python) |"
  echo
  echo "Machine quiet before each phase (1-min load average < $QUIET_LOAD):"
  for p in bcrypt baton_appcred ks_appcred baton_trust ks_trust; do
    [ -n "${QUIET[$p]:-}" ] && echo "- $p: $(quiet_cell "$p")"
  done
  echo
  echo "Raw outputs: $work (wrk-*.txt, bcrypt-criterion.txt, baton/serve.log, ks/*.log)."
} > "$report"
cat "$report"
log "report written to $report"
