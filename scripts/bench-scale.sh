#!/usr/bin/env bash
# Validation, issue and listing as the database grows (issue 18 item 3): Baton beside the real
# Keystone on the same SQLite file and key repository, at 10,000 to 1,000,000 users.
#
#   bash scripts/bench-scale.sh            # about 20 minutes on 2 cores, plus waits for quiet
#
# For each size N of BENCH_USERS (default "10000 100000 1000000"):
#   1. a fresh SQLite database (`baton manage db_sync / fernet_setup / bootstrap`, bcrypt cost 4
#      for new passwords, tokens valid 7200 s) is filled by scripts/bench-scale-fill.py: N users,
#      N/10 projects (chains 5 deep, 4 parents with up to thousands of children, the rest flat),
#      N role assignments (mostly users on projects, some groups, some on the domain, a few
#      inherited), max(2000, N/100) groups with every filler user in one; and the measured user
#      `scale-user` (password `scale-pass`, a bcrypt cost 4 hash), the same at every N: a member
#      of 2,000 groups of its own, 50 of which hold roles on projects (5 inherited on the roots of
#      5-deep chains), 20 direct assignments, scoped to `scale-project` at depth 5;
#   2. `baton serve` is measured, then stopped, and for N in BENCH_KS_USERS (default: all) the
#      real Keystone 30 (gunicorn, 2 workers, its memory cache on; tests/interop/keystone_oracle.py)
#      serves the same files and is measured the same way:
#      a. cached validation: scale-typical's project token (a user in three groups with one role
#         on scale-project) validated again and again (bench/validate.lua, admin token as
#         X-Auth-Token), c=BENCH_CONC (32) for Baton and c=BENCH_KS_CONC (8) for Keystone;
#      b. cold validation: BENCH_TOKENS distinct tokens for scale-typical and scale-project, minted
#         offline with the shared key (crates/baton-token/examples/mint_tokens.rs), each
#         validated once (bench/validate_many.lua), same concurrencies; then the same for
#         scale-user (2,000 groups);
#      c. issue: password logins of scale-typical scoped to scale-project (bench/issue.lua),
#         c=BENCH_ISSUE_CONC (8) on both; the steady rate (slope) is reported;
#      d. listings, BENCH_LIST_REQUESTS sequential requests after 2 warm-ups (p50, max, items):
#         GET /v3/role_assignments?user.id=<measured>&effective (admin token),
#         GET /v3/auth/projects (the measured user's token), GET /v3/users/<measured>/projects
#         (admin token). The items must be the same on both servers; the report names any
#         difference. A listing not answered within 120 s is reported as "timeout".
#   Each wrk phase runs BENCH_DURATION seconds after waiting for a quiet machine; errors are
#   counted and reported, not fatal.
# Writes bench/results/scale-<UTC date-time>.md and .svg (scripts/bench-scale-plot.py, from
# <work dir>/scale.json, which can be re-plotted on its own).
#
# Needs: curl, jq, python3, wrk, the interop venv (scripts/python-env.sh). Knobs: BENCH_USERS,
# BENCH_KS_USERS, BENCH_TOKENS (100000), BENCH_DURATION (20), BENCH_CONC (32), BENCH_KS_CONC (8),
# BENCH_ISSUE_CONC (8), BENCH_LIST_REQUESTS (20), BENCH_THREADS (2), BENCH_QUIET_LOAD (0.7),
# BENCH_QUIET_BUDGET (600), BENCH_WORKDIR, BENCH_SKIP_BUILD=1 (use the binaries already built
# under CARGO_TARGET_DIR or target/).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

