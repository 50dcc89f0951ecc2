"""Durability under crashes, and Fernet rotation under load.

* `kill -9` of `baton serve` in the middle of concurrent writes (users, projects, role
  assignments) on SQLite, PostgreSQL and MariaDB: after a restart on the same database every
  write that was acknowledged (201/204) is there, and the database is consistent.
* Killing the database itself (a throwaway PostgreSQL stopped with `pg_ctl -m immediate`, a
  throwaway MariaDB killed with SIGKILL) during writes: Baton answers 503 while it is away (never
  500), recovers without a restart, and every acknowledged write is there.
* `baton manage fernet_rotate` run again and again on the key repository while several clients
  issue and validate tokens: no validation of a token issued in that window fails.

Each scenario prints a `FIGURE` line (see bench/results/durability-*.md); run with `-s` to see
them. The server databases come from BATON_TEST_POSTGRES_URL / BATON_TEST_MYSQL_URL (the
machine's on their standard ports otherwise); the throwaway ones are started here.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable, Optional

import pytest
import requests

from baton_process import Baton
from conftest import require_baton
from interop_util import ADMIN_PASSWORD, issue_token
from keystone_oracle import free_port

WRITERS = 4
LOAD_SECONDS = 3.0
FAST = {"identity": {"password_hash_rounds": 4}}


def figure(**kw) -> None:
    print("FIGURE " + " ".join(f"{k}={v}" for k, v in kw.items()), flush=True)


# ---- databases ---------------------------------------------------------------------------------
def server_db(kind: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the shared PostgreSQL/MariaDB: its URL and a dropper."""
    env, default = (("BATON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432") if kind == "postgres"
                    else ("BATON_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"))
    u = urllib.parse.urlsplit(os.environ.get(env, default))
    host, port, user = u.hostname or "127.0.0.1", u.port, u.username or "root"
    name = "baton_dur_" + uuid.uuid4().hex[:10]
    if kind == "postgres":
        import psycopg2

        def run(sql: str) -> None:
            c = psycopg2.connect(host=host, port=port or 5432, user=user, dbname="postgres")
            c.autocommit = True
            c.cursor().execute(sql)
            c.close()

        run(f"CREATE DATABASE {name}")
        return (f"postgresql://{user}@{host}:{port or 5432}/{name}",
                lambda: run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    import pymysql

    def run_my(sql: str) -> None:
        c = pymysql.connect(host=host, port=port or 3306, user=user, autocommit=True)
        c.cursor().execute(sql)
        c.close()

    run_my(f"CREATE DATABASE {name}")
    return f"mysql+pymysql://{user}@{host}:{port or 3306}/{name}", lambda: run_my(f"DROP DATABASE IF EXISTS {name}")


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (durable settings: fsync on), to be stopped hard."""

    def __init__(self, root: Path) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins or os.geteuid() != 0:
            pytest.skip("a throwaway PostgreSQL needs the postgresql package and root (runuser)")
        self.bin = Path(bins[-1])
        self.dir = root / "pg"
        self.dir.mkdir(parents=True)
        shutil.chown(root, "postgres")
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self._as_pg(str(self.bin / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust")
        self.start()
        self._as_pg(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                    "-c", "CREATE DATABASE keystone")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/keystone"

    def _as_pg(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._as_pg(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log"), "-w", "-o",
                    f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def kill(self) -> None:
        """The database stops at once, as in a crash (no shutdown checkpoint)."""
        self._as_pg(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "stop")

    def close(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.dir),
                        "-m", "immediate", "stop"], capture_output=True)


class ThrowawayMariaDB:
    """A mariadbd of its own on a private port and socket (InnoDB's durable defaults)."""

    def __init__(self, root: Path) -> None:
        if not shutil.which("mariadbd") or not shutil.which("mariadb-install-db"):
            pytest.skip("a throwaway MariaDB needs mariadbd and mariadb-install-db")
        self.dir = root / "mariadb"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={self.dir}/data",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        self.proc: Optional[subprocess.Popen] = None
        self.start()
        subprocess.run(["mariadb", "--no-defaults", f"--socket={self.dir}/sock", "-uroot", "-e",
                        "CREATE DATABASE keystone"], check=True, capture_output=True, timeout=30)
        self.url = f"mysql+pymysql://root@127.0.0.1:{self.port}/keystone"

    def start(self) -> None:
        log = open(self.dir / "log", "ab")
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", f"--datadir={self.dir}/data", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.dir}/sock", f"--pid-file={self.dir}/pid",
             "--skip-name-resolve"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            r = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.dir}/sock", "-uroot", "-e", "SELECT 1"],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError("throwaway mariadbd did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# ---- the load ----------------------------------------------------------------------------------
class Writes:
    """Concurrent writers through the API; remembers what was acknowledged."""

    def __init__(self, auth_url: str, token: str, role_id: str) -> None:
        self.auth_url, self.token, self.role_id = auth_url, token, role_id
        self.lock = threading.Lock()
        self.users: list[str] = []
        self.projects: list[str] = []
        self.grants: list[tuple[str, str]] = []
        self.statuses: dict[str, int] = {}
        self.stop = threading.Event()

    def _count(self, what: str) -> None:
        with self.lock:
            self.statuses[what] = self.statuses.get(what, 0) + 1

    def _req(self, method: str, path: str, body=None) -> Optional[requests.Response]:
        try:
            r = requests.request(method, f"{self.auth_url}/{path}", json=body, timeout=10,
                                 headers={"X-Auth-Token": self.token})
        except requests.RequestException as e:
            self._count(type(e).__name__)
            return None
        self._count(str(r.status_code))
        return r

    def _one_round(self) -> None:
        name = "dur-" + uuid.uuid4().hex[:12]
        r = self._req("POST", "users", {"user": {"name": name, "password": "Dur-Pw-" + name,
                                                 "domain_id": "default"}})
        if r is None or r.status_code != 201:
            return
        uid = r.json()["user"]["id"]
        with self.lock:
            self.users.append(uid)
        r = self._req("POST", "projects", {"project": {"name": name, "domain_id": "default"}})
        if r is None or r.status_code != 201:
            return
        pid = r.json()["project"]["id"]
        with self.lock:
            self.projects.append(pid)
        r = self._req("PUT", f"projects/{pid}/users/{uid}/roles/{self.role_id}")
        if r is not None and r.status_code == 204:
            with self.lock:
                self.grants.append((pid, uid))

    def run(self) -> list[threading.Thread]:
        def loop() -> None:
            while not self.stop.is_set():
                self._one_round()

        threads = [threading.Thread(target=loop, daemon=True) for _ in range(WRITERS)]
        for t in threads:
            t.start()
        return threads

    def finish(self, threads: list[threading.Thread]) -> None:
        self.stop.set()
        for t in threads:
            t.join(30)

    def missing(self, auth_url: str, token: str) -> list[str]:
        """Acknowledged writes the database does not have."""
        lost = []
        s = requests.Session()
        h = {"X-Auth-Token": token}
        for uid in self.users:
            if s.get(f"{auth_url}/users/{uid}", headers=h, timeout=10).status_code != 200:
                lost.append(f"user {uid}")
        for pid in self.projects:
            if s.get(f"{auth_url}/projects/{pid}", headers=h, timeout=10).status_code != 200:
                lost.append(f"project {pid}")
        for pid, uid in self.grants:
            r = s.head(f"{auth_url}/projects/{pid}/users/{uid}/roles/{self.role_id}", headers=h, timeout=10)
            if r.status_code != 204:
                lost.append(f"grant {pid}/{uid}")
        return lost

    @property
    def acknowledged(self) -> int:
        return len(self.users) + len(self.projects) + len(self.grants)


def admin_and_role(b: Baton) -> tuple[str, str]:
    token, _ = issue_token(b.auth_url)
    r = requests.get(f"{b.auth_url}/roles?name=member", headers={"X-Auth-Token": token}, timeout=10)
    assert r.status_code == 200, r.text
    return token, r.json()["roles"][0]["id"]


def started(workdir: Path, connection: Optional[str], extra: Optional[dict] = None) -> Baton:
    require_baton()
    conf = {**FAST, **(extra or {})}
    b = Baton(workdir, connection=connection, extra_conf=conf)
    b.write_config()
    b.db_sync()
    b.fernet_setup()
    b.bootstrap(ADMIN_PASSWORD, public_url=b.auth_url)
    b.start()
    return b


def kill9(b: Baton) -> None:
    assert b.proc is not None
    os.killpg(b.proc.pid, signal.SIGKILL)
    b.proc.wait(10)
    b.proc = None


def check_consistent(kind: str, b: Baton) -> None:
    """The database itself is sound: SQLite's integrity check; on every dialect no assignment
    names a missing actor or target (the schema has no foreign keys there)."""
    if kind == "sqlite":
        c = sqlite3.connect(b.sqlite_path)
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = c.execute("SELECT count(*) FROM assignment a WHERE NOT EXISTS "
                            "(SELECT 1 FROM user u WHERE u.id = a.actor_id) OR NOT EXISTS "
                            "(SELECT 1 FROM project p WHERE p.id = a.target_id)").fetchone()[0]
        c.close()
        assert orphans == 0


# ---- kill -9 of the server ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mariadb"])
def test_kill9_server_loses_no_acknowledged_write(kind, tmp_path):
    require_baton()
    connection, drop = (None, lambda: None) if kind == "sqlite" else server_db(kind)
    b = started(tmp_path / "baton", connection)
    try:
        token, role = admin_and_role(b)
        w = Writes(b.auth_url, token, role)
        kills = 0
        for _ in range(2):
            threads = w.run()
            time.sleep(LOAD_SECONDS)
            kill9(b)  # mid-load: requests are in flight
            kills += 1
            w.finish(threads)
            w.stop.clear()
            b.start()
        # The same token still validates: the keys and the database came back as they were.
        lost = w.missing(b.auth_url, token)
        check_consistent(kind, b)
        figure(test="kill9_server", database=kind, kills=kills, acknowledged=w.acknowledged,
               lost=len(lost), statuses=w.statuses)
        assert w.acknowledged > 0
        assert lost == [], lost
    finally:
        b.stop()
        drop()


# ---- the database killed -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_database_killed_loses_no_acknowledged_write(kind, tmp_path):
    require_baton()
    root = Path(tempfile.mkdtemp(prefix=f"baton-dur-{kind}-"))
    db = ThrowawayPostgres(root) if kind == "postgres" else ThrowawayMariaDB(root)
    b = None
    try:
        b = started(tmp_path / "baton", db.url)
        token, role = admin_and_role(b)
        w = Writes(b.auth_url, token, role)
        threads = w.run()
        time.sleep(LOAD_SECONDS)
        db.kill()
        down = time.monotonic()
        time.sleep(2)  # writes meet the outage
        db.start()  # returns once the database answers again
        back = time.monotonic()
        # Baton recovers on its own, without a restart.
        recovered = None
        while time.monotonic() - back < 60:
            r = requests.get(f"{b.url}/healthcheck", timeout=10)
            if r.status_code == 200:
                recovered = time.monotonic() - back
                break
            time.sleep(0.1)
        time.sleep(1)
        w.finish(threads)
        assert recovered is not None, "Baton did not recover after the database came back"
        lost = w.missing(b.auth_url, token)
        figure(test="database_killed", database=kind, acknowledged=w.acknowledged, lost=len(lost),
               outage_s=f"{back - down:.2f}", healthy_after_db_back_s=f"{recovered:.2f}", statuses=w.statuses)
        assert lost == [], lost
        # While the database was away the API said 503 (or could not be reached), never 500.
        assert not any(s.startswith("5") and s != "503" for s in w.statuses), w.statuses
        assert w.statuses.get("503", 0) > 0, w.statuses
    finally:
        if b is not None:
            b.stop()
        db.close()
        shutil.rmtree(root, ignore_errors=True)


# ---- Fernet rotation under load ----------------------------------------------------------------
ROTATIONS = 12
VALIDATORS = 4


def test_rotation_under_load_fails_no_validation(tmp_path):
    # Enough active keys that no key used in the window is pruned: every failure would be a
    # race between rotation and the server's reload, which is what this looks for.
    b = started(tmp_path / "baton", None, {"fernet_tokens": {"max_active_keys": ROTATIONS + 3}})
    try:
        caller, _ = issue_token(b.auth_url)
        tokens: list[str] = [caller]
        lock = threading.Lock()
        stop = threading.Event()
        counts = {"issued": 0, "validated": 0, "failed": 0}
        failures: list[str] = []

        def client(n: int) -> None:
            s = requests.Session()
            i = 0
            while not stop.is_set():
                i += 1
                if i % 5 == 0:
                    r = s.post(f"{b.auth_url}/auth/tokens", timeout=10, json={"auth": {"identity": {
                        "methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"},
                                                                       "password": ADMIN_PASSWORD}}}}})
                    with lock:
                        if r.status_code == 201:
                            tokens.append(r.headers["X-Subject-Token"])
                            counts["issued"] += 1
                        else:
                            counts["failed"] += 1
                            failures.append(f"issue {r.status_code}")
                    continue
                with lock:
                    subject = tokens[(i * 7 + n) % len(tokens)]
                r = s.get(f"{b.auth_url}/auth/tokens", timeout=10,
                          headers={"X-Auth-Token": caller, "X-Subject-Token": subject})
                with lock:
                    counts["validated"] += 1
                    if r.status_code != 200:
                        counts["failed"] += 1
                        failures.append(f"validate {r.status_code}: {r.text[:200]}")

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(VALIDATORS)]
        for t in threads:
            t.start()
        for _ in range(ROTATIONS):
            time.sleep(0.7)
            b.manage("fernet_rotate", "--force")
        time.sleep(2)  # the last rotation is picked up under load too
        stop.set()
        for t in threads:
            t.join(30)
        figure(test="rotation_under_load", rotations=ROTATIONS, clients=VALIDATORS, **counts)
        assert counts["failed"] == 0, failures[:10]
        assert counts["issued"] > ROTATIONS and counts["validated"] > 100, counts
    finally:
        b.stop()
