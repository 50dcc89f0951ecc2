"""TLS everywhere, with the real Python clients and a CA made here by the `openssl` CLI:

* `baton serve` with `[baton] tls_cert_file` / `tls_key_file`, reached by python-openstackclient
  (`--os-cacert`, `OS_CACERT`, `--insecure`, and refused without them), by keystoneauth1
  (`verify=<ca>`, `verify=False`, refused with the default bundle) and by the real
  keystonemiddleware (`cafile`, refused without it);
* `baton authproxy` serving HTTPS itself (`[authproxy] tls_cert_file` / `tls_key_file`) in front
  of an `https://` upstream (`upstream_cafile`) and validating against the https identity server
  (`[keystone_authtoken] cafile`), called through a keystoneauth1 session.

Baton only: the real Keystone runs behind Apache or uWSGI, which terminate TLS for it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from baton_process import Baton, baton_bin
from conftest import require_baton, require_venv
from interop_util import ADMIN_PASSWORD, grant_admin_on_default_domain
from keystone_oracle import DEFAULT_VENV, OracleError, _kill_group, free_port, tail

HTTP_TIMEOUT = 30


# ---- the CA ------------------------------------------------------------------------------------
def openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def make_ca(d: Path) -> Path:
    """A CA (ca.pem) and a leaf for localhost / 127.0.0.1 (server.crt, server.key)."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Baton interop CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / "leaf.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "leaf.ext", cwd=d)
    return d / "ca.pem"


# ---- processes ---------------------------------------------------------------------------------
class TlsBaton(Baton):
    """`baton serve` over TLS; its catalog and discovery say https."""

    def __init__(self, workdir: Path, ca_dir: Path) -> None:
        port = free_port()
        super().__init__(workdir, port, public_endpoint=f"https://127.0.0.1:{port}", extra_conf={
            "baton": {"tls_cert_file": ca_dir / "server.crt", "tls_key_file": ca_dir / "server.key"}})
        self.ca = ca_dir / "ca.pem"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "TlsBaton":
        self.write_config()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--config", str(self.conf_path), "--bind", f"127.0.0.1:{self.port}"],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        wait_https(self.auth_url, self.ca, self.proc, self.log_path)
        return self


def wait_https(url: str, ca: Path, proc: subprocess.Popen, log: Path, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    last = "no attempt"
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"exited rc={proc.returncode}\n{tail(log, 40)}")
        try:
            if requests.get(url, verify=str(ca), timeout=2).status_code == 200:
                return
        except requests.RequestException as e:
            last = repr(e)
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {deadline_s}s ({last})\n{tail(log, 40)}")