SIZES=${BENCH_USERS:-10000 100000 1000000}
KS_SIZES=${BENCH_KS_USERS:-$SIZES}
TOKENS=${BENCH_TOKENS:-100000}
DURATION=${BENCH_DURATION:-20}
CONC=${BENCH_CONC:-32}
KS_CONC=${BENCH_KS_CONC:-8}
ISSUE_CONC=${BENCH_ISSUE_CONC:-8}
LIST_REQUESTS=${BENCH_LIST_REQUESTS:-20}
LIST_TIMEOUT=120
THREADS=${BENCH_THREADS:-2}
QUIET_LOAD=${BENCH_QUIET_LOAD:-0.7}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-600}
PASSWORD=bench-admin-pass
export BENCH_DIR=$root/bench
TARGET=${CARGO_TARGET_DIR:-$root/target}

# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
bench_workdir bench-scale
report=$root/bench/results/scale-$stamp.md
svg=$root/bench/results/scale-$stamp.svg
BENCH_NAME=bench-scale
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

baton_pid=
ks_dir=
cleanup() {
  if [ -n "$baton_pid" ]; then kill "$baton_pid" 2>/dev/null || true; fi
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
if [ ! -x "$BATON" ] || [ ! -x "$MINT" ]; then echo "bench-scale: release binaries missing" >&2; exit 1; fi
# The venv with keystone 30, gunicorn and bcrypt (created when missing; BATON_VENV overrides).
VENV=${BATON_VENV:-$(bash scripts/python-env.sh)}

# A token from POST /v3/auth/tokens (password, project scope, domain Default); the response body
# goes to file. Args: url user password project file.
issue_token() {
  local body
  body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"name":"Default"}}}}}' "$2" "$3" "$4")
  curl -s -m 60 -D "$5.headers" -o "$5" -H 'Content-Type: application/json' -d "$body" "$1/v3/auth/tokens" >/dev/null || true
  awk 'tolower($1) == "x-subject-token:" {print $2}' "$5.headers" | tr -d '\r'
}

