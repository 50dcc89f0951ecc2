#!/usr/bin/env bash
# Shared by the bench-*.sh scripts (sourced after they set: work, THREADS, DURATION, QUIET_LOAD,
# QUIET_BUDGET, BENCH_DIR, BENCH_NAME and a log function): free ports, waiting for a quiet machine,
# CPU accounting of the servers, and wrk runs whose BENCH_RESULT line (bench/report.lua) is parsed
# into R_<field> variables.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- quiet machine ---------------------------------------------------------------------------------
quiet_left=$QUIET_BUDGET
declare -A QUIET
wait_quiet() { # phase-name; sets QUIET[phase]
  local phase=$1 start=$SECONDS load
  while :; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" -v q="$QUIET_LOAD" 'BEGIN{exit !(l < q)}'; then
      QUIET[$phase]="quiet (load $load, waited $((SECONDS - start)) s)"
      break
    fi
    if (( SECONDS - start >= quiet_left )); then
      QUIET[$phase]="NOT QUIET: load $load after waiting $((SECONDS - start)) s"
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

# Runs wrk; args: tag server-pids script concurrency timeout [wrk args...]. Parses the
# BENCH_RESULT line into R_<field> globals plus R_server_cpu / R_wrk_cpu (cores busy).
run_wrk() {
  local tag=$1 pids=$2 script=$3 conc=$4 timeout=$5; shift 5
  local out=$work/wrk-$tag.txt t0 t1
  t0=$(cpu_ticks $pids)
  local TIMEFORMAT='%R %U %S'
  { time wrk -t"$THREADS" -c"$conc" -d"${DURATION}s" --timeout "$timeout" --latency \
        -s "$BENCH_DIR/$script" "$@" > "$out" 2>&1; } 2> "$work/time-$tag.txt"
  t1=$(cpu_ticks $pids)
  local line
  line=$(grep '^BENCH_RESULT' "$out") || { cat "$out" >&2; echo "$BENCH_NAME: wrk $tag gave no result" >&2; exit 1; }
  for kv in ${line#BENCH_RESULT }; do eval "R_${kv%%=*}=${kv#*=}"; done
  read -r real user sys < "$work/time-$tag.txt"
  R_wrk_cpu=$(awk -v r="$real" -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", (u+s)/r}')
  R_server_cpu=$(awk -v d="$((t1 - t0))" -v hz="$TICKS" -v r="$real" 'BEGIN{printf "%.2f", d/hz/r}')
  R_errors=$((R_err_connect + R_err_read + R_err_write + R_err_status + R_err_timeout))
  # issue.lua also prints the steady-state rate (slope of completions over time).
  R_slope=$(sed -n 's/^BENCH_SLOPE rps=\([0-9.]*\).*/\1/p' "$out")
  log "$tag: $(printf '%.1f' "$R_rps") req/s ${R_slope:+(steady $R_slope/s) }p50 ${R_p50_us} us p99 ${R_p99_us} us errors $R_errors (server ${R_server_cpu} cores, wrk ${R_wrk_cpu} cores)"
}
ms() { awk -v u="$1" 'BEGIN{ if (u < 10000) printf "%.2f ms", u/1000; else printf "%.0f ms", u/1000 }'; }
save() { # prefix: copy the R_ results to <prefix>_<field>
  local p=$1 f
  for f in rps slope mean_us p50_us p99_us errors requests server_cpu wrk_cpu err_status err_timeout err_read err_connect; do
    eval "${p}_$f=\$R_$f"
  done
}

# One bcrypt verify at cost 12, in Rust (the criterion bench built by the caller, $BCRYPT_BENCH)
# and in Python's bcrypt as Keystone runs it; sets bcrypt_ms, py_bcrypt_ms and the bounds on
# 2 cores (bound, py_bound: verifies per second).
measure_bcrypt() {
  # The bench binary built above, run directly (no rebuild if sources changed meanwhile).
  "$BCRYPT_BENCH" --bench > "$work/bcrypt-criterion.txt" 2>&1
  bcrypt_ns=$(jq -r .mean.point_estimate "${CARGO_TARGET_DIR:-$root/target}/criterion/bcrypt/verify_cost_12/new/estimates.json")
  bcrypt_ms=$(awk -v n="$bcrypt_ns" 'BEGIN{printf "%.1f", n/1e6}')
  py_bcrypt_ms=$("$VENV/bin/python" - "$PASSWORD" <<'EOF'
import sys, time, bcrypt
pw = sys.argv[1].encode()
h = bcrypt.hashpw(pw, bcrypt.gensalt(12))
bcrypt.checkpw(pw, h)
n = 5
t = time.perf_counter()
for _ in range(n):
    assert bcrypt.checkpw(pw, h)
print(f"{(time.perf_counter() - t) / n * 1000:.1f}")
EOF
  )
  bound=$(awk -v m="$bcrypt_ms" 'BEGIN{printf "%.2f", 2000/m}')
  py_bound=$(awk -v m="$py_bcrypt_ms" 'BEGIN{printf "%.2f", 2000/m}')
}

# r as a percentage of b, rounded.
pct() { awk -v r="$1" -v b="$2" 'BEGIN{printf "%.0f", 100*r/b}'; }
# A phase's quiet-machine note for the report, in bold when it was not quiet.
quiet_cell() { case "${QUIET[$1]}" in NOT*) echo "**${QUIET[$1]}**";; *) echo "${QUIET[$1]}";; esac; }

# ---- shared set-up of the newer scripts ------------------------------------------------------------
# Checks the tools a bench needs and makes its work directory (BENCH_WORKDIR or a new /tmp dir);
# sets work, stamp (UTC, for the report's name) and log. Args: the bench's name.
bench_workdir() {
  local tool
  for tool in cargo curl jq python3 wrk; do
    command -v "$tool" >/dev/null || { echo "$1: $tool is missing (Debian: apt-get install -y wrk jq curl)" >&2; exit 1; }
  done
  work=${BENCH_WORKDIR:-$(mktemp -d /tmp/baton-bench.XXXXXX)}
  mkdir -p "$work" "$root/bench/results"
  work=$(cd "$work" && pwd)
  stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
}

# A fresh Baton database and key repository on SQLite in dir (db_sync, fernet_setup, bootstrap
# with $PASSWORD, the catalog at port), its keystone.conf completed by the lines on stdin.
init_sqlite_baton() { # dir port
  local d=$1 port=$2
  mkdir -p "$d"
  { printf '[database]\nconnection = sqlite:///%s/keystone.db\n\n[fernet_tokens]\nkey_repository = %s/fernet-keys\n\n' "$d" "$d"; cat; } > "$d/baton.conf"
  "$BATON" manage --config "$d/baton.conf" db_sync > "$d/manage.log" 2>&1
  "$BATON" manage --config "$d/baton.conf" fernet_setup >> "$d/manage.log" 2>&1
  "$BATON" manage --config "$d/baton.conf" bootstrap --bootstrap-password "$PASSWORD" \
    --bootstrap-region-id RegionOne --bootstrap-public-url "http://127.0.0.1:$port/v3" >> "$d/manage.log" 2>&1
}

# Waits until the server at url answers at all; exits with its log's tail if it dies first.
wait_for_server() { # pid url log [poll seconds]
  until curl -s -m 5 -o /dev/null "$2"; do
    kill -0 "$1" 2>/dev/null || { tail -20 "$3" >&2; exit 1; }
    sleep "${4:-0.1}"
  done
}

# init_sqlite_baton, then served on port; sets baton_pid once it answers.
start_sqlite_baton() { # dir port
  local d=$1 port=$2
  init_sqlite_baton "$d" "$port"
  if [ -n "${BEFORE_SERVE:-}" ]; then "$BEFORE_SERVE" "$d"; fi
  setsid "$BATON" serve --config "$d/baton.conf" --bind "127.0.0.1:$port" > "$d/serve.log" 2>&1 < /dev/null &
  baton_pid=$!
  wait_for_server "$baton_pid" "http://127.0.0.1:$port/v3" "$d/serve.log"
}

# ---- named processes (each in its own session, output to $work/<name>.log, stopped by pid) -------
declare -A PID
stop() { # name: TERM, then KILL after 20 s (callgrind writes its file on the way out)
  local p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  PID[$1]=
}
stop_all() {
  local n
  for n in "${!PID[@]}"; do stop "$n"; done
}
spawn() { # name cmd...
  local name=$1; shift
  setsid "$@" >> "$work/$name.log" 2>&1 < /dev/null &
  PID[$name]=$!
}
wait_http() { # name url: until the URL answers at all (any status), at most about 60 s
  for _ in $(seq 1 300); do
    curl -s -m 2 -o /dev/null "$2" 2>/dev/null && return 0
    kill -0 "${PID[$1]}" 2>/dev/null || break
    sleep 0.2
  done
  tail -30 "$work/$1.log" >&2
  echo "$BENCH_NAME: $1 did not start" >&2
  exit 1
}
