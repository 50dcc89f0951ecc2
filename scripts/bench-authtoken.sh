#!/usr/bin/env bash
# The receiving side under load (issue 4): Baton's auth_token layer, `baton authproxy` and the real
# keystonemiddleware, each with a cached valid user token + service token pair, against a Baton
# identity server on loopback; and how many identity calls each makes for many requests.
#
#   bash scripts/bench-authtoken.sh            # whole run, about 5-15 minutes on 2 cores
#
# One run does, all on 127.0.0.1:
#   1. builds `baton` (release), the example crates/baton-authtoken/examples/bench_app.rs (axum,
#      200 "ok"; behind AuthTokenLayer when given an INI, else no auth) and the criterion bench
#      crates/baton-authtoken/benches/layer.rs; creates the Python venv with keystonemiddleware
#      13 + gunicorn if missing (scripts/python-env.sh);
#   2. sets up Baton (SQLite, [token] expiration 3600, `manage bootstrap` of admin and of nova
#      holding `service` on project `service`), served with BATON_LOG=baton_server=debug so that
#      every request it answers is one log line (that is how identity calls are counted);
#      issues an admin token (the user token) and a nova token (the service token), and mints
#      BENCH_COUNT_PAIRS more of each offline (mint_tokens) for the count;
#   3. starts the fronts, all with the same [keystone_authtoken] options (service user nova,
#      interface public, service_token_roles service, service_token_roles_required true,
#      token_cache_time 300, include_service_catalog false, in-process cache only):
#        d. bench_app without auth (the baseline; also the upstream of b),
#        a. bench_app behind AuthTokenLayer,
#        b. `baton authproxy` in front of d,
#        c. keystonemiddleware's AuthProtocol around a trivial WSGI app (bench/ksm_wsgi.py) under
#           gunicorn with 2 sync workers;
#   4. measures, each phase only after the machine is quiet (1-minute load average below
#      BENCH_QUIET_LOAD, polled every 20 s, at most BENCH_QUIET_BUDGET seconds of waiting over the
#      whole run; if it never quiets the phase runs anyway and the report says so):
#        - wrk -t2 -c32 for BENCH_DURATION s through d, a, b, c with the issued pair (cached by a
#          few requests first), plus the identity calls made meanwhile;
#        - the criterion bench: Authenticator::authenticate on the cached pair, a whole request
#          through the layer, and the same request without it;
#        - for a, b, c each restarted (empty cache): BENCH_COUNT_REQUESTS authenticated requests
#          spread over the BENCH_COUNT_PAIRS minted pairs (bench/authtoken_pairs.lua, c32), and
#          the identity server's requests from the front's start to the end, by kind;
#   5. prints a Markdown report and writes it to bench/results/authtoken-<UTC date-time>.md
#      (raw wrk output, criterion output and logs stay in the work directory it names).
#
# Needs: cargo, curl, jq, python3, wrk (Debian: apt-get install -y wrk jq).
# Knobs (environment): BENCH_DURATION (20), BENCH_CONC (32), BENCH_THREADS (2),
#   BENCH_COUNT_REQUESTS (10000), BENCH_COUNT_PAIRS (100), BENCH_COUNT_MAX_SECONDS (120),
#   BENCH_QUIET_LOAD (0.7), BENCH_QUIET_BUDGET (600), BENCH_WORKDIR (default: a new /tmp dir),
#   BENCH_SKIP_BUILD=1 (use the existing release binaries as they are).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

DURATION=${BENCH_DURATION:-20}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-2}
COUNT_REQUESTS=${BENCH_COUNT_REQUESTS:-10000}
COUNT_PAIRS=${BENCH_COUNT_PAIRS:-100}
COUNT_MAX_SECONDS=${BENCH_COUNT_MAX_SECONDS:-120}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-600}
ADMIN_PW=bench-admin-pass
NOVA_PW=bench-nova-pass
export BENCH_DIR=$root/bench

for tool in cargo curl jq python3 wrk; do
  command -v "$tool" >/dev/null || { echo "bench-authtoken: $tool is missing (Debian: apt-get install -y wrk jq curl)" >&2; exit 1; }