# One listing: 2 warm-ups then LIST_REQUESTS timed GETs, one at a time. Prints "count p50_ms
# max_ms", or "timeout" (no answer within LIST_TIMEOUT s), or "error <what>". The items' keys
# (sorted) go to keys_file so that two servers' answers can be compared. Args: url token keys_file.
listing() {
  python3 - "$1" "$2" "$3" "$LIST_REQUESTS" "$LIST_TIMEOUT" <<'PY'
import json, statistics, sys, time, urllib.error, urllib.request
url, token, keys_file, n, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def key(item):
    if "role" not in item:  # a project
        return item["id"]
    actor = item.get("user", item.get("group", {})).get("id")
    scope = item.get("scope", {})
    where = ",".join(f"{k}:{v.get('id', v)}" for k, v in sorted(scope.items()) if k != "OS-INHERIT:inherited_to")
    return f"{actor} {item['role']['id']} {where} inherited_to={scope.get('OS-INHERIT:inherited_to', '-')}"
times, items = [], []
for i in range(2 + n):
    req = urllib.request.Request(url, headers={"X-Auth-Token": token, "Accept": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        print(f"error HTTP-{e.code}")
        sys.exit(0)
    except Exception as e:  # timeout, or gunicorn killing its worker at 120 s
        if time.perf_counter() - t0 >= timeout * 0.9:
            print("timeout")
        else:
            print(f"error {type(e).__name__}")
        sys.exit(0)
    dt = time.perf_counter() - t0
    if i >= 2:
        times.append(dt)
    items = next(v for k, v in body.items() if isinstance(v, list))
with open(keys_file, "w") as f:
    f.write("".join(k + "\n" for k in sorted(key(x) for x in items)))
print(len(items), f"{statistics.median(times) * 1000:.2f}", f"{max(times) * 1000:.2f}")
PY
}

# Results, also written a line each to $work/results.tsv (server measure users value errors p99_us
# requests).
declare -A VAL ERR P99 REQ LCOUNT LP50 LMAX LSTAT
PHASES=() # the wrk phases in the order they ran (for the quiet-machine notes)
record() { # server measure n value errors p99 requests
  VAL[$1,$2,$3]=$4 ERR[$1,$2,$3]=$5 P99[$1,$2,$3]=$6 REQ[$1,$2,$3]=$7
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$work/results.tsv"
}
: > "$work/results.tsv"
LISTS="ra auth user"
declare -A LIST_NAME=([ra]="GET /v3/role_assignments?user.id=<measured>&effective (admin token)"
  [auth]="GET /v3/auth/projects (the measured user's project token)"
  [user]="GET /v3/users/<measured>/projects (admin token)")

# The four measures on one server. Args: server (baton|keystone) n url pids concurrency timeout.
# (R_* are set by run_wrk, bench-lib.sh.)
# shellcheck disable=SC2154
measure() {
  local s=$1 n=$2 url=$3 pids=$4 conc=$5 timeout=$6 l path out rate tok
  PHASES+=("$s-$n-cached" "$s-$n-cold" "$s-$n-coldheavy" "$s-$n-issue")
  export BENCH_AUTH_TOKEN=$auth BENCH_SUBJECT_TOKEN=$typical_token BENCH_THREADS=$THREADS
  wait_quiet "$s-$n-cached"
  run_wrk "$s-$n-cached" "$pids" validate.lua "$conc" "$timeout" "$url"
  record "$s" cached "$n" "$R_rps" "$R_errors" "$R_p99_us" "$R_requests"
  export BENCH_TOKENS_FILE=$d/tokens-typical.txt BENCH_PROGRESS=$d/progress-$s
  wait_quiet "$s-$n-cold"
  run_wrk "$s-$n-cold" "$pids" validate_many.lua "$conc" "$timeout" "$url"
  record "$s" cold "$n" "$R_rps" "$R_errors" "$R_p99_us" "$R_requests"
  export BENCH_TOKENS_FILE=$d/tokens.txt BENCH_PROGRESS=$d/progress-heavy-$s
  wait_quiet "$s-$n-coldheavy"
  run_wrk "$s-$n-coldheavy" "$pids" validate_many.lua "$conc" "$timeout" "$url"
  record "$s" coldheavy "$n" "$R_rps" "$R_errors" "$R_p99_us" "$R_requests"
  export BENCH_USER=scale-typical BENCH_PASSWORD=scale-pass BENCH_PROJECT=scale-project
  wait_quiet "$s-$n-issue"
  run_wrk "$s-$n-issue" "$pids" issue.lua "$ISSUE_CONC" "$timeout" "$url"
  rate=$R_rps
  if [ -n "$R_slope" ] && awk -v x="$R_slope" 'BEGIN{exit !(x > 0)}'; then rate=$R_slope; fi
  record "$s" issue "$n" "$rate" "$R_errors" "$R_p99_us" "$R_requests"
  for l in $LISTS; do
    case $l in
      ra) path="/v3/role_assignments?user.id=$user_id&effective"; tok=$auth;;
      auth) path="/v3/auth/projects"; tok=$scale_token;;
      user) path="/v3/users/$user_id/projects"; tok=$auth;;
    esac
    out=$(listing "$url$path" "$tok" "$d/keys-$s-$l.txt")
    log "$s-$n list $l: $out"
    case $out in
      timeout|error*) LSTAT[$s,$l,$n]=$out;;
      *) read -r "LCOUNT[$s,$l,$n]" "LP50[$s,$l,$n]" "LMAX[$s,$l,$n]" <<< "$out"
         printf '%s\tlist_%s\t%s\t%s\t0\t\t\n' "$s" "$l" "$n" "${LP50[$s,$l,$n]}" >> "$work/results.tsv"
         printf '%s\tcount_%s\t%s\t%s\t0\t\t\n' "$s" "$l" "$n" "${LCOUNT[$s,$l,$n]}" >> "$work/results.tsv";;
    esac
  done
}

for n in $SIZES; do
  d=$work/u$n
  port=$(free_port)
  fill() { log "N=$n: filling"; "$VENV/bin/python" scripts/bench-scale-fill.py "$1/keystone.db" "$n" "$1/counts.json" >&2; }
  BEFORE_SERVE=fill start_sqlite_baton "$d" "$port" <<EOF
