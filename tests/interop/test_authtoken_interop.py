"""auth_token interop, both directions, one scenario set:

(a) the REAL keystonemiddleware ``auth_token.AuthProtocol`` (ksm_app.py) validating tokens
    against BATON's identity server;
(b) ``baton authproxy`` (the binary) in front of a tiny Python upstream, validating tokens
    against the REAL Keystone 30.

Both must give keystonemiddleware 13's outcomes (keystone-oracle.md step 4): fresh user token
200; expired user token alone 401; expired user token + service token of a user holding
``service`` 200 (X-Service-Roles has ``service``); expired user + role-less service token 401;
fresh user + role-less service token 401; garbage service token 401; no token 401 with
``WWW-Authenticate: Keystone uri="..."``.

Users (made with ``manage bootstrap`` / ``keystone-manage bootstrap`` and other
--bootstrap-username/--bootstrap-role-name, since Baton has no admin API yet): ``admin`` (the
user tokens), ``nova`` holding ``service`` on project ``service`` (the middleware's own user and
the good service token) and ``plain`` holding ``member`` on ``service`` (the role-less one).

Expired user tokens: each identity side is TWO servers on one database and one key repository.
The main one has ``[token] expiration = 3600`` and is what the middleware authenticates and
validates against (its own service token must stay long-lived: keystoneauth re-authenticates when
its token is within 120 s of expiry, and a middleware token that expired mid-test would turn
every validation into a 401 retry); the second one has ``expiration = EXPIRING`` seconds and only
mints the user tokens that we then let expire. Both sign with the same Fernet keys, so the main
server validates them like its own (allow_expired included).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests

from baton_process import Baton, baton_bin
from conftest import KEYSTONE_HASH_ROUNDS, TEMPLATE_URL, require_baton, require_venv
from interop_util import ADMIN_PASSWORD, HTTP_TIMEOUT, issue_token
from keystone_oracle import DEFAULT_VENV, KeystoneOracle, OracleError, _kill_group, free_port, tail
from log_scan import log_level

EXPIRING = 4  # seconds: [token] expiration of the server minting the soon-expired user tokens
NOVA_PW = "novapass"
PLAIN_PW = "plainpass"
SERVICE_SCOPE = {"project": {"name": "service", "domain": {"name": "Default"}}}
ADMIN_SCOPE = {"project": {"name": "admin", "domain": {"name": "Default"}}}
BODY_401 = {"error": {"code": 401, "title": "Unauthorized",
                      "message": "The request you have made requires authentication."}}
GARBAGE = "gAAAAABgarbage-not-a-token-0123456789"


# ---- the identity sides --------------------------------------------------------------------------
class Side:
    """Main identity server (long tokens) + the short-expiration one, and the tokens."""

    def __init__(self, name: str, main, short) -> None:
        self.name = name
        self.main = main
        self.short = short
        self.tokens: dict[str, str] = {}

    @property
    def auth_url(self) -> str:
        return self.main.auth_url

    def mint(self) -> None:
        """Fresh tokens from the main server; the user token to expire from the short one, then
        wait (bounded) until it has expired."""
        main, short = self.main.auth_url, self.short.auth_url
        self.tokens["fresh_user"], _ = issue_token(main, ADMIN_SCOPE, nocatalog=True)
        self.tokens["service"], body = issue_token(main, SERVICE_SCOPE, username="nova", password=NOVA_PW,
                                                   nocatalog=True)
        assert "service" in [r["name"] for r in body["token"]["roles"]], body
        self.tokens["nonservice"], body = issue_token(main, SERVICE_SCOPE, username="plain",
                                                      password=PLAIN_PW, nocatalog=True)
        assert "service" not in [r["name"] for r in body["token"]["roles"]], body
        self.tokens["expired_user"], _ = issue_token(short, ADMIN_SCOPE, nocatalog=True)
        time.sleep(EXPIRING + 2)
        r = requests.get(main + "/auth/tokens", headers={"X-Auth-Token": self.tokens["service"],
                                                         "X-Subject-Token": self.tokens["expired_user"]},
                         timeout=HTTP_TIMEOUT)
        assert r.status_code == 404, f"{self.name}: the short token has not expired: {r.status_code}"

    def stop(self) -> None:
        for s in (self.short, self.main):
            if s is not None:
                s.stop()


def _bootstrap_service_users(server) -> None:
    """nova (role service) and plain (role member), both on project service."""
    server.bootstrap(NOVA_PW, username="nova", project_name="service", role_name="service",
                     public_url=server.auth_url)
    server.bootstrap(PLAIN_PW, username="plain", project_name="service", role_name="member",
                     public_url=server.auth_url)


@pytest.fixture(scope="module")
def baton_side(tmp_path_factory) -> Iterator[Side]:
    require_baton()
    d = tmp_path_factory.mktemp("baton-authtoken")
    main = Baton(d / "main")
    short = None
    try:
        main.write_config()
        main.db_sync()
        main.fernet_setup()
        main.bootstrap(ADMIN_PASSWORD, public_url=main.auth_url)
        _bootstrap_service_users(main)
        main.start()
        short = Baton(d / "short", sqlite_path=main.sqlite_path, key_repository=main.key_repository,
                      expiration=EXPIRING)
        short.start()
    except OracleError as e:
        Side("baton", main, short).stop()
        pytest.fail(f"could not start baton: {e}", pytrace=False)
    side = Side("baton", main, short)
    yield side
    side.stop()


@pytest.fixture(scope="module")
def keystone_side(tmp_path_factory, keystone_template) -> Iterator[Side]:
    require_venv()
    d = tmp_path_factory.mktemp("keystone-authtoken")
    main = KeystoneOracle(d / "main", free_port(), password_hash_rounds=KEYSTONE_HASH_ROUNDS)
    short = None
    try:
        main.write_config()
        import shutil
        import sqlite3
        shutil.copyfile(keystone_template / "keystone.db", main.sqlite_path)
        for sub in ("fernet-keys", "credential-keys"):
            shutil.copytree(keystone_template / sub, main.workdir / sub)
        con = sqlite3.connect(main.sqlite_path)
        con.execute("UPDATE endpoint SET url = ? WHERE url = ?", (main.auth_url, TEMPLATE_URL))
        con.commit()
        con.close()
        _bootstrap_service_users(main)
        main.start()
        short = KeystoneOracle(d / "short", free_port(), sqlite_path=main.sqlite_path,
                               key_repository=main.key_repository, expiration=EXPIRING,
                               password_hash_rounds=KEYSTONE_HASH_ROUNDS)
        short.start()
    except OracleError as e:
        Side("keystone", main, short).stop()
        pytest.fail(f"could not start keystone: {e}", pytrace=False)
    side = Side("keystone", main, short)
    yield side
    side.stop()


# ---- processes and servers under test ----------------------------------------------------------
def wait_port(port: int, deadline_s: float, proc: subprocess.Popen, log: Path, what: str) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited rc={proc.returncode}\n{tail(log, 40)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} not listening on {port} after {deadline_s}s\n{tail(log, 40)}")


def spawn(cmd: list[str], workdir: Path, port: int, what: str) -> subprocess.Popen:
    log = workdir / f"{what}.log"
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "RUST_BACKTRACE": "1", "BATON_LOG": log_level()})
    try:
        wait_port(port, 30, proc, log, what)
    except AssertionError:
        _kill_group(proc.pid, 5, proc)
        raise
    return proc


def middleware_options(auth_url: str) -> dict[str, str]:
    """keystone-oracle.md step 4's paste-style options, for either middleware."""
    return {
        "www_authenticate_uri": auth_url, "auth_url": auth_url, "auth_type": "password",
        "username": "nova", "password": NOVA_PW, "project_name": "service",
        "user_domain_name": "Default", "project_domain_name": "Default",
        "interface": "public",
        "service_token_roles": "service",
        "service_token_roles_required": "true",
        "delay_auth_decision": "false",
        "token_cache_time": "-1",  # every request validates against the identity server
        "include_service_catalog": "false",
    }