done

work=${BENCH_WORKDIR:-$(mktemp -d /tmp/baton-bench-authtoken.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
results_dir=$root/bench/results
mkdir -p "$results_dir"
report=$results_dir/authtoken-$stamp.md
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }
run_started=$SECONDS

# ---- processes: stop, spawn, wait_http from bench-lib.sh (its other helpers are redefined below) ----
BENCH_NAME=bench-authtoken
# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
trap stop_all EXIT

# ---- build -------------------------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton, bench_app (release) and the layer bench"
  cargo build --release -q -p baton-cli
  cargo build --release -q -p baton-token --example mint_tokens
  cargo build --release -q -p baton-authtoken --example bench_app
  LAYER_BENCH=$(cargo bench -q -p baton-authtoken --bench layer --no-run --message-format=json \
    | jq -r 'select(.executable != null and .target.name == "layer") | .executable' | tail -1)
else
  LAYER_BENCH=$(ls -t target/release/deps/layer-* 2>/dev/null | grep -v '\.d$' | head -1)
fi
BATON=$root/target/release/baton
MINT=$root/target/release/examples/mint_tokens
APP=$root/target/release/examples/bench_app
for b in "$BATON" "$MINT" "$APP" "$LAYER_BENCH"; do
  [ -x "$b" ] || { echo "bench-authtoken: $b is missing (build first, or drop BENCH_SKIP_BUILD)" >&2; exit 1; }
done
VENV=$(bash scripts/python-env.sh)
[ -x "$VENV/bin/gunicorn" ] || { echo "bench-authtoken: no gunicorn in $VENV" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- quiet machine ---------------------------------------------------------------------------------
quiet_left=$QUIET_BUDGET
declare -A QUIET
wait_quiet() { # phase-name; sets QUIET[phase]
  local phase=$1 start=$SECONDS load
  while :; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" -v q="$QUIET_LOAD" 'BEGIN{exit !(l < q)}'; then
      QUIET[$phase]="load $load (waited $((SECONDS - start)) s)"
      break
    fi
    if (( SECONDS - start >= quiet_left )); then
      QUIET[$phase]="**NOT QUIET: load $load** (waited $((SECONDS - start)) s)"
      break
    fi
    sleep 20
  done
  quiet_left=$(( quiet_left - (SECONDS - start) ))
  if (( quiet_left < 0 )); then quiet_left=0; fi
  log "$phase: ${QUIET[$phase]}"
}

# CPU ticks (user+sys) of the given pids and all their children (by parent pid).
cpu_ticks() {
  local total=0 p pids="$*"
  for p in $pids $(for q in $pids; do pgrep -P "$q" || true; done); do
    [ -r "/proc/$p/stat" ] || continue
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
  done
  echo "$total"
}
TICKS=$(getconf CLK_TCK)

# ---- the identity server's request log -----------------------------------------------------------
# With BATON_LOG=...,baton_server=debug Baton logs one "request method=.. path=.. status=.." line
# per request it answers.
idlog() { sed 's/\x1b\[[0-9;]*m//g' "$work/baton.log" | grep ' request method=' || true; }
idlog_lines() { idlog | wc -l; }
# Identity calls since line $1 of idlog: sets C_total C_validate C_auth C_other C_detail.
count_calls() {
  local since=$1 lines
  lines=$(idlog | tail -n +"$((since + 1))")
  C_total=$(printf '%s' "$lines" | grep -c . || true)
  C_validate=$(printf '%s\n' "$lines" | grep -c 'method=GET path=/v3/auth/tokens ' || true)
  C_auth=$(printf '%s\n' "$lines" | grep -c 'method=POST path=/v3/auth/tokens ' || true)
  C_other=$(( C_total - C_validate - C_auth ))
  C_detail=$(printf '%s\n' "$lines" | grep . | sed -n 's/.*method=\([A-Z]*\) path=\([^ ]*\) status=\([0-9]*\).*/\1 \2 \3/p' \
    | sort | uniq -c | sort -rn | awk '{printf "%s%s %s %s x%d", (NR>1?", ":""), $2, $3, $4, $1}')
}

# wrk itself always runs for its whole -d; with BENCH_DONE_PREFIX set (authtoken_pairs.lua) it is
# interrupted once each of its threads has written <prefix>.<thread> to say it is done.
wrk_until_done() { # out conc timeout duration script [wrk args...]
  local out=$1 conc=$2 timeout=$3 dur=$4 script=$5 wpid n; shift 5
  wrk -t"$THREADS" -c"$conc" -d"${dur}s" --timeout "$timeout" --latency -s "$BENCH_DIR/$script" "$@" > "$out" 2>&1 &
  wpid=$!
  if [ -n "${BENCH_DONE_PREFIX:-}" ]; then
    while kill -0 "$wpid" 2>/dev/null; do
      n=$(find "$(dirname "$BENCH_DONE_PREFIX")" -maxdepth 1 -name "$(basename "$BENCH_DONE_PREFIX").*" | wc -l)
      if (( n >= THREADS )); then kill -INT "$wpid" 2>/dev/null || true; break; fi
      sleep 0.2
    done
  fi
  wait "$wpid" || true
}

# Runs wrk; args: tag server-pids script concurrency timeout duration [wrk args...]. Parses the
# BENCH_RESULT line into R_<field> globals plus R_server_cpu / R_wrk_cpu (cores busy) and R_calls
# (identity server requests meanwhile).
run_wrk() {
  local tag=$1 pids=$2 script=$3 conc=$4 timeout=$5 dur=$6; shift 6
  local out=$work/wrk-$tag.txt t0 t1 l0
  l0=$(idlog_lines)
  t0=$(cpu_ticks $pids)
  local TIMEFORMAT='%R %U %S'
  { time wrk_until_done "$out" "$conc" "$timeout" "$dur" "$script" "$@"; } 2> "$work/time-$tag.txt"
  t1=$(cpu_ticks $pids)
  local line
  line=$(grep '^BENCH_RESULT' "$out") || { cat "$out" >&2; echo "bench-authtoken: wrk $tag gave no result" >&2; exit 1; }
  for kv in ${line#BENCH_RESULT }; do eval "R_${kv%%=*}=${kv#*=}"; done
  read -r real user sys < "$work/time-$tag.txt"
  R_wrk_cpu=$(awk -v r="$real" -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", (u+s)/r}')
  R_server_cpu=$(awk -v d="$((t1 - t0))" -v hz="$TICKS" -v r="$real" 'BEGIN{printf "%.2f", d/hz/r}')
  R_errors=$((R_err_connect + R_err_read + R_err_write + R_err_status + R_err_timeout))
  R_calls=$(( $(idlog_lines) - l0 ))
  log "$tag: $(printf '%.1f' "$R_rps") req/s p50 ${R_p50_us} us p99 ${R_p99_us} us errors $R_errors of $R_requests (server ${R_server_cpu} cores, wrk ${R_wrk_cpu} cores), identity calls $R_calls"
}
save() { # prefix: copy the R_ results to <prefix>_<field>
  local p=$1 f
  for f in rps mean_us p50_us p99_us errors requests server_cpu wrk_cpu calls err_status err_connect err_read err_timeout; do
    eval "${p}_$f=\$R_$f"
  done
}

# ---- Baton ---------------------------------------------------------------------------------------
log "work directory: $work"
bport=$(free_port)
KS=http://127.0.0.1:$bport/v3
mkdir -p "$work/baton"
cat > "$work/baton/baton.conf" <<EOF
# written by scripts/bench-authtoken.sh
[database]
connection = sqlite:///$work/baton/baton.db

[token]
expiration = 3600

[fernet_tokens]
key_repository = $work/baton/fernet-keys
EOF
BCONF=$work/baton/baton.conf
{
  "$BATON" manage --config "$BCONF" db_sync
  "$BATON" manage --config "$BCONF" fernet_setup
  "$BATON" manage --config "$BCONF" bootstrap --bootstrap-password "$ADMIN_PW" \
    --bootstrap-region-id RegionOne --bootstrap-public-url "$KS"
  "$BATON" manage --config "$BCONF" bootstrap --bootstrap-password "$NOVA_PW" --bootstrap-username nova \
    --bootstrap-project-name service --bootstrap-role-name service \
    --bootstrap-region-id RegionOne --bootstrap-public-url "$KS"
} > "$work/baton/manage.log" 2>&1 || { tail -20 "$work/baton/manage.log" >&2; exit 1; }
BATON_LOG=info,sqlx=warn,baton_server=debug NO_COLOR=1 spawn baton \
  "$BATON" serve --config "$BCONF" --bind "127.0.0.1:$bport"
wait_http baton "$KS"
log "baton serving on 127.0.0.1:$bport (pid ${PID[baton]})"

issue_token() { # user password project out-prefix -> prints the token; body in <out-prefix>.json
  local body code
  body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"name":"Default"}}}}}' "$1" "$2" "$3")
  code=$(curl -s -m 60 -D "$4.headers" -o "$4.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$body" "$KS/auth/tokens?nocatalog")
  [ "$code" = 201 ] || { echo "bench-authtoken: issue for $1 gave HTTP $code: $(head -c 300 "$4.json")" >&2; exit 1; }
  awk 'tolower($1) == "x-subject-token:" {print $2}' "$4.headers" | tr -d '\r'
}
USER_TOKEN=$(issue_token admin "$ADMIN_PW" admin "$work/baton/user")
SERVICE_TOKEN=$(issue_token nova "$NOVA_PW" service "$work/baton/service")
jq -e '[.token.roles[].name] | index("service")' "$work/baton/service.json" >/dev/null \
  || { echo "bench-authtoken: nova's token lacks the service role" >&2; exit 1; }