[token]
expiration = 7200

[identity]
password_hash_rounds = 4
EOF
  burl=http://127.0.0.1:$port
  auth=$(issue_token "$burl" admin "$PASSWORD" admin "$d/auth.json")
  [ -n "$auth" ] || { echo "bench-scale: no admin token from baton" >&2; exit 1; }
  scale_token=$(issue_token "$burl" scale-user scale-pass scale-project "$d/scale.json")
  [ -n "$scale_token" ] || { cat "$d/scale.json" >&2; echo "bench-scale: no scale-user token from baton" >&2; exit 1; }
  user_id=$(jq -r .token.user.id "$d/scale.json")
  project_id=$(jq -r .token.project.id "$d/scale.json")
  if [ "$user_id" != "$(jq -r .measured_user_id "$d/counts.json")" ] || [ "$project_id" != "$(jq -r .measured_project_id "$d/counts.json")" ]; then
    echo "bench-scale: the token is not for the measured user and project" >&2; exit 1
  fi
  log "N=$n: scale-user's token carries roles $(jq -c '[.token.roles[].name] | sort' "$d/scale.json")"
  typical_token=$(issue_token "$burl" scale-typical scale-pass scale-project "$d/typical.json")
  [ -n "$typical_token" ] || { cat "$d/typical.json" >&2; echo "bench-scale: no scale-typical token from baton" >&2; exit 1; }
  typical_id=$(jq -r .token.user.id "$d/typical.json")
  "$MINT" "$d/fernet-keys" "$user_id" "$project_id" "$TOKENS" "$d/tokens.txt" 7200 2> "$d/mint.log"
  "$MINT" "$d/fernet-keys" "$typical_id" "$project_id" "$TOKENS" "$d/tokens-typical.txt" 7200 2>> "$d/mint.log"

  measure baton "$n" "$burl" "$baton_pid" "$CONC" 30s
  kill "$baton_pid"; wait "$baton_pid" 2>/dev/null || true; baton_pid=

  if [[ " $KS_SIZES " == *" $n "* ]]; then
    ks_dir=$d/ks
    kport=$(free_port)
    "$VENV/bin/python" tests/interop/keystone_oracle.py start --workdir "$ks_dir" --port "$kport" \
      --sqlite "$d/keystone.db" --key-repository "$d/fernet-keys" --cache --workers 2 --timeout 120 \
      --expiration 7200 --password-hash-rounds 4 > "$d/ks-start.json" 2> "$d/ks-start.err" \
      || { cat "$d/ks-start.err" >&2; exit 1; }
    ks_master=$(jq -r .pid "$ks_dir/keystone-oracle.pid")
    kurl=http://127.0.0.1:$kport
    # Warm both workers on the measured token.
    for _ in 1 2 3 4; do curl -s -m 120 -o /dev/null -H "X-Auth-Token: $auth" -H "X-Subject-Token: $typical_token" "$kurl/v3/auth/tokens" || true; done
    measure keystone "$n" "$kurl" "$ks_master" "$KS_CONC" 60s
    "$VENV/bin/python" tests/interop/keystone_oracle.py stop --workdir "$ks_dir" >/dev/null 2>&1 || true
    ks_dir=
  fi
  rm -f "$d/tokens.txt" "$d/tokens-typical.txt"
done

# ---- the figures as JSON (for the plot) ------------------------------------------------------------
jq -n --arg stamp "$stamp" --arg sizes "$SIZES" --rawfile tsv "$work/results.tsv" \
  --slurpfile counts <(for n in $SIZES; do jq --argjson n "$n" '. + {size: $n}' "$work/u$n/counts.json"; done) '
  {stamp: $stamp, sizes: ($sizes | split(" ") | map(select(. != "") | tonumber)), counts: $counts,
   results: [$tsv | split("\n")[] | select(. != "") | split("\t")
             | {server: .[0], measure: .[1], users: (.[2] | tonumber), value: (.[3] | tonumber),
                errors: (.[4] | tonumber), p99_us: (if .[5] == "" then null else (.[5] | tonumber) end),
                requests: (if .[6] == "" then null else (.[6] | tonumber) end)}]}' \
  > "$work/scale.json"
