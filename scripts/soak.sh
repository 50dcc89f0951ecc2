#!/usr/bin/env bash
# Soak test (not in CI): a release `baton serve` on SQLite under a modest, mixed load for N minutes
# (token issue, token validation, admin writes and reads), the server's RSS sampled every 10 s and
# every non-2xx or failed request counted. Writes bench/results/soak-<UTC timestamp>.md.
#
#   scripts/soak.sh [minutes]          default 30
#   SOAK_RATE=20 scripts/soak.sh 10    requests per second in all (default 20)
#   SOAK_WRITES=0 scripts/soak.sh 10   no project create+delete (validations instead): tells the
#                                      revocation events those deletions add from the rest
#   SOAK_CONNECTION=postgresql://... scripts/soak.sh 10
#                                      an empty database of the caller's instead of a new SQLite
#                                      file: tells SQLite's in-process page cache from the rest
#   SOAK_HEAPTRACK=/tmp/soak-heap BATON_BIN=... scripts/soak.sh 10
#                                      the server under heaptrack (Debian's package), writing
#                                      /tmp/soak-heap.zst; BATON_BIN must be built with
#                                      `--no-default-features` (the system malloc: heaptrack does
#                                      not see mimalloc). The server is killed, not stopped, at the
#                                      end, so the profile's "leaked" is the live heap then; read
#                                      it with `heaptrack_print -f /tmp/soak-heap.zst -l 1 -M
#                                      massif.out` (the massif file has the heap over time).
#
# Builds `baton` with `cargo build --release -p baton-cli` in CARGO_TARGET_DIR (default
# ./target) unless BATON_BIN names a binary. The server and the load run under `nice`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-30}
rate=${SOAK_RATE:-20}
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out=$root/bench/results/soak-$stamp.md
work=$(mktemp -d /tmp/baton-soak.XXXXXX)
log() { echo "soak: $*" >&2; }

if [ -z "${BATON_BIN:-}" ]; then
  (cd "$root" && nice -n 10 cargo build --release -q -p baton-cli)
  BATON_BIN=${CARGO_TARGET_DIR:-$root/target}/release/baton
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
password=Soak-Adm1n-$RANDOM$RANDOM
cat >"$work/baton.conf" <<EOF
[DEFAULT]
public_endpoint = http://127.0.0.1:$port
[database]
connection = ${SOAK_CONNECTION:-sqlite:///$work/keystone.db}
[fernet_tokens]
key_repository = $work/fernet-keys
[credential]
key_repository = $work/credential-keys
[identity]
# bcrypt at Keystone's minimum cost, so issuing is not the whole load on a shared machine.
password_hash_rounds = 4
EOF
"$BATON_BIN" manage --config "$work/baton.conf" db_sync >"$work/manage.log" 2>&1
"$BATON_BIN" manage --config "$work/baton.conf" fernet_setup >>"$work/manage.log" 2>&1
"$BATON_BIN" manage --config "$work/baton.conf" bootstrap --bootstrap-password "$password" \
  --bootstrap-public-url "http://127.0.0.1:$port/v3" >>"$work/manage.log" 2>&1

serve=("$BATON_BIN" serve --config "$work/baton.conf" --bind "127.0.0.1:$port")
if [ -n "${SOAK_HEAPTRACK:-}" ]; then
  nice -n 10 heaptrack -o "$SOAK_HEAPTRACK" "${serve[@]}" >"$work/serve.log" 2>&1 &
  profiler=$!
  # heaptrack's script runs the server as its child; RSS and the kill are the server's.
  server=
  for _ in $(seq 1 100); do
    server=$(pgrep -P "$profiler" -x "$(basename "$BATON_BIN" | cut -c1-15)" || true)
    [ -n "$server" ] && break
    sleep 0.1
  done
  [ -n "$server" ] || { log "heaptrack did not start $BATON_BIN"; exit 1; }
  stop=KILL
else
  nice -n 10 "${serve[@]}" >"$work/serve.log" 2>&1 &
  server=$!
  stop=TERM
fi
# Under heaptrack the server is killed and heaptrack's script waited for (it writes the profile).
cleanup() { kill -s "$stop" "$server" 2>/dev/null || true; wait "${profiler:-$server}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && break
  sleep 0.2
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
: >"$work/rss.txt"
( while kill -0 "$server" 2>/dev/null; do
    echo "$(date +%s) $(rss_kib)" >>"$work/rss.txt"
    sleep 10
  done ) &
sampler=$!

log "$minutes min at $rate req/s against 127.0.0.1:$port (pid $server)"
started=$(date -u +%FT%TZ)
nice -n 10 python3 - "$port" "$password" "$minutes" "$rate" >"$work/load.txt" <<'EOF'
# Mixed load, stdlib only: one request per slot in a fixed schedule spread over 4 threads
# (issue 10 %, validate 70 %, admin write 10 %, admin read 10 %).
import json, os, sys, threading, time, urllib.error, urllib.request, uuid
from collections import Counter

port, password, minutes, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
base = f"http://127.0.0.1:{port}/v3"
errors, done, lock = Counter(), Counter(), threading.Lock()

def call(method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
        if path == "/auth/tokens" and method == "GET":
            req.add_header("X-Subject-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()

def issue():
    s, h, _ = call("POST", "/auth/tokens", body={"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    return s, h.get("X-Subject-Token")

status, token = issue()
assert status == 201, status

def one(kind):
    global token
    if kind == "issue":
        s, t = issue()
        if s == 201:
            token = t
        return s
    if kind == "validate":
        return call("GET", "/auth/tokens", token)[0]
    if kind == "write":
        name = "soak-" + uuid.uuid4().hex[:12]
        s, _, b = call("POST", "/projects", token, {"project": {"name": name, "domain_id": "default"}})
        if s == 201:
            pid = json.loads(b)["project"]["id"]
            s2 = call("DELETE", f"/projects/{pid}", token)[0]
            return s if s2 == 204 else s2
        return s
    return call("GET", "/projects", token)[0]

writes = os.environ.get("SOAK_WRITES", "1") != "0"
kinds = ["issue"] + ["validate"] * 7 + ["write" if writes else "validate", "read"]
end = time.monotonic() + minutes * 60
interval = 4 / rate  # each of 4 threads

def worker(n):
    i, nxt = n, time.monotonic()
    while nxt < end:
        kind = kinds[i % len(kinds)]
        i += 4
        try:
            s = one(kind)
            ok = 200 <= s < 300
        except Exception as e:  # connection refused, timeout
            s, ok = type(e).__name__, False
        with lock:
            done[kind] += 1
            if not ok:
                errors[f"{kind} {s}"] += 1
        nxt += interval
        time.sleep(max(0, nxt - time.monotonic()))

threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"done": done, "errors": errors}))
EOF
ended=$(date -u +%FT%TZ)
echo "$(date +%s) $(rss_kib)" >>"$work/rss.txt"
kill "$sampler" 2>/dev/null || true

case ${SOAK_CONNECTION:-sqlite} in
  postgres*) database=PostgreSQL ;;
  mysql*) database=MariaDB ;;
  *) database=SQLite ;;
