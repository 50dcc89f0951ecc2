"""keystonemiddleware's memcached token cache, shared by the REAL keystonemiddleware (ksm_app.py)
and ``baton authproxy``, on one real memcached, with ``memcache_security_strategy`` MAC and
ENCRYPT and one ``memcache_secret_key``.

Both validate against one Baton identity server with ``token_cache_time = 300``. A token is
validated by one middleware, then REVOKED at the identity server: the other middleware still
lets it through only if it found the first one's memcached entry (a revoked token is refused by
the identity server). That is the proof of sharing, in both directions. The entry's key and value
are checked with keystonemiddleware's own ``_memcache_crypt``; a tampered entry makes both
validate again (401 for the revoked token, never a 5xx).

memcached: ``BATON_TEST_MEMCACHED_URL`` (host:port, set by scripts/services.sh), else a
throwaway one on a free loopback port (Debian's package ``memcached``, installed when missing).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests

from baton_process import baton_bin
from conftest import require_venv, start_baton
from interop_util import ADMIN_PASSWORD, HTTP_TIMEOUT, PROJECT_SCOPE, issue_token, revoke_token
from keystone_oracle import DEFAULT_VENV, REPO_ROOT, _kill_group, free_port
from test_authtoken_interop import Echo, spawn

SECRET = "Interop-memcache-secret-5e1d"
TOKEN_CACHE_TIME = 300


# ---- memcached ------------------------------------------------------------------------------------
class Memcached:
    """A raw text-protocol client: enough to read and overwrite entries."""

    def __init__(self, addr: str) -> None:
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        self.host, self.port = host, int(port)

    def _talk(self, request: bytes) -> bytes:
        with socket.create_connection((self.host, self.port), timeout=5) as s:
            s.sendall(request)
            data = b""
            while not (data.endswith(b"END\r\n") or data.endswith(b"STORED\r\n")
                       or data.endswith(b"ERROR\r\n")):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

    def get(self, key: str) -> Optional[tuple[int, bytes]]:
        data = self._talk(b"get " + key.encode() + b"\r\n")
        if data == b"END\r\n":
            return None
        header, rest = data.split(b"\r\n", 1)
        _, _, flags, length = header.split(b" ")
        return int(flags), rest[:int(length)]

    def set(self, key: str, value: bytes, flags: int = 0, ttl: int = 60) -> None:
        data = self._talk(b"set %s %d %d %d\r\n%s\r\n" % (key.encode(), flags, ttl, len(value), value))
        assert data == b"STORED\r\n", data

    def wait_for(self, key: str) -> bytes:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            found = self.get(key)
            if found is not None:
                flags, value = found
                assert flags == 0, f"stored with flags {flags}"
                return value
            time.sleep(0.05)
        raise AssertionError(f"no memcached entry {key}")


@pytest.fixture(scope="module")
def memcached(tmp_path_factory) -> Iterator[Memcached]:
    addr = os.environ.get("BATON_TEST_MEMCACHED_URL")
    if addr:
        yield Memcached(addr)
        return
    if shutil.which("memcached") is None:
        subprocess.run(["bash", "-c", f"source {REPO_ROOT}/scripts/services.sh && baton_apt_install memcached"],
                       check=True, timeout=600)
    port = free_port()
    proc = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16", "-u", "root"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    end = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < end, "memcached did not start"
            time.sleep(0.05)
    yield Memcached(f"127.0.0.1:{port}")
    _kill_group(proc.pid, 5, proc)


# ---- keystonemiddleware's own code, for keys and values -----------------------------------------
def ksm_crypt():
    from keystonemiddleware.auth_token import _memcache_crypt
    return _memcache_crypt


def ksm_key(token: str, strategy: str) -> tuple[str, dict]:
    """keystonemiddleware's SecureTokenCache._get_cache_key, through its own functions."""
    crypt = ksm_crypt()
    keys = crypt.derive_keys(token, SECRET, strategy)
    return "tokens/%s" % crypt.get_cache_key(keys), keys


# ---- the two middlewares -------------------------------------------------------------------------
def options(auth_url: str, memcached: Memcached, strategy: str) -> dict[str, str]:
    return {
        "www_authenticate_uri": auth_url, "auth_url": auth_url, "auth_type": "password",
        "username": "admin", "password": ADMIN_PASSWORD, "project_name": "admin",
        "user_domain_name": "Default", "project_domain_name": "Default",
        "interface": "public",
        "token_cache_time": str(TOKEN_CACHE_TIME),
        "memcached_servers": memcached.addr,
        "memcache_security_strategy": strategy,
        "memcache_secret_key": SECRET,
    }


class Fronts:
    def __init__(self, strategy: str, ksm: str, baton: str, identity) -> None:
        self.strategy = strategy
        self.ksm = ksm
        self.baton = baton
        self.identity = identity

    def get(self, url: str, token: str) -> requests.Response:
        return requests.get(url + "/anything", headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT)


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    t = start_baton(tmp_path_factory.mktemp("memcache-identity"))
    yield t
    t.server.stop()


