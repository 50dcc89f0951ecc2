"""A fleet of real components on loopback: N `baton serve` nodes on one database, HAProxy in
front of them, and a 3-node MariaDB Galera cluster (issue 13, "Several nodes").

Everything here is a real program from Debian's packages (haproxy, mariadb-server, galera-4,
rsync), installed with apt-get when missing, the way scripts/services.sh does. Every component
lives in a temporary directory and is torn down by its `stop`, which the tests call in `finally`
blocks / fixture teardown even when a test fails.

Used by tests/interop/test_fleet.py and scripts/bench-fleet.sh (through `python3 fleet.py ...`).
"""

from __future__ import annotations

import base64
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable, Optional

import requests

from baton_process import Baton
from interop_util import ADMIN_PASSWORD
from keystone_oracle import OracleError, free_port, tail

# How the nodes share their Fernet keys. "filesystem": one key_repository directory for the whole
# fleet (what operators do with a shared volume or rsync). Switch to "database" once
# `[fernet_tokens] key_distribution = database` is on main: the nodes then read the keys from the
# database and no directory is shared.
KEY_DISTRIBUTION = "database"

# bcrypt work factor of the fleet's passwords: the default (12) costs ~0.25 s of a core per login,
# which would make the load tests measure bcrypt on 2 cores rather than the fleet.
PASSWORD_HASH_ROUNDS = 4

# What HAProxy asks each node to decide whether it may take requests: 503 while its database
# does not answer (oslo.middleware's shape).
HEALTH_CHECK_PATH = "/healthcheck"

GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"

_apt_updated = False


# ---- Debian packages ---------------------------------------------------------------------------
def apt_install(packages: dict[str, str]) -> Optional[str]:
    """Installs the Debian packages whose file is missing ({package: file}); None when everything
    is there afterwards, else why not (the tests skip with it)."""
    global _apt_updated
    missing = [pkg for pkg, path in packages.items() if not Path(path).exists()]
    if not missing:
        return None
    if shutil.which("apt-get") is None:
        return f"{', '.join(missing)} missing and no apt-get to install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not _apt_updated:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True,
                           timeout=300, stdin=subprocess.DEVNULL)
            _apt_updated = True
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=True,
                       capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        out = getattr(e, "stderr", b"") or b""
        return f"could not install {', '.join(missing)} with apt-get: {e} {out.decode(errors='replace')[-500:]}"
    still = [pkg for pkg, path in packages.items() if not Path(path).exists()]
    return f"{', '.join(still)} still missing after apt-get install" if still else None


def haproxy_missing_reason() -> Optional[str]:
    return apt_install({"haproxy": "/usr/sbin/haproxy"})


def galera_missing_reason() -> Optional[str]:
    return apt_install({"mariadb-server": "/usr/sbin/mariadbd", "galera-4": GALERA_PROVIDER,
                        "rsync": "/usr/bin/rsync"})


# ---- processes ---------------------------------------------------------------------------------
def wait_port(port: int, deadline_s: float, proc: Optional[subprocess.Popen] = None, what: str = "server") -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise OracleError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise OracleError(f"{what} did not listen on 127.0.0.1:{port} within {deadline_s}s")


