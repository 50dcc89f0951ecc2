"""Fixtures for the Baton interop suite.

Every test that takes the ``target`` fixture runs against Baton AND against the real Keystone
(the oracle): the Keystone run proves the test itself is right, the Baton run checks Baton.
Choose with INTEROP_TARGETS=baton|keystone|baton,keystone (default both). Baton runs skip with a
clear message while the binary (BATON_BIN, default target/debug/baton) is not built.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import log_scan  # noqa: E402
from baton_process import Baton, baton_bin, baton_missing_reason  # noqa: E402
from interop_util import ADMIN_PASSWORD, Target, grant_admin_on_default_domain  # noqa: E402
from keystone_oracle import DEFAULT_VENV, KeystoneOracle, OracleError, free_port  # noqa: E402

TARGETS = [t.strip() for t in os.environ.get("INTEROP_TARGETS", "baton,keystone").split(",") if t.strip()]
TOKEN_EXPIRATION = 3600  # >= 180 s, or keystoneauth re-authenticates before every request
KEYSTONE_HASH_ROUNDS = 4  # bcrypt rounds for passwords keystone hashes (fast auth in tests)


def require_baton() -> None:
    reason = baton_missing_reason()
    if reason:
        pytest.skip(reason)


def require_venv() -> None:
    if not (DEFAULT_VENV / "bin" / "keystone-manage").exists():
        pytest.skip(f"interop venv missing at {DEFAULT_VENV}: run scripts/python-env.sh")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_baton_logs(tmp_path_factory) -> Iterator[None]:
    """After the session: no token, password or key in anything Baton logged (log_scan.py)."""
    yield
    findings = log_scan.check_session(tmp_path_factory.getbasetemp())
    if findings:
        pytest.fail("secrets in Baton's logs:\n" + "\n".join(findings[:50]), pytrace=False)


# ---- plain helpers as fixtures -------------------------------------------------------------------
@pytest.fixture
def free_tcp_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    require_venv()
    return DEFAULT_VENV / "bin"


# ---- single servers ----------------------------------------------------------------------------
def start_baton(workdir: Path, *, expiration: int = TOKEN_EXPIRATION, grant_domain: bool = True) -> Target:
    require_baton()
    b = Baton(workdir, expiration=expiration)
    b.write_config()
    try:
        b.db_sync()
        b.fernet_setup()
        b.bootstrap(ADMIN_PASSWORD, public_url=b.auth_url)
        if grant_domain:
            grant_admin_on_default_domain(b.sqlite_path)
        b.start()
    except OracleError as e:
        b.stop()
        pytest.fail(f"could not start baton: {e}", pytrace=False)
    return Target("baton", b.auth_url, b.sqlite_path, server=b)


def start_keystone(workdir: Path, *, expiration: int = TOKEN_EXPIRATION, grant_domain: bool = True,
                   template: Optional[Path] = None, cache: bool = False, workers: int = 1) -> Target:
    """Real keystone, bootstrapped. With `template` (see keystone_template) the db and keys are
    copied from it (saves ~12 s of keystone-manage) and the endpoint URL is rewritten. `cache`
    turns on Keystone's in-process memory cache, which makes most requests several times faster;
    it is per worker, so with more than one worker a read may see what another worker cached
    before a write."""
    require_venv()
    k = KeystoneOracle(workdir, free_port(), expiration=expiration, password_hash_rounds=KEYSTONE_HASH_ROUNDS,
                       cache=cache, workers=workers)
    k.write_config()
    try:
        if template is not None:
            shutil.copyfile(template / "keystone.db", k.sqlite_path)
            for d in ("fernet-keys", "credential-keys"):
                shutil.copytree(template / d, workdir / d)
            con = sqlite3.connect(k.sqlite_path)
            con.execute("UPDATE endpoint SET url = ? WHERE url = ?", (k.auth_url, TEMPLATE_URL))
            con.commit()
            con.close()
        else:
            k.db_sync()
            k.fernet_setup()
            k.bootstrap(ADMIN_PASSWORD, public_url=k.auth_url)
            if grant_domain:
                grant_admin_on_default_domain(k.sqlite_path)
        k.start()
    except OracleError as e:
        k.stop()
        pytest.fail(f"could not start keystone: {e}", pytrace=False)
    return Target("keystone", k.auth_url, k.sqlite_path, server=k)


TEMPLATE_URL = "http://127.0.0.1:5000/v3"


def merged_conf(conf: dict, more: Optional[dict]) -> dict:
    """`conf` with the options of `more` added section by section."""
    out = {sec: dict(opts) for sec, opts in conf.items()}
    for sec, opts in (more or {}).items():
        out.setdefault(sec, {}).update(opts)
    return out


def start_configured_pair(workdir: Path, template: Path, conf: dict, *, keystone_conf: Optional[dict] = None,
                          baton_conf: Optional[dict] = None) -> tuple[Target, Target]:
    """The real Keystone on a copy of the bootstrapped template and a Baton bootstrapped on its
    own database, both with the keystone.conf sections in `conf` (plus `keystone_conf` or
    `baton_conf` for one of them): for asking both the same requests under one configuration
    (each has its own database)."""
    require_venv()
    require_baton()
    kdir = workdir / "keystone"
    k = KeystoneOracle(kdir, free_port(), password_hash_rounds=KEYSTONE_HASH_ROUNDS,
                       extra_conf=merged_conf(conf, keystone_conf))
    k.write_config()
    b = Baton(workdir / "baton", extra_conf=merged_conf(conf, baton_conf))
    try:
        shutil.copyfile(template / "keystone.db", k.sqlite_path)
        for d in ("fernet-keys", "credential-keys"):
            shutil.copytree(template / d, kdir / d)
        con = sqlite3.connect(k.sqlite_path)
        con.execute("UPDATE endpoint SET url = ? WHERE url = ?", (k.auth_url, TEMPLATE_URL))
        con.commit()
        con.close()
        k.start()
        b.write_config()
        b.db_sync()
        b.fernet_setup()
        b.bootstrap(ADMIN_PASSWORD, public_url=b.auth_url)
        b.start()
    except OracleError as e:
        b.stop()
        k.stop()
        pytest.fail(f"could not start the servers: {e}", pytrace=False)
    return (Target("keystone", k.auth_url, k.sqlite_path, server=k),
            Target("baton", b.auth_url, b.sqlite_path, server=b))


@pytest.fixture(scope="session")
def keystone_template(tmp_path_factory) -> Path:
    """keystone-manage db_sync + fernet_setup + bootstrap (+ domain grant) done once per session."""
    require_venv()
    d = tmp_path_factory.mktemp("keystone-template")
    k = KeystoneOracle(d, password_hash_rounds=KEYSTONE_HASH_ROUNDS)
    k.write_config()
    try:
        k.db_sync()
        k.fernet_setup()
        k.bootstrap(ADMIN_PASSWORD, public_url=TEMPLATE_URL)
    except OracleError as e:
        pytest.fail(f"could not build the keystone template: {e}", pytrace=False)
    grant_admin_on_default_domain(k.sqlite_path)
    return d


@pytest.fixture(scope="module")
def baton(tmp_path_factory) -> Iterator[Target]:
    """A running Baton, bootstrapped (admin/adminpass, project admin, RegionOne, public endpoint)."""
    t = start_baton(tmp_path_factory.mktemp("baton"))
    yield t
    t.server.stop()


@pytest.fixture(scope="module")
def keystone(tmp_path_factory, keystone_template) -> Iterator[Target]:
    """A running real Keystone, bootstrapped the same way as ``baton``."""
    t = start_keystone(tmp_path_factory.mktemp("keystone"), template=keystone_template)
    yield t
    t.server.stop()


@pytest.fixture(scope="module", params=TARGETS)
def target(request, tmp_path_factory) -> Iterator[Target]:
    """Baton or the real Keystone (parametrized)."""
    if request.param == "keystone":
        t = start_keystone(tmp_path_factory.mktemp("keystone"),
                           template=request.getfixturevalue("keystone_template"))
    else:
        t = start_baton(tmp_path_factory.mktemp("baton"))
    yield t
    t.server.stop()


# ---- Baton + Keystone on ONE sqlite db and ONE key repository ----------------------------------
class Pair:
    def __init__(self, keystone: Target, baton: Target, initialized_by: str) -> None:
        self.keystone = keystone
        self.baton = baton
        self.initialized_by = initialized_by

    def both(self) -> list[Target]:
        return [self.keystone, self.baton]

    def stop(self) -> None:
        for t in (self.baton, self.keystone):
            if t is not None:
                t.server.stop()


def start_pair(workdir: Path, initialized_by: str, *, expiration: int = TOKEN_EXPIRATION) -> Pair:
    """Start Keystone and Baton sharing workdir/shared.db and workdir/fernet-keys.

    initialized_by="keystone": keystone-manage db_sync + fernet_setup + bootstrap, Baton only serves.
    initialized_by="baton":    baton manage db_sync + fernet_setup + bootstrap, Keystone only serves.
    """
    require_venv()
    require_baton()
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "shared.db"
    keys = workdir / "fernet-keys"
    ks = KeystoneOracle(workdir / "keystone", free_port(), sqlite_path=db, key_repository=keys,
                        expiration=expiration, password_hash_rounds=KEYSTONE_HASH_ROUNDS)
    bt = Baton(workdir / "baton", sqlite_path=db, key_repository=keys, expiration=expiration)
    ks.write_config()
    bt.write_config()
    try:
        if initialized_by == "keystone":
            ks.db_sync()
            ks.fernet_setup()
            ks.bootstrap(ADMIN_PASSWORD, public_url=ks.auth_url)
        elif initialized_by == "baton":
            bt.db_sync()
            bt.fernet_setup()
            bt.bootstrap(ADMIN_PASSWORD, public_url=bt.auth_url)
        else:
            raise ValueError(initialized_by)
        grant_admin_on_default_domain(db)
        ks.start()
        bt.start()
    except OracleError as e:
        bt.stop()
        ks.stop()
        pytest.fail(f"could not start the keystone+baton pair ({initialized_by} initialized): {e}",
                    pytrace=False)
    return Pair(Target("keystone", ks.auth_url, db, server=ks), Target("baton", bt.auth_url, db, server=bt),
                initialized_by)


@pytest.fixture(scope="module", params=["keystone", "baton"], ids=["keystone-inits", "baton-inits"])
def pair(request, tmp_path_factory) -> Iterator[Pair]:
    p = start_pair(tmp_path_factory.mktemp(f"pair-{request.param}"), request.param)
    yield p
    p.stop()


@pytest.fixture
def pair_factory(tmp_path_factory) -> Iterator[Callable[..., Pair]]:
    started: list[Pair] = []

    def make(initialized_by: str, **kw) -> Pair:
        p = start_pair(tmp_path_factory.mktemp(f"pair-{initialized_by}"), initialized_by, **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


# ---- python-openstackclient --------------------------------------------------------------------
class _ForkServer:
    """One osc_forkserver.py per test worker (see there): `openstack` without its import time."""

    def __init__(self, python: Path) -> None:
        # PYTHONWARNINGS is read at start-up: the commands' own environments all ignore warnings.
        self.proc = subprocess.Popen([str(python), str(Path(__file__).with_name("osc_forkserver.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"})
        self.lock = threading.Lock()

    def run(self, argv: list, env: dict, cwd: Optional[Path], timeout: float) -> subprocess.CompletedProcess:
        import select
        import tempfile

        with self.lock, tempfile.TemporaryDirectory() as d:
            out, err = Path(d) / "out", Path(d) / "err"
            self.proc.stdin.write(json.dumps({"argv": list(argv), "env": env, "cwd": str(cwd or os.getcwd()),
                                              "stdout": str(out), "stderr": str(err)}) + "\n")
            self.proc.stdin.flush()
            pid = json.loads(self.proc.stdout.readline())["pid"]
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:
                os.kill(pid, 9)
                self.proc.stdout.readline()
                raise subprocess.TimeoutExpired(["openstack", *argv], timeout)
            rc = json.loads(self.proc.stdout.readline())["rc"]
            read = lambda p: p.read_text(errors="replace") if p.exists() else ""  # noqa: E731
            return subprocess.CompletedProcess(["openstack", *argv], rc, read(out), read(err))


_FORK_SERVERS: dict = {}


def run_openstack(exe: Path, argv, env: dict, cwd: Optional[Path] = None,
                  timeout: float = 120) -> subprocess.CompletedProcess:
    """`openstack argv...` as a process would run it; through the worker's fork server unless
    BATON_OSC_FORK=0."""
    if os.environ.get("BATON_OSC_FORK", "1") == "0":
        return subprocess.run([str(exe), *argv], env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=cwd)
    python = Path(exe).parent / "python"
    server = _FORK_SERVERS.get(python)
    if server is None or server.proc.poll() is not None:
        server = _FORK_SERVERS[python] = _ForkServer(python)
    return server.run(list(argv), env, cwd, timeout)


class OpenStackCLI:
    def __init__(self, exe: Path, target: Target, home: Path) -> None:
        self.exe = exe
        self.target = target
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env.update({
            "HOME": str(home),  # no stray clouds.yaml
            "OS_AUTH_URL": target.auth_url,
            "OS_IDENTITY_API_VERSION": "3",
            "OS_AUTH_TYPE": "password",
            "OS_USERNAME": "admin",
            "OS_PASSWORD": target.admin_password,
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_REGION_NAME": "RegionOne",
            "OS_INTERFACE": "public",
            "PYTHONWARNINGS": "ignore",
        })

    def run(self, *args: str, check: bool = True, timeout: float = 120,
            env: Optional[dict] = None) -> subprocess.CompletedProcess:
        r = run_openstack(self.exe, args, {**self.env, **(env or {})}, timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail(f"`openstack {' '.join(args)}` against {self.target} failed rc={r.returncode}\n"
                        f"stdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-3000:]}", pytrace=False)
        return r


@pytest.fixture
def openstack(target, venv_bin, tmp_path) -> OpenStackCLI:
    """The venv's `openstack` CLI with OS_* env pointing at ``target`` as admin/admin."""
    return OpenStackCLI(venv_bin / "openstack", target, tmp_path)