admin_uid=$(jq -r .token.user.id "$work/baton/user.json"); admin_pid=$(jq -r .token.project.id "$work/baton/user.json")
nova_uid=$(jq -r .token.user.id "$work/baton/service.json"); service_pid=$(jq -r .token.project.id "$work/baton/service.json")
"$MINT" "$work/baton/fernet-keys" "$admin_uid" "$admin_pid" "$COUNT_PAIRS" "$work/users.txt" 3600 2> "$work/mint.log"
"$MINT" "$work/baton/fernet-keys" "$nova_uid" "$service_pid" "$COUNT_PAIRS" "$work/services.txt" 3600 2>> "$work/mint.log"
paste -d' ' "$work/users.txt" "$work/services.txt" > "$work/pairs.txt"
[ "$(sort -u "$work/users.txt" "$work/services.txt" | wc -l)" = $((2 * COUNT_PAIRS)) ] \
  || { echo "bench-authtoken: minted tokens are not all distinct" >&2; exit 1; }

# ---- the fronts ----------------------------------------------------------------------------------
cat > "$work/authtoken.ini" <<EOF
# written by scripts/bench-authtoken.sh
[keystone_authtoken]
www_authenticate_uri = $KS
auth_url = $KS
auth_type = password
username = nova
password = $NOVA_PW
project_name = service
user_domain_name = Default
project_domain_name = Default
interface = public
service_token_roles = service
service_token_roles_required = true
delay_auth_decision = false
token_cache_time = 300
include_service_catalog = false
EOF
ksm_conf=$(awk -F' = ' '/ = / {printf "%s\"%s\": \"%s\"", (n++ ? ", " : "{"), $1, $2} END {print "}"}' "$work/authtoken.ini")
dport=$(free_port); aport=$(free_port); pport=$(free_port); kport=$(free_port)
{ printf '[authproxy]\nlisten = 127.0.0.1:%s\nupstream = http://127.0.0.1:%s\nupstream_timeout = 30\n\n' "$pport" "$dport"
  cat "$work/authtoken.ini"; } > "$work/proxy.ini"

