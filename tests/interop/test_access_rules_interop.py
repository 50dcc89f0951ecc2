"""Application-credential access rules enforced on the receiving side, four ways at once:
the REAL keystonemiddleware (ksm_app.py) and ``baton authproxy``, each validating against the
REAL Keystone 30 and against Baton, which share one database and one key repository.

One credential (made on Baton, so Keystone serves Baton's row) is restricted to ``GET
/v2.1/servers``, ``GET /v2.1/servers/*`` and ``POST /v2.1/servers/{id}/action`` on ``compute``;
every middleware has ``service_type = compute``. All four must give the same status for every
request in ``CASES``. Then the one place Baton differs on purpose: under
``delay_auth_decision`` keystonemiddleware lets a restricted token past its rules whenever
anything at all is in ``X-Service-Token`` (bug 2129016), and Baton does only for a valid service
token holding a service role.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests

from baton_process import baton_bin
from conftest import start_pair
from keystone_oracle import DEFAULT_VENV, _kill_group, free_port
from test_authtoken_interop import spawn

HTTP_TIMEOUT = 30
PW = "Rules-User-Pw-5520"
GARBAGE = "gAAAAABgarbage-not-a-token-0123456789"
RULES = [
    {"service": "compute", "method": "GET", "path": "/v2.1/servers"},
    {"service": "compute", "method": "GET", "path": "/v2.1/servers/*"},
    {"service": "compute", "method": "POST", "path": "/v2.1/servers/{server_id}/action"},
]
# (token, method, path, service token or None, status)
CASES = [
    ("ruled", "GET", "/v2.1/servers", None, 200),
    ("ruled", "GET", "/v2.1/servers/abc", None, 200),
    ("ruled", "POST", "/v2.1/servers/abc/action", None, 200),
    ("ruled", "POST", "/v2.1/servers", None, 401),
    ("ruled", "GET", "/v2.1/servers/abc/os-interface", None, 401),
    ("ruled", "DELETE", "/v2.1/servers/abc", None, 401),
    ("ruled", "POST", "/v2.1/servers", "nova", 200),
    ("ruled", "POST", "/v2.1/servers", "garbage", 401),
    ("plain", "POST", "/v2.1/servers", None, 200),
]


def api(auth_url: str, method: str, path: str, token: str, body=None) -> requests.Response:
    return requests.request(method, f"{auth_url}/{path}", headers={"X-Auth-Token": token}, json=body,
                            timeout=HTTP_TIMEOUT)


def login(auth_url: str, identity: dict, scope: Optional[dict] = None) -> str:
    auth: dict = {"identity": identity}
    if scope:
        auth["scope"] = scope
    r = requests.post(f"{auth_url}/auth/tokens", json={"auth": auth}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def password(name: str) -> dict:
    return {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": PW}}}


class Cloud:
    """The pair, with `nova` (role service on project admin: the middlewares' own user and the
    service token), `alice` (member) and alice's restricted credential, all made on Baton."""

    def __init__(self, pair) -> None:
        self.pair = pair
        b = pair.baton.auth_url
        admin, _ = pair.baton.issue()
        pid = api(b, "GET", "projects?name=admin", admin).json()["projects"][0]["id"]
        r = api(b, "POST", "roles", admin, {"role": {"name": "service"}})
        assert r.status_code in (201, 409), r.text
        role = {x["name"]: x["id"] for x in api(b, "GET", "roles", admin).json()["roles"]}
        self.names = {}
        for who, rname in (("nova", "service"), ("alice", "member")):
            name = f"{who}-{uuid.uuid4().hex[:6]}"
            r = api(b, "POST", "users", admin, {"user": {"name": name, "password": PW, "domain_id": "default"}})
            assert r.status_code == 201, r.text
            uid = r.json()["user"]["id"]
            assert api(b, "PUT", f"projects/{pid}/users/{uid}/roles/{role[rname]}", admin).status_code == 204
            self.names[who] = (name, uid)
        r = api(b, "POST", "services", admin, {"service": {"type": "compute", "name": "nova"}})
        assert r.status_code == 201, r.text
        r = api(b, "POST", "endpoints", admin, {"endpoint": {
            "service_id": r.json()["service"]["id"], "interface": "public", "region_id": "RegionOne",
            "url": "http://compute.example/v2.1"}})
        assert r.status_code == 201, r.text
        scope = {"project": {"id": pid}}
        alice = login(b, password(self.names["alice"][0]), scope)
        r = api(b, "POST", f"users/{self.names['alice'][1]}/application_credentials", alice,
                {"application_credential": {"name": "ruled", "access_rules": RULES}})
        assert r.status_code == 201, r.text
        cred = r.json()["application_credential"]
        self.tokens = {
            "plain": alice,
            "ruled": login(b, {"methods": ["application_credential"], "application_credential": {
                "id": cred["id"], "secret": cred["secret"]}}),
            "nova": login(b, password(self.names["nova"][0]), scope),
            "garbage": GARBAGE,
        }

    def options(self, auth_url: str, **extra: str) -> dict[str, str]:
        return {
            "www_authenticate_uri": auth_url, "auth_url": auth_url, "auth_type": "password",
            "username": self.names["nova"][0], "password": PW, "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default",
            "interface": "public", "service_token_roles": "service",
            "service_token_roles_required": "true", "token_cache_time": "-1",
            "include_service_catalog": "true", "service_type": "compute", **extra,
        }


