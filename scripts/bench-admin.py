"""Role-assignment listing at scale: Baton vs the real Keystone on the same data.

    bash scripts/python-env.sh                 # once: the venv with keystone 30 + openstackclient
    cargo build --release -p baton-cli
    "$(bash scripts/python-env.sh)/bin/python" scripts/bench-admin.py [--users 1000] [--projects 100]
        [--assignments 5000] [--runs 5] [--requests 30]

What it does, all on 127.0.0.1:
  1. `keystone-manage db_sync / fernet_setup / bootstrap` makes one SQLite database; then
     --users users (no password: creating them through the API would only measure bcrypt),
     --projects projects and --assignments distinct user-on-project role assignments (roles
     member/reader/service/manager) are inserted with SQL, so both servers read identical rows.
  2. The database and keys are copied; Keystone (gunicorn, 2 workers, dogpile memory cache on)
     serves one copy and Baton (target/release/baton) the other.
  3. For each server: `openstack role assignment list --names` wall time (median and min of
     --runs runs, a warm-up run first), and the latency of
     `GET /v3/role_assignments?include_names` (--requests sequential requests after a warm-up:
     p50/p90/max), with the row count checked equal on both.
  4. Prints a Markdown table and writes it to bench/results/admin-<UTC time>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import requests  # noqa: E402

from baton_process import Baton  # noqa: E402
from interop_util import ADMIN_PASSWORD, issue_token  # noqa: E402
from keystone_oracle import DEFAULT_VENV, KeystoneOracle, free_port  # noqa: E402


def populate(db: Path, users: int, projects: int, assignments: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    con = sqlite3.connect(db)
    roles = dict(con.execute("SELECT name, id FROM role WHERE domain_id = '<<null>>'").fetchall())
    role_ids = [roles[n] for n in ("member", "reader", "service", "manager") if n in roles]
    now = dt.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    user_ids = [uuid.uuid4().hex for _ in range(users)]
    project_ids = [uuid.uuid4().hex for _ in range(projects)]
    con.executemany(
        "INSERT INTO user (id, extra, enabled, default_project_id, created_at, domain_id) "
        "VALUES (?, '{}', 1, NULL, ?, 'default')", [(u, now) for u in user_ids])
    con.executemany(
        "INSERT INTO local_user (user_id, domain_id, name, failed_auth_count) VALUES (?, 'default', ?, 0)",
        [(u, f"bench-user-{i:05d}") for i, u in enumerate(user_ids)])
    con.executemany(
        "INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id, is_domain) "
        "VALUES (?, ?, '{}', '', 1, 'default', 'default', 0)",
        [(p, f"bench-project-{i:04d}") for i, p in enumerate(project_ids)])
    seen: set[tuple[str, str, str]] = set()
    while len(seen) < assignments:
        seen.add((rnd.choice(user_ids), rnd.choice(project_ids), rnd.choice(role_ids)))
    con.executemany(
        "INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES ('UserProject', ?, ?, ?, 0)",
        sorted(seen))
    con.commit()
    con.close()


def osc_env(auth_url: str, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({
        "HOME": str(home), "OS_AUTH_URL": auth_url, "OS_IDENTITY_API_VERSION": "3",
        "OS_AUTH_TYPE": "password", "OS_USERNAME": "admin", "OS_PASSWORD": ADMIN_PASSWORD,
        "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "PYTHONWARNINGS": "ignore",
    })
    return env


def time_osc(auth_url: str, home: Path, runs: int) -> tuple[list[float], int]:
    exe = DEFAULT_VENV / "bin" / "openstack"
    cmd = [str(exe), "role", "assignment", "list", "--names", "-f", "value", "-c", "Role"]
    times = []
    rows = 0
    for i in range(runs + 1):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=osc_env(auth_url, home), capture_output=True, text=True, timeout=600,
                           stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"openstack failed against {auth_url}: {r.stderr[-2000:]}")
        rows = len(r.stdout.splitlines())
        if i > 0:  # the first run warms caches on both sides
            times.append(elapsed)
    return times, rows


def time_api(auth_url: str, requests_n: int) -> tuple[list[float], int]:
    token, _ = issue_token(auth_url)
    s = requests.Session()
    url = auth_url + "/role_assignments?include_names"
    r = s.get(url, headers={"X-Auth-Token": token}, timeout=600)
    r.raise_for_status()
    count = len(r.json()["role_assignments"])
    times = []
    for _ in range(requests_n):
        t0 = time.perf_counter()
        r = s.get(url, headers={"X-Auth-Token": token}, timeout=600)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
    return times, count


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--projects", type=int, default=100)
    ap.add_argument("--assignments", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--baton-bin", default=str(ROOT / "target" / "release" / "baton"))
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="baton-bench-admin-"))
    print(f"work directory: {work}", flush=True)
    ks = KeystoneOracle(work / "keystone", free_port(), cache=True, workers=2, password_hash_rounds=4)
    ks.workdir.mkdir(parents=True)
    ks.write_config()
    ks.db_sync()
    ks.fernet_setup()
    ks.bootstrap(ADMIN_PASSWORD, public_url=ks.auth_url)
    populate(ks.sqlite_path, a.users, a.projects, a.assignments)

    bt_dir = work / "baton"
    bt_dir.mkdir()
    shutil.copyfile(ks.sqlite_path, bt_dir / "baton.db")
    shutil.copytree(ks.key_repository, bt_dir / "fernet-keys")
    os.chmod(bt_dir / "fernet-keys", 0o700)
    bt = Baton(bt_dir, binary=a.baton_bin)
    con = sqlite3.connect(bt.sqlite_path)
    con.execute("UPDATE endpoint SET url = ? WHERE url = ?", (bt.auth_url, ks.auth_url))
    con.commit()
    con.close()

    results = {}
    for name, server in (("Keystone 30.0.0", ks), ("Baton", bt)):
        server.start()
        try:
            osc_times, osc_rows = time_osc(server.auth_url, work, a.runs)
            api_times, api_rows = time_api(server.auth_url, a.requests)
        finally:
            server.stop()
        results[name] = (osc_times, osc_rows, api_times, api_rows)
        print(f"{name}: done", flush=True)

    rows = {r[1] for r in results.values()} | {r[3] for r in results.values()}
    if len(rows) != 1:
        print(f"WARNING: row counts differ between servers: {rows}")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    load = open("/proc/loadavg").read().split()[0]
    out = [
        f"# Role assignments at scale — {now}",
        "",
        f"Data: {a.users} users, {a.projects} projects, {a.assignments} assignments (+ bootstrap's), "
        f"SQLite, identical database file for both. Machine: {os.cpu_count()} cores, 1-min load "
        f"{load} at the end. Command: `python scripts/bench-admin.py --runs {a.runs} --requests {a.requests}`.",
        "",
        "| server | rows | `openstack role assignment list --names` median (min) | "
        "`GET /v3/role_assignments?include_names` p50 / p90 / max |",
        "|---|---|---|---|",
    ]
    for name, (ot, orows, at, arows) in results.items():
        out.append(
            f"| {name} | {arows} | {statistics.median(ot):.2f} s ({min(ot):.2f} s) | "
            f"{pct(at, .5) * 1000:.1f} / {pct(at, .9) * 1000:.1f} / {max(at) * 1000:.1f} ms |")
    report = "\n".join(out) + "\n"
    print(report)
    dest = ROOT / "bench" / "results" / f"admin-{now}.md"
    dest.write_text(report)
    print(f"written to {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