start_plain() { spawn plain "$APP" "127.0.0.1:$dport"; wait_http plain "http://127.0.0.1:$dport/"; }
start_layer() { spawn layer "$APP" "127.0.0.1:$aport" "$work/authtoken.ini"; wait_http layer "http://127.0.0.1:$aport/"; }
start_proxy() { spawn proxy "$BATON" authproxy --config "$work/proxy.ini"; wait_http proxy "http://127.0.0.1:$pport/"; }
start_ksm() {
  BENCH_KSM_CONF=$ksm_conf PYTHONDONTWRITEBYTECODE=1 spawn ksm "$VENV/bin/gunicorn" --workers 2 --worker-class sync \
    --bind "127.0.0.1:$kport" --timeout 60 --no-control-socket --chdir "$BENCH_DIR" ksm_wsgi:application
  wait_http ksm "http://127.0.0.1:$kport/"
}
check_front() { # name port: the pair gives 200, no token gives 401
  local code
  code=$(curl -s -m 30 -o "$work/check-$1.txt" -w '%{http_code}' -H "X-Auth-Token: $USER_TOKEN" -H "X-Service-Token: $SERVICE_TOKEN" "http://127.0.0.1:$2/")
  [ "$code" = 200 ] || { echo "bench-authtoken: $1 answered $code to the token pair: $(head -c 300 "$work/check-$1.txt")" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
  if [ "$1" != plain ]; then
    code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/")
    [ "$code" = 401 ] || { echo "bench-authtoken: $1 answered $code without a token" >&2; exit 1; }
  fi
}
warm() { # port: a few requests so that every worker has the pair cached
  for _ in $(seq 1 20); do
    curl -s -m 30 -o /dev/null -H "X-Auth-Token: $USER_TOKEN" -H "X-Service-Token: $SERVICE_TOKEN" "http://127.0.0.1:$1/"
  done
}
start_plain; start_layer; start_proxy; start_ksm
check_front plain "$dport"; check_front layer "$aport"; check_front proxy "$pport"; check_front ksm "$kport"
log "fronts up: plain :$dport, layer :$aport, authproxy :$pport, keystonemiddleware :$kport"

# ---- throughput with a cached pair ----------------------------------------------------------------
export BENCH_USER_TOKEN=$USER_TOKEN BENCH_SERVICE_TOKEN=$SERVICE_TOKEN
wait_quiet plain
run_wrk plain "${PID[plain]}" authtoken_pair.lua "$CONC" 10s "$DURATION" "http://127.0.0.1:$dport"; save d
wait_quiet layer
warm "$aport"
run_wrk layer "${PID[layer]}" authtoken_pair.lua "$CONC" 10s "$DURATION" "http://127.0.0.1:$aport"; save a
wait_quiet proxy
warm "$pport"
run_wrk proxy "${PID[proxy]} ${PID[plain]}" authtoken_pair.lua "$CONC" 10s "$DURATION" "http://127.0.0.1:$pport"; save b
wait_quiet ksm
warm "$kport"
run_wrk ksm "${PID[ksm]}" authtoken_pair.lua "$CONC" 30s "$DURATION" "http://127.0.0.1:$kport"; save c

# ---- criterion: the cached path without HTTP ----------------------------------------------------------
wait_quiet criterion
stop layer # (its CPU is idle, but keep the machine to the bench)
CRITERION_HOME=$work/criterion BENCH_AUTHTOKEN_INI=$work/authtoken.ini \
  "$LAYER_BENCH" --bench > "$work/criterion.txt" 2>&1 || { tail -30 "$work/criterion.txt" >&2; exit 1; }
crit_ns() { jq -r .mean.point_estimate "$work/criterion/authtoken/$1/new/estimates.json"; }
crit_auth=$(crit_ns authenticate_cached_pair); crit_layer=$(crit_ns layer_cached_pair); crit_none=$(crit_ns no_layer)
us() { awk -v n="$1" 'BEGIN{printf "%.2f", n/1000}'; }
crit_added=$(awk -v a="$crit_layer" -v b="$crit_none" 'BEGIN{printf "%.2f", (a-b)/1000}')
log "criterion: authenticate $(us "$crit_auth") us, layer $(us "$crit_layer") us, no layer $(us "$crit_none") us"

# ---- identity calls for COUNT_REQUESTS requests over COUNT_PAIRS pairs -------------------------------------------
export BENCH_PAIRS_FILE=$work/pairs.txt BENCH_TOTAL_REQUESTS=$COUNT_REQUESTS BENCH_THREADS=$THREADS
count_front() { # name port start-fn server-pids-fn prefix: fresh front, then the counted run
  local name=$1 port=$2 start_fn=$3 prefix=$5 l0 pline
  stop "$name"
  rm -f "$work"/done-"$name".*
  l0=$(idlog_lines)
  "$start_fn"
  wait_quiet "count_$name"
  BENCH_DONE_PREFIX=$work/done-$name run_wrk "count-$name" "$($4)" authtoken_pairs.lua "$CONC" 30s "$COUNT_MAX_SECONDS" "http://127.0.0.1:$port"
  sleep 1
  count_calls "$l0"
  pline=$(grep '^BENCH_PAIRS' "$work/wrk-count-$name.txt")
  printf -v "${prefix}_sent" '%s' "$(sed 's/.*sent=\([0-9]*\).*/\1/' <<< "$pline")"
  printf -v "${prefix}_ok" '%s' "$(sed 's/.*ok=\([0-9]*\).*/\1/' <<< "$pline")"
  printf -v "${prefix}_total" '%s' "$C_total"
  printf -v "${prefix}_validate" '%s' "$C_validate"
  printf -v "${prefix}_auth" '%s' "$C_auth"
  printf -v "${prefix}_other" '%s' "$C_other"
  printf -v "${prefix}_detail" '%s' "$C_detail"
  printf -v "${prefix}_secs" '%s' "$(awk -v r="$R_requests" -v s="$R_rps" 'BEGIN{printf "%.1f", r/s}')"
  [ "$(get "${prefix}_ok")" = "$COUNT_REQUESTS" ] && [ "$(get "${prefix}_sent")" = "$COUNT_REQUESTS" ] \
    || log "count $name: WARNING: not all $COUNT_REQUESTS authenticated requests were sent and answered 200"
  log "count $name: $pline; identity calls $C_total (validations $C_validate, auth $C_auth, other $C_other): $C_detail"
}
get() { local v=$1; echo "${!v}"; }
pids_layer() { echo "${PID[layer]}"; }
pids_proxy() { echo "${PID[proxy]} ${PID[plain]}"; }
pids_ksm() { echo "${PID[ksm]}"; }
count_front layer "$aport" start_layer pids_layer ea
count_front proxy "$pport" start_proxy pids_proxy eb
count_front ksm "$kport" start_ksm pids_ksm ec

# ---- report ----------------------------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN{ if (u < 10000) printf "%.2f ms", u/1000; else printf "%.0f ms", u/1000 }'; }
per_req() { awk -v c="$1" -v r="$2" 'BEGIN{printf "%.1f", c*1e6/r}'; } # server CPU us per request
row() { # label prefix quiet-phase
  local p=$1 rps p50 p99 err req cpu wcpu calls
  eval "rps=\$${2}_rps p50=\$${2}_p50_us p99=\$${2}_p99_us err=\$${2}_errors req=\$${2}_requests cpu=\$${2}_server_cpu wcpu=\$${2}_wrk_cpu calls=\$${2}_calls"
  echo "| $p | **$(printf '%.0f' "$rps")** | $(ms "$p50") / $(ms "$p99") | $err / $req | $cpu / $wcpu | $(per_req "$cpu" "$rps") | $calls | ${QUIET[$3]} |"
}
cpu_added=$(awk -v ca="$a_server_cpu" -v ra="$a_rps" -v cd="$d_server_cpu" -v rd="$d_rps" 'BEGIN{printf "%.1f", ca*1e6/ra - cd*1e6/rd}')
wall_added=$(awk -v ra="$a_rps" -v rd="$d_rps" -v c="$(nproc)" 'BEGIN{printf "%.1f", c*1e6/ra - c*1e6/rd}')
ratio=$(awk -v b="$b_rps" -v c="$c_rps" 'BEGIN{printf "%.1f", b/c}')
ratio_a=$(awk -v a="$a_rps" -v c="$c_rps" 'BEGIN{printf "%.1f", a/c}')
ratio_d=$(awk -v d="$d_rps" -v c="$c_rps" 'BEGIN{printf "%.1f", d/c}')
verdict() { awk -v x="$1" -v t="$2" -v dir="$3" 'BEGIN{ ok = (dir == "<") ? (x < t) : (x >= t); print ok ? "met" : "**NOT met**" }'; }
{
  echo "# auth_token benchmark, $stamp"
  echo
  echo "Command: \`bash scripts/bench-authtoken.sh\` (commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' + local changes')). Host: $(nproc) cores, $(uname -sr). Run took $(( (SECONDS - run_started) / 60 )) min."
  echo "Load generator: wrk -t$THREADS -c$CONC -d${DURATION}s --latency, GET / with X-Auth-Token (admin, project admin) + X-Service-Token (nova, role service on project service), on the same cores (its CPU is in the table)."
  echo "Identity server: Baton (release, SQLite) on loopback. All middlewares: token_cache_time 300, in-process cache, include_service_catalog false, interface public, service_token_roles_required true; the pair was cached by a few requests before each run."
  echo
  echo "| front (c$CONC, ${DURATION} s, cached pair) | req/s | p50 / p99 | errors / requests | CPU server / wrk (cores) | server CPU µs / request | identity calls during the run | 1-min load before |"
  echo "|---|---|---|---|---|---|---|---|"
  row "(d) no auth: axum app (bench_app), baseline" d plain
  row "(a) Baton AuthTokenLayer in the same axum app" a layer
  row "(b) \`baton authproxy\` → (d) as upstream (CPU: both)" b proxy
  row "(c) keystonemiddleware 13.0.1 AuthProtocol, gunicorn 2 sync workers" c ksm
  echo
  echo "What the layer adds on the cached path:"
  echo
  echo "| measure | µs per request | target < 50 µs |"
  echo "|---|---|---|"
  echo "| criterion: \`Authenticator::authenticate\` on a cached pair | $(us "$crit_auth") | $(verdict "$(us "$crit_auth")" 50 '<') |"
  echo "| criterion: request through \`AuthTokenLayer\` minus the same request without it ($(us "$crit_layer") − $(us "$crit_none")) | $crit_added | $(verdict "$crit_added" 50 '<') |"
  echo "| under wrk: server CPU per request, (a) − (d) | $cpu_added | $(verdict "$cpu_added" 50 '<') |"
  echo "| under wrk: $(nproc) cores / req/s, (a) − (d) (includes wrk's share of the cores) | $wall_added | |"
  echo
  echo "The criterion bench ran at ${QUIET[criterion]}, one tokio worker thread."
  echo
  echo "Throughput ratios: \`baton authproxy\` / keystonemiddleware = **${ratio}×** (target ≥ 20×: $(verdict "$ratio" 20 '>=')); layer / keystonemiddleware = ${ratio_a}×; the no-auth baseline (d) / keystonemiddleware = ${ratio_d}× (the ceiling for any front on these cores with wrk beside it)."
  echo
  echo "Identity-server calls for $COUNT_REQUESTS requests sharing $COUNT_PAIRS token pairs (all $((2 * COUNT_PAIRS)) tokens distinct; wrk -c$CONC; front started fresh, so its start-up calls are counted; counted from Baton's request log):"
  echo
  echo "| front | requests answered 200 / sent | identity calls | token validations (GET /v3/auth/tokens) | own auth (POST /v3/auth/tokens) | other | run time | 1-min load before | calls by method, path, status |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for x in "(a) layer:ea:count_layer" "(b) authproxy:eb:count_proxy" "(c) keystonemiddleware:ec:count_ksm"; do
    IFS=: read -r label p q <<< "$x"
    echo "| $label | $(get "${p}_ok") / $(get "${p}_sent") | **$(get "${p}_total")** | $(get "${p}_validate") | $(get "${p}_auth") | $(get "${p}_other") | $(get "${p}_secs") s | ${QUIET[$q]} | $(get "${p}_detail") |"
  done
  echo
  echo "Raw outputs: $work (wrk-*.txt, criterion.txt, baton.log (the request log), layer.log, proxy.log, ksm.log)."
} > "$report"
cat "$report"
log "report written to $report"