class CliPair:
    """`openstack` and `baton` with the same environment, against one target: what every test
    comparing the two tools' output uses."""

    def __init__(self, target: Target, venv_bin: Path, home: Path) -> None:
        self.target = target
        self.osc = OpenStackCLI(venv_bin / "openstack", target, home)
        self.env = dict(self.osc.env)
        self.env["BATON_LOG"] = "error"
        self.exe = str(baton_bin())

    def bt(self, *args: str, check: bool = True, env: Optional[dict] = None,
           cwd: Optional[Path] = None, full_env: Optional[dict] = None) -> subprocess.CompletedProcess:
        r = subprocess.run([self.exe, *args], env=full_env or {**self.env, **(env or {})}, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=cwd)
        if check and r.returncode != 0:
            pytest.fail(f"`baton {' '.join(args)}` against {self.target} failed rc={r.returncode}\n"
                        f"stdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-3000:]}", pytrace=False)
        return r

    def os(self, *args: str, check: bool = True, env: Optional[dict] = None,
           cwd: Optional[Path] = None, full_env: Optional[dict] = None) -> subprocess.CompletedProcess:
        if cwd is None and full_env is None:
            return self.osc.run(*args, check=check, env=env)
        r = run_openstack(self.osc.exe, args, full_env or {**self.osc.env, **(env or {})}, cwd=cwd)
        if check and r.returncode != 0:
            pytest.fail(f"`openstack {' '.join(args)}` failed rc={r.returncode}\n{r.stderr[-3000:]}",
                        pytrace=False)
        return r

    def same(self, *args: str) -> str:
        """Both tools print exactly the same thing."""
        want = self.os(*args).stdout
        got = self.bt(*args).stdout
        if got != want:
            diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), "openstack", "baton",
                                                  lineterm=""))
            pytest.fail(f"`{' '.join(args)}` on {self.target.name} differs:\n{diff}", pytrace=False)
        return got

    def bt_json(self, *args: str):
        return json.loads(self.bt(*args, "-f", "json").stdout)

    def os_json(self, *args: str):
        return json.loads(self.os(*args, "-f", "json").stdout)