def wait_port(port: int, proc: subprocess.Popen, log: Path, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"exited rc={proc.returncode}\n{tail(log, 40)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"not listening on {port} after {deadline_s}s\n{tail(log, 40)}")


def spawn(cmd: list[str], workdir: Path, port: int, what: str) -> subprocess.Popen:
    log = workdir / f"{what}.log"
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_port(port, proc, log)
    except AssertionError:
        _kill_group(proc.pid, 5, proc)
        raise
    return proc


class Cloud:
    def __init__(self, baton: TlsBaton, ca: Path, workdir: Path) -> None:
        self.baton = baton
        self.ca = ca
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []

    @property
    def auth_url(self) -> str:
        return self.baton.auth_url

    def middleware_options(self, **extra: str) -> dict[str, str]:
        """auth_token's options for the bootstrap admin (whose admin role may validate)."""
        return {"auth_url": self.auth_url, "www_authenticate_uri": self.auth_url, "auth_type": "password",
                "username": "admin", "password": ADMIN_PASSWORD, "project_name": "admin",
                "user_domain_name": "Default", "project_domain_name": "Default", "interface": "public",
                "token_cache_time": "-1", "include_service_catalog": "false",
                "http_request_max_retries": "0", **extra}

    def start(self, cmd: list[str], port: int, what: str) -> None:
        self.procs.append(spawn(cmd, self.workdir, port, what))

    def stop(self) -> None:
        for p in self.procs:
            _kill_group(p.pid, 5, p)
        self.baton.stop()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[Cloud]:
    require_baton()
    require_venv()
    d = tmp_path_factory.mktemp("tls")
    ca = make_ca(d / "ca")
    b = TlsBaton(d / "baton", d / "ca")
    b.write_config()
    try:
        b.db_sync()
        b.fernet_setup()
        b.bootstrap(ADMIN_PASSWORD, public_url=b.auth_url)
        grant_admin_on_default_domain(b.sqlite_path)
        b.start()
    except (OracleError, AssertionError) as e:
        b.stop()
        pytest.fail(f"could not start baton over TLS: {e}", pytrace=False)
    c = Cloud(b, ca, d)
    yield c
    c.stop()


# ---- python-openstackclient ---------------------------------------------------------------------
def openstack(cloud: Cloud, *args: str, env: dict | None = None, exe: str | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    base.update({
        "HOME": str(cloud.workdir), "OS_AUTH_URL": cloud.auth_url, "OS_IDENTITY_API_VERSION": "3",
        "OS_AUTH_TYPE": "password", "OS_USERNAME": "admin", "OS_PASSWORD": ADMIN_PASSWORD,
        "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public", "PYTHONWARNINGS": "ignore",
    })
    base.update(env or {})
    exe = exe or str(DEFAULT_VENV / "bin" / "openstack")
    return subprocess.run([exe, *args], env=base, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_openstackclient_with_os_cacert(cloud: Cloud) -> None:
    r = openstack(cloud, "--os-cacert", str(cloud.ca), "token", "issue", "-f", "json")
    assert r.returncode == 0, r.stderr
    token = json.loads(r.stdout)
    assert token["id"].startswith("gAAAAA")
    r = openstack(cloud, "--os-cacert", str(cloud.ca), "project", "list", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert "admin" in {p["Name"] for p in json.loads(r.stdout)}
    # OS_CACERT, as openstackclient reads it.
    r = openstack(cloud, "project", "list", "-f", "json", env={"OS_CACERT": str(cloud.ca)})
    assert r.returncode == 0, r.stderr


def test_openstackclient_refuses_an_unknown_ca_unless_insecure(cloud: Cloud) -> None:
    r = openstack(cloud, "token", "issue", "-f", "json")
    assert r.returncode != 0
    assert "SSL" in r.stderr or "certificate" in r.stderr, r.stderr
    r = openstack(cloud, "--insecure", "token", "issue", "-f", "json")
    assert r.returncode == 0, r.stderr


def test_baton_cli_reads_the_same_tls_options(cloud: Cloud) -> None:
    """`baton`'s operator commands take openstackclient's options (after the command: before
    it `baton` has its own subcommands) and variables."""
    baton = str(baton_bin())
    r = openstack(cloud, "token", "issue", "-f", "json", "--os-cacert", str(cloud.ca), exe=baton)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"].startswith("gAAAAA")
    r = openstack(cloud, "project", "list", "-f", "json", env={"OS_CACERT": str(cloud.ca)}, exe=baton)
    assert r.returncode == 0, r.stderr
    assert "admin" in {p["Name"] for p in json.loads(r.stdout)}
    r = openstack(cloud, "token", "issue", "-f", "json", exe=baton)
    assert r.returncode != 0
    r = openstack(cloud, "token", "issue", "-f", "json", "--insecure", exe=baton)
    assert r.returncode == 0, r.stderr


# ---- keystoneauth1 -------------------------------------------------------------------------------
def ksa_session(cloud: Cloud, verify):
    from keystoneauth1 import session
    from keystoneauth1.identity import v3
    auth = v3.Password(auth_url=cloud.auth_url, username="admin", password=ADMIN_PASSWORD,
                       user_domain_name="Default", project_name="admin", project_domain_name="Default")
    return session.Session(auth=auth, verify=verify)


def test_keystoneauth_verify(cloud: Cloud) -> None:
    from keystoneauth1 import exceptions
    s = ksa_session(cloud, str(cloud.ca))
    assert s.get_token().startswith("gAAAAA")
    endpoint = s.get_endpoint(service_type="identity", interface="public")
    assert endpoint.startswith("https://127.0.0.1:"), endpoint
    r = s.get("/projects", endpoint_filter={"service_type": "identity", "interface": "public"})
    assert r.status_code == 200
    assert ksa_session(cloud, False).get_token().startswith("gAAAAA")
    with pytest.raises(exceptions.SSLError):
        ksa_session(cloud, True).get_token()


# ---- keystonemiddleware --------------------------------------------------------------------------
def ksm_front(cloud: Cloud, **options: str) -> str:
    port = free_port()
    python = str(DEFAULT_VENV / "bin" / "python")
    app = str(Path(__file__).parent / "ksm_app.py")
    cloud.start([python, app, str(port), json.dumps(cloud.middleware_options(**options))], port,
                f"ksm_app-{port}")
    return f"http://127.0.0.1:{port}"


def test_keystonemiddleware_validates_over_https_with_cafile(cloud: Cloud) -> None:
    token = ksa_session(cloud, str(cloud.ca)).get_token()
    with_ca = ksm_front(cloud, cafile=str(cloud.ca))
    r = requests.get(with_ca + "/x", headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["headers"]["x-identity-status"] == "Confirmed"
    assert r.json()["headers"]["x-project-name"] == "admin"
    insecure = ksm_front(cloud, insecure="true")
    r = requests.get(insecure + "/x", headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    # With the default bundle keystonemiddleware cannot authenticate its service user: the
    # SSLError of keystoneauth escapes the middleware (wsgiref answers 500). Baton's layer says
    # 503 identity_unreachable there (crates/baton-authtoken/tests/authtoken/tls.rs).
    without = ksm_front(cloud)
    r = requests.get(without + "/x", headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 500, r.text


# ---- baton authproxy over TLS in front of an https upstream -------------------------------------
def test_authproxy_tls_both_ways(cloud: Cloud) -> None:
    d = cloud.workdir / "authproxy"
    d.mkdir(exist_ok=True)
    port = free_port()
    ca_dir = cloud.ca.parent
    # The upstream is the https identity server itself: its GET /v3 answers behind the proxy.
    lines = ["[authproxy]", f"listen = 127.0.0.1:{port}", f"upstream = {cloud.baton.url}",
             f"upstream_cafile = {cloud.ca}", f"tls_cert_file = {ca_dir / 'server.crt'}",
             f"tls_key_file = {ca_dir / 'server.key'}", "upstream_timeout = 10", "", "[keystone_authtoken]"]
    lines += [f"{k} = {v}" for k, v in cloud.middleware_options(cafile=str(cloud.ca)).items()]
    (d / "proxy.ini").write_text("\n".join(lines) + "\n")
    cloud.start([str(baton_bin()), "authproxy", "--config", str(d / "proxy.ini")], port, "authproxy")
    proxy = f"https://127.0.0.1:{port}"

    # A service's own client: a keystoneauth1 session verifying the proxy with the CA.
    s = ksa_session(cloud, str(cloud.ca))
    r = s.get(proxy + "/v3", authenticated=True, raise_exc=False)
    assert r.status_code == 200, r.text
    assert r.json()["version"]["id"] == "v3.14"
    r = requests.get(proxy + "/v3", headers={"X-Auth-Token": "bogus"}, verify=str(cloud.ca), timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(proxy + "/v3", timeout=HTTP_TIMEOUT)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