def kill9(proc: Optional[subprocess.Popen]) -> None:
    """SIGKILL a process group started with start_new_session: what a crash or an OOM kill does."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def terminate(proc: Optional[subprocess.Popen], timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        kill9(proc)


# ---- databases ---------------------------------------------------------------------------------
def postgres_server_url() -> str:
    """The PostgreSQL the other tests use (scripts/services.sh), else the machine's on 5432."""
    return os.environ.get("BATON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


def create_postgres_database() -> tuple[str, Callable[[], None]]:
    """A fresh database on the test PostgreSQL: its URL and a dropper."""
    import psycopg2

    u = urllib.parse.urlsplit(postgres_server_url())
    host, port, user = u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres"
    name = "baton_fleet_" + uuid.uuid4().hex[:10]

    def run(sql: str) -> None:
        c = psycopg2.connect(host=host, port=port, user=user, password=u.password, dbname="postgres")
        c.autocommit = True
        c.cursor().execute(sql)
        c.close()

    run(f"CREATE DATABASE {name}")
    cred = user + (f":{u.password}" if u.password else "")
    return f"postgresql://{cred}@{host}:{port}/{name}", lambda: run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class GaleraNode:
    def __init__(self, cluster: "Galera", index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.dir = cluster.workdir / f"db{index + 1}"
        self.port = free_port()
        self.gcomm_port = free_port()
        self.ist_port = free_port()
        self.sst_port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def name(self) -> str:
        return f"db{self.index + 1}"

    @property
    def socket(self) -> Path:
        return self.dir / "sock"

    @property
    def cnf(self) -> Path:
        return self.dir / "my.cnf"

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "data").mkdir(exist_ok=True)
        for d in (self.dir, self.dir / "data"):
            shutil.chown(d, "mysql", "mysql")
        peers = ",".join(f"127.0.0.1:{n.gcomm_port}" for n in self.cluster.nodes)
        # Short failure detection: a killed node leaves the primary component within ~3 s instead
        # of Galera's default of ~15 s, during which commits on the survivors wait.
        provider_options = ";".join([
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port}",
            f"ist.recv_addr=127.0.0.1:{self.ist_port}",
            "gcache.size=64M",
            "evs.keepalive_period=PT0.5S",
            "evs.suspect_timeout=PT2S",
            "evs.inactive_check_period=PT0.5S",
            "evs.inactive_timeout=PT3S",
            "evs.install_timeout=PT3S",
            "pc.weight=1",
        ])
        self.cnf.write_text(f"""# written by tests/interop/fleet.py
[mysqld]
user = mysql
datadir = {self.dir / 'data'}
socket = {self.socket}
pid-file = {self.dir / 'pid'}
log-error = {self.dir / 'error.log'}
port = {self.port}
bind-address = 127.0.0.1
skip-name-resolve
innodb_buffer_pool_size = 64M
innodb_log_file_size = 48M
innodb_flush_log_at_trx_commit = 0
max_connections = 400
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = {GALERA_PROVIDER}
wsrep_cluster_name = baton_fleet
wsrep_cluster_address = gcomm://{peers}
wsrep_node_name = {self.name}
wsrep_node_address = 127.0.0.1:{self.gcomm_port}
wsrep_node_incoming_address = 127.0.0.1:{self.port}
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:{self.sst_port}
wsrep_provider_options = "{provider_options}"
wsrep_slave_threads = 2
""")

    def install(self) -> None:
        r = subprocess.run(["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={self.dir / 'data'}",
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise OracleError(f"mariadb-install-db for {self.name} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")

    def start(self, *, new_cluster: bool = False, timeout: float = 90) -> None:
        self.write_config()
        args = ["mariadbd", f"--defaults-file={self.cnf}"]
        if new_cluster:
            args.append("--wsrep-new-cluster")
        log = open(self.dir / "stdout.log", "ab")
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=self.dir)
        finally:
            log.close()
        try:
            wait_port(self.port, timeout, self.proc, what=f"MariaDB {self.name}")
            self.wait_synced(timeout)
        except OracleError as e:
            raise OracleError(f"{e}\n----- {self.name} error.log -----\n{tail(self.dir / 'error.log', 40)}")

    def query(self, sql: str, database: Optional[str] = None) -> list[tuple]:
        import pymysql

        c = pymysql.connect(host="127.0.0.1", port=self.port, user="root", database=database, autocommit=True,
                            connect_timeout=3, read_timeout=10, write_timeout=10)
        try:
            with c.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            c.close()

    def status(self, name: str) -> Optional[str]:
        rows = self.query(f"SHOW GLOBAL STATUS LIKE '{name}'")
        return rows[0][1] if rows else None

    def wait_synced(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise OracleError(f"MariaDB {self.name} exited with {self.proc.returncode}")
            try:
                last = (self.status("wsrep_local_state_comment"), self.status("wsrep_ready"))
                if last == ("Synced", "ON"):
                    return
            except Exception as e:  # noqa: BLE001 - the server is still starting
                last = repr(e)
            time.sleep(0.2)
        raise OracleError(f"MariaDB {self.name} not Synced within {timeout}s (last: {last})")

    def kill(self) -> None:
        kill9(self.proc)
        self.proc = None

    def stop(self) -> None:
        terminate(self.proc, timeout=20)
        self.proc = None


class Galera:
    """A 3-node MariaDB Galera cluster on loopback, in a new directory under /tmp: node 1
    bootstraps the cluster (--wsrep-new-cluster), nodes 2 and 3 join it and receive its state by
    rsync SST.

    The servers run as the `mysql` user (root starts them, they drop to it): the joiner's rsync
    daemon, started by a server running as root, would drop to `nobody` and could not write the
    data directory. Hence also a directory of its own outside pytest's (which only root may
    enter)."""

    def __init__(self, size: int = 3) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="baton-galera.")).resolve()
        os.chmod(self.workdir, 0o755)
        shutil.chown(self.workdir, "mysql", "mysql")
        self.nodes: list[GaleraNode] = []
        for i in range(size):
            self.nodes.append(GaleraNode(self, i))

    def start(self) -> "Galera":
        try:
            first = self.nodes[0]
            first.write_config()
            first.install()
            first.start(new_cluster=True)
            for n in self.nodes[1:]:
                # An empty data directory: the joiner gets everything from the donor by SST.
                n.start()
            size = first.status("wsrep_cluster_size")
            if size != str(len(self.nodes)):
                raise OracleError(f"Galera cluster size is {size}, expected {len(self.nodes)}")
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> list[GaleraNode]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def create_database(self, name: str = "keystone") -> None:
        self.nodes[0].query(f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4")

    def logs_tail(self, lines: int = 20) -> str:
        return "\n".join(f"----- {n.name} error.log -----\n{tail(n.dir / 'error.log', lines)}" for n in self.nodes)

    def stop(self) -> None:
        # The joiners first, so the last one standing has nothing left to wait for.
        for n in reversed(self.nodes):
            try:
                n.stop()
            except Exception:  # noqa: BLE001 - teardown goes on
                n.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---- HAProxy -----------------------------------------------------------------------------------
class HAProxy:
    """HAProxy in front of the Baton nodes (HTTP, health-checked, connection retries redispatched to
    another node) and, optionally, in front of Galera (TCP, one writer with the others as backups,
    as OpenStack deployments run it so that writes never conflict between database nodes)."""

    def __init__(self, workdir: Path, baton_ports: list[int], galera_ports: Optional[list[int]] = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.baton_ports = list(baton_ports)
        self.galera_ports = list(galera_ports or [])
        self.port = free_port()
        self.mysql_port = free_port() if self.galera_ports else None
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.url + "/v3"

    @property
    def cfg(self) -> Path:
        return self.workdir / "haproxy.cfg"

    @property
    def stats_socket(self) -> Path:
        return self.workdir / "stats.sock"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            "# written by tests/interop/fleet.py",
            "global",
            "    maxconn 4096",
            f"    stats socket {self.stats_socket} mode 600 level admin",
            "defaults",
            "    mode http",
            "    timeout connect 1s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    timeout check 1s",
            # A connection refused or timed out is tried again, on another node (redispatch);
            # a request a node already took is not replayed here: it may have been a write.
            "    retries 3",
            "    option redispatch 1",
            "frontend identity",
            f"    bind 127.0.0.1:{self.port}",
            "    default_backend baton",
            "backend baton",
            "    balance roundrobin",
            f"    option httpchk GET {HEALTH_CHECK_PATH}",
            "    http-check expect status 200",
            "    default-server inter 250ms fastinter 100ms downinter 250ms fall 2 rise 2",
        ]
        lines += [f"    server baton{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(self.baton_ports)]
        if self.galera_ports:
            lines += [
                "listen galera",
                f"    bind 127.0.0.1:{self.mysql_port}",
                "    mode tcp",
                "    option tcpka",
                "    timeout client 10m",
                "    timeout server 10m",
                "    default-server inter 250ms fastinter 100ms downinter 250ms fall 2 rise 2 on-marked-down shutdown-sessions",
            ]
            lines += [f"    server db{i + 1} 127.0.0.1:{p} check{' backup' if i else ''}"
                      for i, p in enumerate(self.galera_ports)]
        self.cfg.write_text("\n".join(lines) + "\n")

    def start(self) -> "HAProxy":
        self.write_config()
        r = subprocess.run(["haproxy", "-c", "-f", str(self.cfg)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise OracleError(f"haproxy -c refused {self.cfg}:\n{r.stdout}{r.stderr}")
        log = open(self.workdir / "haproxy.log", "ab")
        try:
            # -db: stay in the foreground, so this process is the one to stop.
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        wait_port(self.port, 15, self.proc, what="haproxy")
        return self

    def servers_up(self, backend: str = "baton") -> dict[str, str]:
        """{server: status} as HAProxy's health checks see them now."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(3)
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        out = {}
        for line in data.decode().splitlines()[1:]:
            f = line.split(",")
            if len(f) > 17 and f[0] == backend and f[1] not in ("FRONTEND", "BACKEND"):
                out[f[1]] = f[17]
        return out

    def wait_status(self, server: str, status: str, timeout: float = 15, backend: str = "baton") -> None:
        end = time.monotonic() + timeout
        seen = None
        while time.monotonic() < end:
            seen = self.servers_up(backend).get(server)
            if seen is not None and seen.startswith(status):
                return
            time.sleep(0.05)
        raise OracleError(f"haproxy: {backend}/{server} is {seen}, not {status}, after {timeout}s")

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None


# ---- the Baton fleet ---------------------------------------------------------------------------
class Fleet:
    """N `baton serve` nodes, each with its own port and config file, on one `[database]
    connection`, behind one HAProxy. Node 1 initializes the database (db_sync, fernet_setup,
    bootstrap); the others only serve."""

    def __init__(self, workdir: Path, connection: Optional[str] = None, size: int = 3, *,
                 galera: Optional[Galera] = None, extra_conf: Optional[dict] = None,
                 key_distribution: str = KEY_DISTRIBUTION) -> None:
        """`connection`: the shared database; with `galera` instead, the nodes reach the cluster
        through HAProxy's TCP frontend (database `keystone`)."""
        self.workdir = Path(workdir).resolve()
        ports = [free_port() for _ in range(size)]
        self.haproxy = HAProxy(self.workdir / "haproxy", ports, [n.port for n in galera.nodes] if galera else None)
        if connection is None:
            assert galera is not None, "a connection or a Galera cluster"
            connection = f"mysql+pymysql://root@127.0.0.1:{self.haproxy.mysql_port}/keystone"
        self.connection = connection
        conf: dict = {"identity": {"password_hash_rounds": PASSWORD_HASH_ROUNDS}}
        shared_dir = self.workdir / "fernet-keys"
        if key_distribution == "database":
            # The keys live in the database, sealed with a key-encryption key copied to every
            # node once; each node starts with an empty key_repository of its own.
            self.workdir.mkdir(parents=True, exist_ok=True)
            kek = self.workdir / "kek"
            kek.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
            kek.chmod(0o600)
            conf["fernet_tokens"] = {"key_distribution": "database", "key_encryption_key_file": str(kek)}
        for sec, opts in (extra_conf or {}).items():
            conf.setdefault(sec, {}).update(opts)
        self.nodes = [Baton(self.workdir / f"baton{i + 1}", port, connection=connection,
                            key_repository=(self.workdir / f"baton{i + 1}" / "fernet-keys"
                                            if key_distribution == "database" else shared_dir),
                            public_endpoint=self.haproxy.url, extra_conf=conf)
                      for i, port in enumerate(ports)]

    @property
    def url(self) -> str:
        return self.haproxy.url

    @property
    def auth_url(self) -> str:
        return self.haproxy.auth_url

    def start(self) -> "Fleet":
        try:
            # HAProxy first: with Galera the nodes reach the database through it.
            self.haproxy.start()
            first = self.nodes[0]
            first.write_config()
            first.db_sync()
            first.fernet_setup()
            first.bootstrap(ADMIN_PASSWORD, public_url=self.auth_url)
            for n in self.nodes:
                n.start()
            for i in range(len(self.nodes)):
                self.haproxy.wait_status(f"baton{i + 1}", "UP")
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, i: int) -> None:
        """kill -9 node i (0-based)."""
        kill9(self.nodes[i].proc)
        self.nodes[i].proc = None

    def restart(self, i: int) -> None:
        self.nodes[i].stop()
        self.nodes[i].start()

    def logs_tail(self, lines: int = 20) -> str:
        return "\n".join(n.logs_tail(lines) for n in self.nodes) + \
            f"\n----- haproxy.log -----\n{tail(self.haproxy.workdir / 'haproxy.log', lines)}"

    def stop(self) -> None:
        self.haproxy.stop()
        for n in self.nodes:
            try:
                n.stop()
            except Exception:  # noqa: BLE001 - teardown goes on
                kill9(n.proc)


# ---- small REST helpers ------------------------------------------------------------------------
def password_auth(username: str, password: str, project: Optional[str] = "admin") -> dict:
    auth: dict = {"identity": {"methods": ["password"], "password": {"user": {
        "name": username, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


def issue(url: str, username: str = "admin", password: str = ADMIN_PASSWORD, project: Optional[str] = "admin",
          session: Optional[requests.Session] = None) -> str:
    r = (session or requests).post(f"{url}/v3/auth/tokens?nocatalog", json=password_auth(username, password, project),
                                   timeout=30)
    assert r.status_code == 201, f"POST {url}/v3/auth/tokens -> {r.status_code}: {r.text[:300]}"
    return r.headers["X-Subject-Token"]


def api(url: str, method: str, path: str, token: str, body=None, session: Optional[requests.Session] = None,
        headers: Optional[dict] = None) -> requests.Response:
    return (session or requests).request(method, f"{url}/v3/{path}", json=body, timeout=30,
                                         headers={"X-Auth-Token": token, **(headers or {})})


def lookup_id(url: str, token: str, collection: str, name: str) -> str:
    r = api(url, "GET", f"{collection}?name={name}", token)
    assert r.status_code == 200, r.text
    return r.json()[collection][0]["id"]


# ---- mixed load from keystoneauth1 sessions ----------------------------------------------------
class MixedLoad:
    """Worker threads, each with its own keystoneauth1 session (password login through HAProxy)
    and an adapter that retries as operators configure clients: connection errors and 502/503
    three times. Each worker cycles through: issue a token, validate it, create a project, grant
    a role on it. Every write the fleet acknowledged (201/204) is recorded, and every answer a
    retrying client would see as a failure."""

    KINDS = ("issue", "validate", "create_project", "grant")

    def __init__(self, auth_url: str, workers: int = 4, password: str = ADMIN_PASSWORD) -> None:
        import threading

        self.auth_url = auth_url
        self.workers = workers
        self.password = password
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.failures: list[tuple[float, str, str]] = []
        self.counts = {k: 0 for k in self.KINDS}
        self.projects: list[str] = []  # acknowledged (201, or found after a replayed create)
        self.replayed = 0  # creates whose first try committed but whose answer was lost
        self.grants: list[tuple[str, str, str]] = []  # (project, user, role), acknowledged (204)
        self.threads: list = []
        self.t0 = time.monotonic()
        token = issue(auth_url[: -len("/v3")])
        base = auth_url[: -len("/v3")]
        self.user_id = requests.get(f"{auth_url}/auth/tokens", timeout=30, headers={
            "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["user"]["id"]
        self.role_id = lookup_id(base, token, "roles", "admin")

    def adapter(self):
        from keystoneauth1 import adapter, session
        from keystoneauth1.identity import v3

        auth = v3.Password(auth_url=self.auth_url, username="admin", password=self.password,
                           user_domain_id="default", project_name="admin", project_domain_id="default")
        sess = session.Session(auth=auth, connect_retries=3)
        return adapter.Adapter(sess, endpoint_override=self.auth_url, connect_retries=3, status_code_retries=3,
                               retriable_status_codes=[502, 503], raise_exc=False)

    def _fail(self, kind: str, what: str) -> None:
        with self.lock:
            self.failures.append((round(time.monotonic() - self.t0, 2), kind, what[:300]))

    def _worker(self, w: int) -> None:
        try:
            a = self.adapter()
        except Exception as e:  # noqa: BLE001 - reported as a failure
            self._fail("session", repr(e))
            return
        i = 0
        token = None
        project = None
        while not self.stop_event.is_set():
            kind = self.KINDS[i % len(self.KINDS)]
            i += 1
            try:
                if kind == "issue":
                    r = a.post("/auth/tokens?nocatalog", json=password_auth("admin", self.password),
                               authenticated=False)
                    ok = r.status_code == 201
                    if ok:
                        token = r.headers["X-Subject-Token"]
                elif kind == "validate":
                    if token is None:
                        continue
                    r = a.get("/auth/tokens?nocatalog", headers={"X-Subject-Token": token})
                    ok = r.status_code == 200
                elif kind == "create_project":
                    name = f"fleet-{w}-{uuid.uuid4().hex[:12]}"
                    r = a.post("/projects", json={"project": {"name": name, "domain_id": "default"}})
                    ok = r.status_code == 201
                    if ok:
                        project = r.json()["project"]["id"]
                    elif r.status_code == 409:
                        # The name is new to this attempt, so a conflict means an earlier try of
                        # this same request committed and its answer was lost with the node that
                        # was killed (HAProxy answered 502, the adapter sent it again). A client
                        # treats that as done; the project must exist, which is checked here.
                        found = a.get("/projects", params={"name": name, "domain_id": "default"})
                        rows = found.json().get("projects", []) if found.status_code == 200 else []
                        ok = len(rows) == 1
                        if ok:
                            project = rows[0]["id"]
                            with self.lock:
                                self.replayed += 1
                    if ok:
                        with self.lock:
                            self.projects.append(project)
                else:
                    if project is None:
                        continue
                    r = a.put(f"/projects/{project}/users/{self.user_id}/roles/{self.role_id}")
                    ok = r.status_code == 204
                    if ok:
                        with self.lock:
                            self.grants.append((project, self.user_id, self.role_id))
                    project = None
            except Exception as e:  # noqa: BLE001 - what the client saw, reported
                self._fail(kind, repr(e))
                continue
            if ok:
                with self.lock:
                    self.counts[kind] += 1
            else:
                self._fail(kind, f"{r.status_code} {r.text}")

    def start(self) -> "MixedLoad":
        import threading

        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self._worker, args=(w,), daemon=True) for w in range(self.workers)]
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=60)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


# ---- propagation: a write on node A, seen on node B --------------------------------------------
PROPAGATION_KINDS = ("revocation", "role_removed", "user_disabled")


def _poll_until_refused(node_url: str, caller: str, subject: str, sess: requests.Session,
                        deadline_s: float = 3.0, interval_s: float = 0.010) -> float:
    """Seconds from now until node B refuses `subject` (GET /v3/auth/tokens not 200); infinity
    when it still accepts it after `deadline_s` (enough to fail a 1 s bound)."""
    t0 = time.monotonic()
    while True:
        r = sess.get(f"{node_url}/v3/auth/tokens?nocatalog", timeout=10,
                     headers={"X-Auth-Token": caller, "X-Subject-Token": subject})
        now = time.monotonic()
        if r.status_code != 200:
            return now - t0
        if now - t0 > deadline_s:
            return float("inf")
        time.sleep(interval_s)


def measure_propagation(fleet: Fleet, trials_per_kind: int, kinds=PROPAGATION_KINDS,
                        a: int = 0, b: int = 1) -> dict[str, list[float]]:
    """For each kind, `trials_per_kind` times: a user with a role on a fresh project logs in, node
    B validates the token (so it is in B's cache), the write happens on node A at t0, and node B
    is polled directly every ~10 ms until it refuses the token. Returns the seconds per trial."""
    A, B = fleet.nodes[a].url, fleet.nodes[b].url
    sa, sb = requests.Session(), requests.Session()
    admin = issue(A, session=sa)
    member = lookup_id(A, admin, "roles", "member") if api(A, "GET", "roles?name=member", admin).json()["roles"] \
        else api(A, "POST", "roles", admin, {"role": {"name": "member"}}).json()["role"]["id"]
    pw = "Fleet-Propagation-Pw-5521"
    out: dict[str, list[float]] = {k: [] for k in kinds}
    for n in range(trials_per_kind):
        for kind in kinds:
            tag = uuid.uuid4().hex[:10]
            r = api(A, "POST", "projects", admin, {"project": {"name": f"prop-{tag}", "domain_id": "default"}}, sa)
            assert r.status_code == 201, r.text
            pid = r.json()["project"]["id"]
            r = api(A, "POST", "users", admin, {"user": {"name": f"prop-{tag}", "password": pw,
                                                          "domain_id": "default"}}, sa)
            assert r.status_code == 201, r.text
            uid = r.json()["user"]["id"]
            r = api(A, "PUT", f"projects/{pid}/users/{uid}/roles/{member}", admin, session=sa)
            assert r.status_code == 204, r.text
            token = issue(A, f"prop-{tag}", pw, f"prop-{tag}", session=sa)
            r = sb.get(f"{B}/v3/auth/tokens?nocatalog", timeout=10,
                       headers={"X-Auth-Token": admin, "X-Subject-Token": token})
            assert r.status_code == 200, f"node B refused a fresh token: {r.status_code} {r.text[:200]}"
            if kind == "revocation":
                r = sa.delete(f"{A}/v3/auth/tokens", timeout=10,
                              headers={"X-Auth-Token": admin, "X-Subject-Token": token})
            elif kind == "role_removed":
                r = api(A, "DELETE", f"projects/{pid}/users/{uid}/roles/{member}", admin, session=sa)
            else:
                r = api(A, "PATCH", f"users/{uid}", admin, {"user": {"enabled": False}}, sa)
            assert r.status_code in (200, 204), f"{kind} on node A: {r.status_code} {r.text[:200]}"
            out[kind].append(_poll_until_refused(B, admin, token, sb))
            # Clean up on A: the project and user, so trials do not pile rows into the listings.
            api(A, "DELETE", f"users/{uid}", admin, session=sa)
            api(A, "DELETE", f"projects/{pid}", admin, session=sa)
    return out


def percentile(values: list[float], p: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    # Nearest rank: the smallest value with at least p % of the values at or below it.
    return v[max(0, min(len(v), math.ceil(p / 100 * len(v))) - 1)]


def propagation_table(results: dict[str, list[float]]) -> str:
    rows = ["| write on node A | trials | p50 | p99 | max |", "|---|---|---|---|---|"]
    for kind, v in results.items():
        rows.append(f"| {kind} | {len(v)} | {percentile(v, 50) * 1000:.0f} ms | {percentile(v, 99) * 1000:.0f} ms "
                    f"| {max(v) * 1000:.0f} ms |")
    return "\n".join(rows)


# ---- command line (scripts/bench-fleet.sh) -----------------------------------------------------
def _pg_fleet(workdir: Path, size: int) -> tuple[Fleet, Callable[[], None]]:
    connection, drop = create_postgres_database()
    fleet = Fleet(workdir, connection, size)
    try:
        fleet.start()
    except BaseException:
        drop()
        raise
    return fleet, drop


def main(argv: Optional[list[str]] = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description="Baton fleet on loopback (PostgreSQL from BATON_TEST_POSTGRES_URL)")
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("propagation", help="measure propagation between two nodes, print a Markdown table")
    pr.add_argument("--workdir", required=True)
    pr.add_argument("--trials", type=int, default=200, help="trials per kind")
    pr.add_argument("--json", help="write the raw seconds per trial here")
    sv = sub.add_parser("serve", help="run a fleet until SIGTERM; its ports, pids and two tokens go to --state")
    sv.add_argument("--workdir", required=True)
    sv.add_argument("--state", required=True)
    for s in (pr, sv):
        s.add_argument("--nodes", type=int, default=3)
    args = p.parse_args(argv)

    fleet, drop = _pg_fleet(Path(args.workdir), args.nodes)
    try:
        if args.cmd == "propagation":
            results = measure_propagation(fleet, args.trials)
            if args.json:
                Path(args.json).write_text(json.dumps(results))
            print(propagation_table(results))
            return 0
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        url = fleet.nodes[0].url
        state = {"haproxy": fleet.url, "nodes": [n.url for n in fleet.nodes],
                 "node_pids": [n.proc.pid for n in fleet.nodes if n.proc], "haproxy_pid": fleet.haproxy.proc.pid,
                 "auth_token": issue(url), "subject_token": issue(url)}
        tmp = Path(args.state + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.rename(args.state)
        while not stop:
            time.sleep(0.2)
        return 0
    finally:
        fleet.stop()
        drop()


if __name__ == "__main__":
    raise SystemExit(main())