class Echo(BaseHTTPRequestHandler):
    """The authproxy's upstream: 200 with the X-* headers it received, for any method."""

    def answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        seen = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-")}
        body = json.dumps({"headers": seen}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = answer  # noqa: N815 (http.server's naming)

    def log_message(self, *args) -> None:
        pass


class Fronts:
    """Every middleware process started for a test, stopped at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs = []
        self.upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()

    def ksm(self, options: dict[str, str]) -> str:
        port = free_port()
        python = str(DEFAULT_VENV / "bin" / "python")
        if not Path(python).exists():
            python = sys.executable
        d = self.workdir / f"ksm-{port}"
        d.mkdir()
        self.procs.append(spawn([python, str(Path(__file__).parent / "ksm_app.py"), str(port),
                                 json.dumps(options)], d, port, "ksm_app"))
        return f"http://127.0.0.1:{port}"

    def authproxy(self, options: dict[str, str]) -> str:
        port = free_port()
        d = self.workdir / f"authproxy-{port}"
        d.mkdir()
        lines = ["[authproxy]", f"listen = 127.0.0.1:{port}",
                 f"upstream = http://127.0.0.1:{self.upstream.server_address[1]}", "upstream_timeout = 10",
                 "", "[keystone_authtoken]"] + [f"{k} = {v}" for k, v in options.items()]
        (d / "proxy.ini").write_text("\n".join(lines) + "\n")
        self.procs.append(spawn([str(baton_bin()), "authproxy", "--config", str(d / "proxy.ini")], d, port,
                                "authproxy"))
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for p in self.procs:
            _kill_group(p.pid, 5, p)
        self.upstream.shutdown()
        self.upstream.server_close()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[tuple[Cloud, Fronts]]:
    pair = start_pair(tmp_path_factory.mktemp("pair-access-rules"), "baton")
    try:
        c = Cloud(pair)
        fronts = Fronts(tmp_path_factory.mktemp("access-rules"))
    except BaseException:
        pair.stop()
        raise
    yield c, fronts
    fronts.stop()
    pair.stop()


def call(url: str, cloud: Cloud, token: str, method: str, path: str, service: Optional[str]) -> requests.Response:
    headers = {"X-Auth-Token": cloud.tokens[token]}
    if service:
        headers["X-Service-Token"] = cloud.tokens[service]
    return requests.request(method, url + path, headers=headers, timeout=HTTP_TIMEOUT)


def test_every_middleware_gives_the_same_outcomes(cloud) -> None:
    c, fronts = cloud
    urls = {}
    for side in ("keystone", "baton"):
        opts = c.options(getattr(c.pair, side).auth_url)
        urls[f"keystonemiddleware->{side}"] = fronts.ksm(opts)
        urls[f"baton authproxy->{side}"] = fronts.authproxy(opts)
    for token, method, path, service, want in CASES:
        got = {name: call(url, c, token, method, path, service).status_code for name, url in urls.items()}
        assert set(got.values()) == {want}, f"{token} {method} {path} service={service}: {got}"


def test_only_a_service_role_lifts_the_rules(cloud) -> None:
    """keystonemiddleware bug 2129016, kept by keystonemiddleware 13 and fixed in Baton."""
    c, fronts = cloud
    opts = c.options(c.pair.baton.auth_url, delay_auth_decision="true")
    ksm, proxy = fronts.ksm(opts), fronts.authproxy(opts)
    r = call(ksm, c, "ruled", "POST", "/v2.1/servers", "garbage")
    assert r.status_code == 200
    assert r.json()["headers"]["x-identity-status"] == "Confirmed", "keystonemiddleware's bypass"
    r = call(proxy, c, "ruled", "POST", "/v2.1/servers", "garbage")
    assert r.status_code == 200
    assert r.json()["headers"]["x-identity-status"] == "Invalid", r.text
    # A chain of calls is allowed by both.
    for url in (ksm, proxy):
        r = call(url, c, "ruled", "POST", "/v2.1/servers", "nova")
        assert r.json()["headers"]["x-identity-status"] == "Confirmed", (url, r.text)