esac
read -r rss_start rss_end rss_max samples < <(awk 'NF == 2 {if (!n) s = $2; e = $2; if ($2 > m) m = $2; n++}
  END {print s, e, m, n}' "$work/rss.txt")
mib() { awk -v k="$1" 'BEGIN{printf "%.1f MiB", k/1024}'; }
# After the warm-up (the first 10 minutes, or the first third of a shorter run: caches fill,
# pools open): the least-squares slope of RSS over time, and the largest sample of each half of
# the rest, which tell a slow rise from the allocator's swings.
warmup=$(( minutes * 60 / 3 < 600 ? minutes * 60 / 3 : 600 ))
read -r slope half1 half2 < <(awk -v w="$warmup" 'NF == 2 {if (!t0) t0 = $1; if ($1 - t0 >= w) {n++; x[n] = $1 - t0; y[n] = $2}}
  END {for (i = 1; i <= n; i++) {sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i]}
       d = n * sxx - sx * sx; b = d ? (n * sxy - sx * sy) / d : 0
       for (i = 1; i <= n; i++) if (i <= n / 2) {if (y[i] > m1) m1 = y[i]} else if (y[i] > m2) m2 = y[i]
       printf "%.0f %d %d\n", b * 3600, m1, m2}' "$work/rss.txt")
load=$(cat "$work/load.txt")
total=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(d["done"].values()))' "$load")
nerr=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(d["errors"].values()))' "$load")
server_errors=$(grep -c ' ERROR ' "$work/serve.log" || true)
{
  echo "# Soak: $minutes min, mixed load at $rate req/s, release \`baton serve\` on $database"
  echo
  echo "Run $started .. $ended by \`scripts/soak.sh $minutes\` (SOAK_RATE=$rate SOAK_WRITES=${SOAK_WRITES:-1}${SOAK_CONNECTION:+ SOAK_CONNECTION=$database}) on $(nproc) cores shared"
  echo "with other work (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)); binary: $BATON_BIN."
  if [ -n "${SOAK_HEAPTRACK:-}" ]; then
    echo "Under heaptrack (SOAK_HEAPTRACK=$SOAK_HEAPTRACK): the RSS figures include heaptrack's own memory."
  fi
  echo "Load: 4 client threads, per 10 requests 1 password token issue (bcrypt cost 4), 7 validations,"
  if [ "${SOAK_WRITES:-1}" = 0 ]; then
    echo "1 more validation (SOAK_WRITES=0: no project create+delete), 1 project listing."
  else
    echo "1 project create+delete, 1 project listing."
  fi
  echo
  echo "| figure | value |"
  echo "|---|---|"
  echo "| requests | $total |"
  echo "| failed requests (non-2xx or no answer) | $nerr |"
  echo "| ERROR lines in the server log | $server_errors |"
  echo "| RSS at start (before the load) | $(mib "$rss_start") |"
  echo "| RSS at end | $(mib "$rss_end") |"
  echo "| RSS max | $(mib "$rss_max") |"
  echo "| RSS samples (every 10 s) | $samples |"
  echo "| after the first $((warmup / 60)) min: RSS slope (least squares) | $slope KiB per hour |"
  echo "| after the first $((warmup / 60)) min: RSS max, first half / second half | $(mib "$half1") / $(mib "$half2") |"
  echo
  echo "Per kind (done / errors): \`$load\`"
  echo
  echo "RSS samples (KiB), every 10 s:"
  echo
  echo '```'
  awk '{printf "%s ", $2} END {print ""}' "$work/rss.txt" | fold -s -w 100
  echo '```'
} >"$out"
log "wrote $out"
cat "$out"