@pytest.fixture(scope="module", params=["MAC", "ENCRYPT"])
def fronts(request, identity, memcached, tmp_path_factory) -> Iterator[Fronts]:
    require_venv()
    strategy = request.param
    d = tmp_path_factory.mktemp(f"memcache-{strategy}")
    opts = options(identity.auth_url, memcached, strategy)
    ksm_port = free_port()
    python = str(DEFAULT_VENV / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    ksm = spawn([python, str(Path(__file__).parent / "ksm_app.py"), str(ksm_port), json.dumps(opts)],
                d, ksm_port, "ksm_app")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy_port = free_port()
    lines = ["[authproxy]", f"listen = 127.0.0.1:{proxy_port}",
             f"upstream = http://127.0.0.1:{upstream.server_address[1]}", "", "[keystone_authtoken]"]
    lines += [f"{k} = {v}" for k, v in opts.items()]
    conf = d / "proxy.ini"
    conf.write_text("\n".join(lines) + "\n")
    proxy = spawn([str(baton_bin()), "authproxy", "--config", str(conf)], d, proxy_port, "authproxy")
    yield Fronts(strategy, f"http://127.0.0.1:{ksm_port}", f"http://127.0.0.1:{proxy_port}", identity)
    _kill_group(proxy.pid, 5, proxy)
    _kill_group(ksm.pid, 5, ksm)
    upstream.shutdown()
    upstream.server_close()


def admin_token(identity) -> str:
    return issue_token(identity.auth_url, PROJECT_SCOPE)[0]


def revoke(identity, token: str) -> None:
    r = revoke_token(identity.auth_url, admin_token(identity), token)
    assert r.status_code == 204, r.text
    # The identity server refuses it from now on.
    r = requests.get(identity.auth_url + "/auth/tokens", timeout=HTTP_TIMEOUT,
                     headers={"X-Auth-Token": admin_token(identity), "X-Subject-Token": token})
    assert r.status_code == 404, r.status_code


def assert_confirmed(r: requests.Response, who: str) -> None:
    assert r.status_code == 200, f"{who}: {r.status_code} {r.text[:300]}"
    seen = r.json()["headers"]
    assert seen.get("x-identity-status") == "Confirmed", seen
    assert seen.get("x-user-name") == "admin", seen
    assert "admin" in seen.get("x-roles", "").split(","), seen


# ---- the scenarios -------------------------------------------------------------------------------
def test_baton_uses_keystonemiddlewares_entries(fronts: Fronts, memcached: Memcached) -> None:
    token, _ = issue_token(fronts.identity.auth_url, PROJECT_SCOPE)
    assert_confirmed(fronts.get(fronts.ksm, token), "keystonemiddleware")
    key, keys = ksm_key(token, fronts.strategy)
    memcached.wait_for(key)
    revoke(fronts.identity, token)
    assert_confirmed(fronts.get(fronts.baton, token), "baton authproxy, from keystonemiddleware's entry")


def test_keystonemiddleware_uses_batons_entries(fronts: Fronts, memcached: Memcached) -> None:
    token, _ = issue_token(fronts.identity.auth_url, PROJECT_SCOPE)
    assert_confirmed(fronts.get(fronts.baton, token), "baton authproxy")
    key, keys = ksm_key(token, fronts.strategy)
    stored = memcached.wait_for(key)
    assert token.encode() not in stored, "the token is never stored"
    if fronts.strategy == "ENCRYPT":
        assert b"admin" not in stored, "encrypted"
    data = json.loads(ksm_crypt().unprotect_data(keys, stored))
    assert list(data) == ["token"], list(data)
    assert data["token"]["user"]["name"] == "admin"
    assert "auth_token" not in data["token"]
    revoke(fronts.identity, token)
    assert_confirmed(fronts.get(fronts.ksm, token), "keystonemiddleware, from Baton's entry")


def flip(value: bytes) -> bytes:
    i = len(value) - 3
    return value[:i] + (b"B" if value[i:i + 1] == b"A" else b"A") + value[i + 1:]


def test_tampered_entries_are_misses_on_both_sides(fronts: Fronts, memcached: Memcached) -> None:
    for first in (fronts.ksm, fronts.baton):
        token, _ = issue_token(fronts.identity.auth_url, PROJECT_SCOPE)
        assert_confirmed(fronts.get(first, token), first)
        key, _ = ksm_key(token, fronts.strategy)
        stored = memcached.wait_for(key)
        revoke(fronts.identity, token)
        memcached.set(key, flip(stored), ttl=TOKEN_CACHE_TIME)
        # The authproxy that validated the token keeps it in process (token_cache_time / 10);
        # keystonemiddleware, with memcached set, keeps nothing in process.
        readers = (fronts.baton, fronts.ksm) if first == fronts.ksm else (fronts.ksm,)
        for front in readers:
            r = fronts.get(front, token)
            assert r.status_code == 401, f"{front} used a tampered entry: {r.status_code} {r.text[:200]}"

    # Garbage for a valid token: both validate it again and let it through.
    token, _ = issue_token(fronts.identity.auth_url, PROJECT_SCOPE)
    key, _ = ksm_key(token, fronts.strategy)
    memcached.set(key, b"garbage-" * 20, ttl=TOKEN_CACHE_TIME)
    assert_confirmed(fronts.get(fronts.baton, token), "baton authproxy over garbage")
    memcached.set(key, b"garbage-" * 20, ttl=TOKEN_CACHE_TIME)
    assert_confirmed(fronts.get(fronts.ksm, token), "keystonemiddleware over garbage")


def test_authproxy_refuses_a_strategy_without_a_secret(identity, memcached: Memcached, tmp_path) -> None:
    opts = options(identity.auth_url, memcached, "ENCRYPT")
    del opts["memcache_secret_key"]
    conf = tmp_path / "proxy.ini"
    conf.write_text("\n".join(["[authproxy]", f"listen = 127.0.0.1:{free_port()}", "upstream = http://127.0.0.1:9",
                               "", "[keystone_authtoken]"] + [f"{k} = {v}" for k, v in opts.items()]) + "\n")
    r = subprocess.run([str(baton_bin()), "authproxy", "--config", str(conf)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if "memcache_secret_key" in ln]
    assert lines and "[keystone_authtoken]" in lines[0], r.stderr