class Front:
    """The thing under test: a URL that runs a middleware in front of an echo of X-* headers."""

    def __init__(self, name: str, url: str, side: Side, upstream_hits=None) -> None:
        self.name = name
        self.url = url
        self.side = side
        self.upstream_hits = upstream_hits

    def get(self, headers: dict[str, str]) -> requests.Response:
        return requests.get(self.url + "/anything", headers=headers, timeout=HTTP_TIMEOUT)


@pytest.fixture(scope="module")
def ksm_vs_baton(baton_side, tmp_path_factory) -> Iterator[Front]:
    """(a) The real keystonemiddleware validating against Baton."""
    d = tmp_path_factory.mktemp("ksm")
    port = free_port()
    python = str(DEFAULT_VENV / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    proc = spawn([python, str(Path(__file__).parent / "ksm_app.py"), str(port),
                  json.dumps(middleware_options(baton_side.auth_url))], d, port, "ksm_app")
    baton_side.mint()
    yield Front("keystonemiddleware->baton", f"http://127.0.0.1:{port}", baton_side)
    _kill_group(proc.pid, 5, proc)


class Echo(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).hits += 1
        body = json.dumps({"headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def authproxy_vs_keystone(keystone_side, tmp_path_factory) -> Iterator[Front]:
    """(b) `baton authproxy` validating against the real Keystone."""
    require_baton()
    d = tmp_path_factory.mktemp("authproxy")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    lines = ["[authproxy]", f"listen = 127.0.0.1:{port}",
             f"upstream = http://127.0.0.1:{upstream.server_address[1]}", "upstream_timeout = 10",
             "", "[keystone_authtoken]"]
    lines += [f"{k} = {v}" for k, v in middleware_options(keystone_side.auth_url).items()]
    conf = d / "proxy.ini"
    conf.write_text("\n".join(lines) + "\n")
    proc = spawn([str(baton_bin()), "authproxy", "--config", str(conf)], d, port, "authproxy")
    keystone_side.mint()
    yield Front("baton-authproxy->keystone", f"http://127.0.0.1:{port}", keystone_side, upstream_hits=Echo)
    _kill_group(proc.pid, 5, proc)
    upstream.shutdown()
    upstream.server_close()


@pytest.fixture(params=["ksm_vs_baton", "authproxy_vs_keystone"])
def front(request) -> Front:
    return request.getfixturevalue(request.param)


# ---- the scenarios -------------------------------------------------------------------------------
# name: (user token key or None, service token key or None, expected status)
SCENARIOS = {
    "fresh_user_only": ("fresh_user", None, 200),
    "expired_user_only": ("expired_user", None, 401),
    "expired_user+service": ("expired_user", "service", 200),
    "expired_user+nonservice": ("expired_user", "nonservice", 401),
    "fresh_user+nonservice": ("fresh_user", "nonservice", 401),
    "garbage_service": ("fresh_user", "garbage", 401),
    "no_token": (None, None, 401),
}


def headers_for(front: Front, user: Optional[str], service: Optional[str]) -> dict[str, str]:
    tokens = {**front.side.tokens, "garbage": GARBAGE}
    h = {}
    if user:
        h["X-Auth-Token"] = tokens[user]
    if service:
        h["X-Service-Token"] = tokens[service]
    # Spoofed identity headers must never reach the app.
    h["X-Service-Roles"] = "spoofed"
    h["X-Roles"] = "spoofed"
    return h


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_service_token_scenarios(front: Front, scenario: str) -> None:
    user, service, status = SCENARIOS[scenario]
    before = front.upstream_hits.hits if front.upstream_hits else None
    r = front.get(headers_for(front, user, service))
    assert r.status_code == status, f"{front.name} {scenario}: {r.status_code} {r.text[:300]}"
    if status == 401:
        assert r.json() == BODY_401, f"{front.name} {scenario}: {r.text}"
        assert r.headers.get("WWW-Authenticate") == f'Keystone uri="{front.side.auth_url}"', r.headers
        if before is not None:
            assert front.upstream_hits.hits == before, "a refused request reached the upstream"
        return
    seen = r.json()["headers"]
    assert seen.get("x-identity-status") == "Confirmed", seen
    assert seen.get("x-user-name") == "admin", seen
    assert seen.get("x-project-name") == "admin", seen
    assert "spoofed" not in (seen.get("x-roles") or ""), seen
    assert "admin" in seen["x-roles"].split(","), seen
    if service:
        assert seen.get("x-service-identity-status") == "Confirmed", seen
        assert "service" in seen.get("x-service-roles", "").split(","), seen
        assert seen.get("x-service-user-name") == "nova", seen
        assert seen.get("x-service-project-name") == "service", seen
    else:
        assert "x-service-identity-status" not in seen, seen
        assert seen.get("x-service-roles") in (None, ""), seen
