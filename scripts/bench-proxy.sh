#!/usr/bin/env bash
# `baton authproxy` beside nginx (issue 15 item 4): the same upstream behind each, the proxy
# validating a cached user + service token pair, nginx doing a plain `proxy_pass` with no auth
# (the physical reference for "a reverse proxy on these cores").
#
#   bash scripts/bench-proxy.sh            # about 6 minutes on 2 cores
#
# One run, all on 127.0.0.1:
#   1. builds `baton` and the example bench_app (release; BENCH_SKIP_BUILD=1 skips), sets up
#      Baton on SQLite with admin and nova (role service on project service), issues the pair;
#   2. starts the upstream (bench_app without auth: 200 "ok"), nginx (Debian's, worker_processes
#      = cores, an upstream keepalive pool, access log off) and `baton authproxy` (service user
#      nova, service_token_roles_required, token_cache_time 300, in-process cache); a second
#      nginx adds the identity headers the authproxy sends upstream, as fixed values captured
#      from the authproxy once: the same forwarding job without validating anything;
#   3. throughput: BENCH_ROUNDS rounds of wrk -t2 -c32 for BENCH_DURATION s, nginx, nginx with
#      the headers, then authproxy in each round (alternating, so drift on a shared machine hits
#      all), each phase after the machine is quiet; the medians and their ratios, and the CPU per
#      request of each front and of the upstream behind it;
#   4. instructions per proxied request, from valgrind's callgrind (stable where timings are
#      not): each front (and the upstream alone, for scale) runs under callgrind twice, once for
#      BENCH_CG_WARM + BENCH_CG_SHORT requests and once for BENCH_CG_WARM + BENCH_CG_LONG (ab -k
#      -c4, keep-alive); the difference of the two totals divided by the difference of the counts
#      is what one more request costs, without start-up and shutdown. nginx runs there as one
#      process (master_process off, one worker). The authproxy's costliest functions (self cost)
#      are listed from the long run;
#   5. writes bench/results/proxy-<UTC date-time>.md (raw outputs stay in the work directory).
#
# Needs: cargo, curl, jq, python3, wrk, nginx, ab, valgrind (Debian: apt-get install -y wrk jq
# nginx-light apache2-utils valgrind). Knobs (environment): BENCH_DURATION (15), BENCH_CONC
# (32), BENCH_THREADS (2), BENCH_ROUNDS (3), BENCH_CG_WARM (300), BENCH_CG_SHORT (1000),
# BENCH_CG_LONG (6000), BENCH_QUIET_LOAD (0.7), BENCH_QUIET_BUDGET (600), BENCH_WORKDIR,
# BENCH_SKIP_BUILD=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

DURATION=${BENCH_DURATION:-15}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CG_WARM=${BENCH_CG_WARM:-300}
CG_SHORT=${BENCH_CG_SHORT:-1000}
CG_LONG=${BENCH_CG_LONG:-6000}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-600}
PASSWORD=bench-admin-pass
NOVA_PW=bench-nova-pass
export BENCH_DIR=$root/bench
TARGET=${CARGO_TARGET_DIR:-$root/target}
# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
bench_workdir bench-proxy
report=$root/bench/results/proxy-$stamp.md
BENCH_NAME=bench-proxy
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }
run_started=$SECONDS
for tool in nginx ab valgrind callgrind_annotate; do
  command -v "$tool" >/dev/null \
    || { echo "bench-proxy: $tool is missing (Debian: apt-get install -y nginx-light apache2-utils valgrind)" >&2; exit 1; }
done

trap stop_all EXIT

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building baton and bench_app (release)"
  cargo build --release -q -p baton-cli
  cargo build --release -q -p baton-authtoken --example bench_app
fi
BATON=$TARGET/release/baton
APP=$TARGET/release/examples/bench_app
for b in "$BATON" "$APP"; do
  [ -x "$b" ] || { echo "bench-proxy: $b is missing (build first, or drop BENCH_SKIP_BUILD)" >&2; exit 1; }
done