python3 scripts/bench-scale-plot.py "$work/scale.json" "$svg"

# ---- report -------------------------------------------------------------------------------------------
first=${SIZES%% *}
cnt() { jq -r "$2" "$work/u$1/counts.json"; }
num() { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; } # 1234567.8 -> 1,234,568
# A rate cell: rounded, with the error count when there were errors.
rate_cell() { # server measure n
  local v=${VAL[$1,$2,$3]:-}
  [ -n "$v" ] || { echo -; return; }
  v=$(num "$v"); [ "${ERR[$1,$2,$3]}" = 0 ] || v="$v (${ERR[$1,$2,$3]} errors)"
  [ "${REQ[$1,$2,$3]}" != 0 ] || v="**0 (none answered within ${DURATION} s)**"
  echo "$v"
}
p99_cell() { if [ -n "${P99[$1,$2,$3]:-}" ] && [ "${REQ[$1,$2,$3]}" != 0 ]; then ms "${P99[$1,$2,$3]}"; else echo -; fi; }
vs_cell() { if [ -n "${VAL[baton,$1,$first]:-}" ] && [ -n "${VAL[baton,$1,$2]:-}" ] \
               && awk -v b="${VAL[baton,$1,$first]}" 'BEGIN{exit !(b > 0)}'; then echo "$(pct "${VAL[baton,$1,$2]}" "${VAL[baton,$1,$first]}") %"; else echo -; fi; }