# ---- Baton, the pair -----------------------------------------------------------------------------
bport=$(free_port)
KS=http://127.0.0.1:$bport/v3
bootstrap_nova() {
  "$BATON" manage --config "$1/baton.conf" bootstrap --bootstrap-password "$NOVA_PW" --bootstrap-username nova \
    --bootstrap-project-name service --bootstrap-role-name service \
    --bootstrap-region-id RegionOne --bootstrap-public-url "$KS" >> "$1/manage.log" 2>&1
}
BEFORE_SERVE=bootstrap_nova start_sqlite_baton "$work/baton" "$bport" <<< $'[token]\nexpiration = 3600'
PID[baton]=$baton_pid
issue_token() { # user password project -> the token
  local body
  body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"name":"Default"}}}}}' "$1" "$2" "$3")
  curl -s -m 60 -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" "$KS/auth/tokens?nocatalog" \
    | awk 'tolower($1) == "x-subject-token:" {print $2}' | tr -d '\r'
}
USER_TOKEN=$(issue_token admin "$PASSWORD" admin)
SERVICE_TOKEN=$(issue_token nova "$NOVA_PW" service)
if [ -z "$USER_TOKEN" ] || [ -z "$SERVICE_TOKEN" ]; then echo "bench-proxy: no token from Baton" >&2; exit 1; fi
log "baton on :$bport, pair issued"

# ---- the upstream and the fronts -------------------------------------------------------------------
dport=$(free_port); nport=$(free_port); pport=$(free_port); hport=$(free_port)
cat > "$work/proxy.ini" <<EOF
# written by scripts/bench-proxy.sh
[authproxy]
listen = 127.0.0.1:$pport
upstream = http://127.0.0.1:$dport
upstream_timeout = 30

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
token_cache_time = 300
include_service_catalog = false
EOF
mkdir -p "$work/nginx/tmp"
nginx_conf() { # file workers master(on|off) port [file of extra location directives]
  local user="" extra=""
  [ "$(id -u)" = 0 ] && user="user root;"
  [ -n "${5:-}" ] && extra=$(cat "$5")
  cat > "$1" <<EOF
# written by scripts/bench-proxy.sh: a plain reverse proxy, no auth
$user
worker_processes $2;
master_process $3;
daemon off;
pid $1.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  upstream app { server 127.0.0.1:$dport; keepalive 64; }
  server {
    listen 127.0.0.1:$4;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
$extra
    }
  }
}
EOF
}
nginx_conf "$work/nginx/bench.conf" "$(nproc)" on "$nport"
nginx_conf "$work/nginx/callgrind.conf" 1 off "$nport"
# WRAP: a command the front runs under (valgrind), empty for the throughput runs.
WRAP=()
start_plain() { spawn plain "${WRAP[@]}" "$APP" "127.0.0.1:$dport"; wait_http plain "http://127.0.0.1:$dport/"; }
start_nginx() { spawn nginx "${WRAP[@]}" nginx -p "$work/nginx" -c "$work/nginx/$NGINX_CONF"; wait_http nginx "http://127.0.0.1:$nport/"; }
start_nginxh() { spawn nginxh nginx -p "$work/nginx" -c "$work/nginx/headers.conf"; wait_http nginxh "http://127.0.0.1:$hport/"; }
start_proxy() { spawn proxy "${WRAP[@]}" "$BATON" authproxy --config "$work/proxy.ini"; wait_http proxy "http://127.0.0.1:$pport/"; }

# The identity headers the authproxy sends upstream for the pair, captured once: the authproxy
# in front of a one-request listener that prints the request head.
capture_identity_headers() { # -> $work/nginx/identity-headers.conf (proxy_set_header lines)
  local cport head=$work/captured-head.txt
  cport=$(free_port)
  python3 - "$cport" > "$head" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); s.settimeout(60)
c, _ = s.accept(); data = b""
while b"\r\n\r\n" not in data:
    chunk = c.recv(65536)
    if not chunk: break
    data += chunk
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"); c.close()
# The head without the tokens (this file stays in the work directory).
lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
sys.stdout.write("\n".join(l for l in lines if not l.lower().startswith(("x-auth-token:", "x-service-token:"))))
PY
  local listener=$!
  sed -e "s|^listen = .*|listen = 127.0.0.1:$hport|" -e "s|^upstream = .*|upstream = http://127.0.0.1:$cport|" \
    "$work/proxy.ini" > "$work/proxy-capture.ini"
  spawn capture "$BATON" authproxy --config "$work/proxy-capture.ini"
  wait_http capture "http://127.0.0.1:$hport/"
  curl -s -m 60 -o /dev/null -H "X-Auth-Token: $USER_TOKEN" -H "X-Service-Token: $SERVICE_TOKEN" "http://127.0.0.1:$hport/"
  wait "$listener" || true
  stop capture
  # Everything but what nginx sends by itself (the tokens, which wrk sends through it, are not
  # in the captured head).
  tail -n +2 "$head" | awk -F': ' '
    tolower($1) ~ /^(host|connection|x-forwarded-for|x-forwarded-proto|user-agent|accept|content-length)$/ { next }
    $2 ~ /["$\\;]/ { print "bench-proxy: cannot put header " $1 " into nginx.conf" > "/dev/stderr"; exit 1 }
    NF >= 2 { printf "      proxy_set_header %s \"%s\";\n", $1, substr($0, length($1) + 3); n++ }
    END { if (n < 20) { print "bench-proxy: only " n + 0 " identity headers captured" > "/dev/stderr"; exit 1 } }' \
    > "$work/nginx/identity-headers.conf"
}
check_front() { # name port: the pair gives 200 (and, for the authproxy, no token gives 401)
  local code
  code=$(curl -s -m 60 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $USER_TOKEN" -H "X-Service-Token: $SERVICE_TOKEN" "http://127.0.0.1:$2/")
  [ "$code" = 200 ] || { echo "bench-proxy: $1 answered $code to the pair" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
  if [ "$1" = proxy ]; then
    code=$(curl -s -m 60 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/")
    [ "$code" = 401 ] || { echo "bench-proxy: the authproxy answered $code without a token" >&2; exit 1; }
  fi
}
NGINX_CONF=bench.conf
start_plain; start_nginx; start_proxy
check_front nginx "$nport"; check_front proxy "$pport"
capture_identity_headers
nginx_conf "$work/nginx/headers.conf" "$(nproc)" on "$hport" "$work/nginx/identity-headers.conf"
start_nginxh; check_front nginxh "$hport"
log "upstream :$dport, nginx :$nport, nginx with the identity headers ($(wc -l < "$work/nginx/identity-headers.conf")) :$hport, authproxy :$pport"

# ---- throughput ------------------------------------------------------------------------------------
export BENCH_USER_TOKEN=$USER_TOKEN BENCH_SERVICE_TOKEN=$SERVICE_TOKEN
declare -a N_RPS H_RPS P_RPS ROWS
# One throughput phase: tag front-pid port row-label; appends a table row, sets R_rps.
phase() {
  local up0 up1
  wait_quiet "$1"
  up0=$(cpu_ticks "${PID[plain]}")
  run_wrk "$1" "$2" authtoken_pair.lua "$CONC" 10s "http://127.0.0.1:$3"
  up1=$(cpu_ticks "${PID[plain]}")
  ROWS+=("| ${1##*-} | $4 | **$(printf '%.0f' "$R_rps")** | $(ms "$R_p50_us") / $(ms "$R_p99_us") | $R_errors / $R_requests | $R_server_cpu / $R_wrk_cpu | $(awk -v c="$R_server_cpu" -v r="$R_rps" 'BEGIN{printf "%.1f", c*1e6/r}') | $(awk -v d="$((up1 - up0))" -v hz="$TICKS" -v n="$R_requests" 'BEGIN{printf "%.1f", d/hz*1e6/n}') | $(quiet_cell "$1") |")
}
for r in $(seq 1 "$ROUNDS"); do
  # cpu_ticks adds nginx's workers (the master's children).
  phase "nginx-$r" "${PID[nginx]}" "$nport" "nginx \`proxy_pass\`, no auth"; N_RPS+=("$R_rps")
  phase "nginxh-$r" "${PID[nginxh]}" "$hport" "nginx + the identity headers, no auth"; H_RPS+=("$R_rps")
  phase "proxy-$r" "${PID[proxy]}" "$pport" "\`baton authproxy\`, cached pair"; P_RPS+=("$R_rps")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
n_med=$(median "${N_RPS[@]}"); h_med=$(median "${H_RPS[@]}"); p_med=$(median "${P_RPS[@]}")
ratio=$(awk -v p="$p_med" -v n="$n_med" 'BEGIN{printf "%.2f", p/n}')
h_ratio=$(awk -v p="$h_med" -v n="$n_med" 'BEGIN{printf "%.2f", p/n}')
ph_ratio=$(awk -v p="$p_med" -v n="$h_med" 'BEGIN{printf "%.2f", p/n}')
log "median nginx $n_med/s, nginx with headers $h_med/s, authproxy $p_med/s: ratio $ratio (to nginx with headers $ph_ratio)"
stop proxy; stop nginx; stop nginxh

# ---- instructions per request (callgrind) -----------------------------------------------------------
ab_run() { # tag port count: exactly count keep-alive requests with the pair; fails unless all are 200
  local out=$work/ab-$1.txt
  ab -q -k -c 4 -n "$3" -H "X-Auth-Token: $USER_TOKEN" -H "X-Service-Token: $SERVICE_TOKEN" \
    "http://127.0.0.1:$2/" > "$out" 2>&1 || { cat "$out" >&2; exit 1; }
  if ! grep -q "^Complete requests: *$3\$" "$out" || grep -q '^Non-2xx responses' "$out" \
    || ! grep -q '^Failed requests: *0$' "$out"; then
    cat "$out" >&2; echo "bench-proxy: ab $1: not all $3 requests answered 200" >&2; exit 1
  fi
}
cg_total() { sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$1" | head -1; }
# Runs front (plain|nginx|proxy) under callgrind for CG_WARM + n requests; prints the total Ir.
cg_run() { # front n
  local front=$1 n=$2 out=$work/callgrind-$1-$2.out port
  case $front in plain) port=$dport;; nginx) port=$nport;; proxy) port=$pport;; esac
  WRAP=(valgrind --tool=callgrind --callgrind-out-file="$out" -q)
  NGINX_CONF=callgrind.conf "start_$front"
  WRAP=()
  [ "$front" = plain ] || check_front "$front" "$port"
  ab_run "$front-$n-warm" "$port" "$CG_WARM"
  ab_run "$front-$n" "$port" "$n"
  stop "$front"
  [ -s "$out" ] || { echo "bench-proxy: callgrind wrote no $out" >&2; tail -20 "$work/$front.log" >&2; exit 1; }
  cg_total "$out"
}
declare -A IPR
for front in plain nginx proxy; do
  if [ "$front" = plain ]; then stop plain; else [ -n "${PID[plain]:-}" ] || start_plain; fi
  short=$(cg_run "$front" "$CG_SHORT")
  long=$(cg_run "$front" "$CG_LONG")
  IPR[$front]=$(awk -v a="$short" -v b="$long" -v n="$((CG_LONG - CG_SHORT))" 'BEGIN{printf "%.0f", (b-a)/n}')
  log "callgrind $front: $short Ir after $CG_SHORT, $long after $CG_LONG: ${IPR[$front]} per request"
  if [ "$front" = plain ]; then start_plain; fi
done
callgrind_annotate --inclusive=no "$work/callgrind-proxy-$CG_LONG.out" > "$work/annotate-proxy.txt" 2>&1 || true
callgrind_annotate --inclusive=yes "$work/callgrind-proxy-$CG_LONG.out" > "$work/annotate-proxy-inclusive.txt" 2>&1 || true
callgrind_annotate --inclusive=no "$work/callgrind-nginx-$CG_LONG.out" > "$work/annotate-nginx.txt" 2>&1 || true
ir_ratio=$(awk -v p="${IPR[proxy]}" -v n="${IPR[nginx]}" 'BEGIN{printf "%.2f", p/n}')
# SHA-256 of the two tokens (the cache keys): valgrind hides the CPU's SHA extensions, so the
# sha2 crate runs its software rounds here; natively they are hardware instructions.
sha_per_request=$(awk -v n="$((CG_WARM + CG_LONG))" '/Auto-annotated source/ { exit }
  /:sha2::sha256::compress256/ && !/=>/ && match($0, /^ *[0-9,]+/) {
    x = substr($0, RSTART, RLENGTH); gsub(/[ ,]/, "", x); t += x } END {printf "%.0f", t/n}' "$work/annotate-proxy.txt")
sha_native=$(grep -qw sha_ni /proc/cpuinfo && echo "this CPU has them (sha_ni)" || echo "this CPU lacks them (no sha_ni): the figure is the native cost too")

# ---- report -------------------------------------------------------------------------------------------
top_functions() { # annotate file, n [pattern]: "| Ir | % | function |" rows of the costliest
  # functions (whose name matches pattern, when given)
  awk -v n="$2" -v pat="${3:-}" '
    /PROGRAM TOTALS/ { next }
    shown < n && match($0, /^ *[0-9,]+ +\( *[0-9.]+%\) +/) {
      head = substr($0, 1, RLENGTH); fn = substr($0, RLENGTH + 1)
      ir = head; sub(/^ */, "", ir); sub(/ .*/, "", ir)
      pct = head; sub(/^[^(]*\( */, "", pct); sub(/\).*/, "", pct)
      sub(/ \[[^]]*\]$/, "", fn)   # the object file
      sub(/^[^:]*\//, "", fn)       # the source directory
      if (pat != "" && fn !~ pat) next
      if (seen[fn]++) next
      gsub(/\|/, "\\|", fn); if (length(fn) > 140) fn = substr(fn, 1, 137) "..."
      printf "| %s | %s | `%s` |\n", ir, pct, fn; shown++
    }' "$1"
}
verdict() { awk -v x="$1" -v t="$2" 'BEGIN{print (x >= t) ? "met" : "**NOT met**"}'; }
{
  echo "# authproxy beside nginx, $stamp"
  echo
  echo "Command: \`bash scripts/bench-proxy.sh\` (commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' + local changes')). Host: $(nproc) cores, $(uname -sr); $(nginx -v 2>&1); $(valgrind --version). Run took $(( (SECONDS - run_started) / 60 )) min."
  echo
  echo "The fronts proxy GET / to the same upstream (bench_app without auth, 200 \"ok\") over pooled keep-alive connections; every request carries X-Auth-Token (admin) and X-Service-Token (nova, role service). nginx: $(nproc) workers, \`proxy_pass\` with \`keepalive 64\`, access log off, no auth. \`baton authproxy\`: validates the pair (cached after the first request: token_cache_time 300, in-process cache, service_token_roles_required true), strips and sets the identity headers, forwards. wrk -t$THREADS -c$CONC for $DURATION s on the same cores; each round runs the three in turn."
  echo
  echo "The second nginx sets, as fixed values, the $(wc -l < "$work/nginx/identity-headers.conf") headers the authproxy adds for this pair (captured from the authproxy before the run: identity status, the user's and the service's ids, names, domains and roles): what is left between it and the authproxy is the validation and the proxy itself; what is between the two nginx rows is the cost of the headers, most of it in the upstream, which parses them."
  echo
  echo "| round | front | req/s | p50 / p99 | errors / requests | CPU front / wrk (cores) | front CPU µs / request | upstream CPU µs / request | machine before |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "Medians: nginx **$(printf '%.0f' "$n_med")**/s, nginx with the identity headers **$(printf '%.0f' "$h_med")**/s ($h_ratio of nginx), authproxy **$(printf '%.0f' "$p_med")**/s: authproxy / nginx = **$ratio** (goal >= 0.9: $(verdict "$ratio" 0.9)); authproxy / nginx with the identity headers = **$ph_ratio**."
  echo
  echo "## Instructions per request (valgrind --tool=callgrind)"
  echo
  echo "Each front alone under callgrind, its total instructions (Ir) for $CG_WARM + $CG_SHORT requests and for $CG_WARM + $CG_LONG requests (ab -k -c4, all answered 200); per request = difference / $((CG_LONG - CG_SHORT)). nginx as one process (master_process off, 1 worker); the upstream alone shows what a minimal hyper/axum server costs per request."
  echo
  echo "| process | Ir per request | vs nginx |"
  echo "|---|---|---|"
  echo "| nginx \`proxy_pass\` (no auth) | **${IPR[nginx]}** | 1.00 |"
  echo "| \`baton authproxy\` (cached pair) | **${IPR[proxy]}** | $ir_ratio |"
  echo "| upstream alone (bench_app, axum, no auth) | ${IPR[plain]} | $(awk -v p="${IPR[plain]}" -v n="${IPR[nginx]}" 'BEGIN{printf "%.2f", p/n}') |"
  echo
  echo "Of the authproxy's figure, about **$sha_per_request** instructions per request are SHA-256 of the two tokens (the cache keys, as keystonemiddleware hashes them) in the sha2 crate's software rounds: valgrind does not expose the CPU's SHA extensions, which the crate uses natively; $sha_native."
  echo
  echo "The authproxy's costliest functions over the $CG_WARM + $CG_LONG-request run (self cost, whole process; \`callgrind_annotate --inclusive=no\`):"
  echo
  echo "| Ir | share | function |"
  echo "|---|---|---|"
  top_functions "$work/annotate-proxy.txt" 25
  echo
  echo "Baton's own functions by inclusive cost over the same run (each includes what it calls; divide by $((CG_WARM + CG_LONG)) requests for a per-request figure):"
  echo
  echo "| Ir (inclusive) | share | function |"
  echo "|---|---|---|"
  top_functions "$work/annotate-proxy-inclusive.txt" 20 ':baton_'
  echo
  echo "Raw outputs: $work (wrk-*.txt, ab-*.txt, callgrind-*.out, annotate-*.txt, logs)."
} > "$report"
cat "$report"
log "report: $report"