list_cells() { # server list n: "p50 | max"
  if [ -n "${LSTAT[$1,$2,$3]:-}" ]; then echo "${LSTAT[$1,$2,$3]} | -"
  elif [ -n "${LP50[$1,$2,$3]:-}" ]; then echo "${LP50[$1,$2,$3]} ms | ${LMAX[$1,$2,$3]} ms"
  else echo "- | -"; fi
}
mismatches=
{
  echo "# Validation, issue and listing as the database grows ($stamp)"
  echo
  echo "\`bash scripts/bench-scale.sh\` (BENCH_USERS=\"$SIZES\", BENCH_KS_USERS=\"$KS_SIZES\", $(num "$TOKENS") distinct tokens for cold validation, wrk -t$THREADS for ${DURATION} s a phase, validation at c=$CONC for Baton and c=$KS_CONC for Keystone 30, issue at c=$ISSUE_CONC on both, listings $LIST_REQUESTS sequential requests after 2 warm-ups), SQLite, $(nproc) cores, $(git -C "$root" describe --always --dirty)."
  echo "Keystone 30 runs under gunicorn (2 workers, its memory cache on) on the same database file and key repository, after Baton is stopped. Passwords are bcrypt at cost 4 (the measured user's hash and new ones): logins here measure the rest of the issue path, not bcrypt. Work directory: $work."
  echo
  echo "![Baton and Keystone as the database grows](scale-$stamp.svg)"
  echo
  echo "## The databases (scripts/bench-scale-fill.py, seed 18)"
  echo
  echo "Validation and issue are measured with \`scale-typical\` (a member of three filler groups, 'member' on \`scale-project\`); the listings and one more cold validation with \`scale-user\`. Both are the same at every size. The measured user \`scale-user\` is the same at every size: a member of 2,000 groups of its own, 50 of which hold 'member' on projects (5 inherited on the roots of 5-deep chains), 20 direct assignments, its token scoped to \`scale-project\` at depth 5 (direct 'member' plus inherited 'member' from its chain's root). Filler group assignments never name its groups."
  echo
  echo "| size | users | projects | max depth | most children of one project | assignments (inherited) | groups | memberships | fill time |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for n in $SIZES; do
    echo "| $(num "$n") | $(num "$(cnt "$n" .users)") | $(num "$(cnt "$n" .projects)") | $(cnt "$n" .max_depth) | $(num "$(cnt "$n" .max_children)") | $(num "$(cnt "$n" .assignments)") ($(num "$(cnt "$n" .inherited_assignments)")) | $(num "$(cnt "$n" .groups)") | $(num "$(cnt "$n" .memberships)") | $(cnt "$n" .fill_seconds) s |"
  done
  for m in cached cold coldheavy issue; do
    case $m in
      cached) echo; echo "## Cached validation (scale-typical's project token again and again)"; unit="validations/s";;
      cold) echo; echo "## Cold validation (scale-typical: $(num "$TOKENS") distinct tokens, each new to the server)"; unit="validations/s";;
      coldheavy) echo; echo "## Cold validation of a user in 2,000 groups (scale-user: $(num "$TOKENS") distinct tokens, each new to the server)"; unit="validations/s";;
      issue) echo; echo "## Issue (password login of scale-typical scoped to scale-project, steady rate)"; unit="tokens/s";;
    esac
    echo
    echo "| users | Baton $unit | p99 | vs smallest | Keystone 30 $unit | p99 |"
    echo "|---:|---:|---:|---:|---:|---:|"
    for n in $SIZES; do
      echo "| $(num "$n") | $(rate_cell baton $m "$n") | $(p99_cell baton $m "$n") | $(vs_cell $m "$n") | $(rate_cell keystone $m "$n") | $(p99_cell keystone $m "$n") |"
    done
  done
  for l in $LISTS; do
    echo
    echo "## Listing: \`${LIST_NAME[$l]}\`"
    echo
    echo "| users | Baton p50 | max | items | speed vs smallest (1/p50) | Keystone 30 p50 | max | items |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    for n in $SIZES; do
      bi=${LCOUNT[baton,$l,$n]:--} ki=${LCOUNT[keystone,$l,$n]:--} vs=-
      if [ -n "${LP50[baton,$l,$first]:-}" ] && [ -n "${LP50[baton,$l,$n]:-}" ]; then vs="$(pct "${LP50[baton,$l,$first]}" "${LP50[baton,$l,$n]}") %"; fi
      if [ "$bi" != - ] && [ "$ki" != - ] && [ "$bi" != "$ki" ]; then
        bi="**$bi**" ki="**$ki**"
      fi
      if [ -f "$work/u$n/keys-baton-$l.txt" ] && [ -f "$work/u$n/keys-keystone-$l.txt" ] \
         && ! cmp -s "$work/u$n/keys-baton-$l.txt" "$work/u$n/keys-keystone-$l.txt"; then
        mismatches+="- $(num "$n") users, \`${LIST_NAME[$l]}\`: Baton ${LCOUNT[baton,$l,$n]} items, Keystone ${LCOUNT[keystone,$l,$n]}; only in Baton: $(comm -23 "$work/u$n/keys-baton-$l.txt" "$work/u$n/keys-keystone-$l.txt" | wc -l), only in Keystone: $(comm -13 "$work/u$n/keys-baton-$l.txt" "$work/u$n/keys-keystone-$l.txt" | wc -l) (keys in $work/u$n/keys-*-$l.txt)"$'\n'
      fi
      echo "| $(num "$n") | $(list_cells baton "$l" "$n") | $bi | $vs | $(list_cells keystone "$l" "$n") | $ki |"
    done
  done
  echo
  if [ -n "$mismatches" ]; then
    echo "**Baton and Keystone returned different items:**"
    echo
    printf '%s' "$mismatches"
  else
    echo "Every listing answered by both servers returned the same items (compared by id, role and scope)."
  fi
  echo
  echo "Quiet-machine checks: $(for k in "${PHASES[@]}"; do printf '%s: %s; ' "$k" "$(quiet_cell "$k")"; done)"
} > "$report"
cat "$report"
log "report: $report, plot: $svg, figures: $work/scale.json"
