"""baton-client (Rust) against the REAL Keystone 30 and the REAL keystonemiddleware 13.

The Rust side is the example `crates/baton-client/examples/keystone_interop.rs` (built by
`cargo build --workspace --all-targets`; BATON_CLIENT_INTEROP overrides its path): given the URLs,
passwords and two user tokens it authenticates, reads the catalog, validates tokens and calls an
app behind keystonemiddleware, and prints what it saw as JSON. This file starts Keystone the way
test_authtoken_interop.py does — a main server and a second one on the same database and keys
whose tokens live EXPIRING seconds, for a user token that has expired — plus keystonemiddleware
(ksm_app.py) validating against it, and checks the observations against Keystone's own answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from interop_util import ADMIN_PASSWORD, issue_token
from keystone_oracle import DEFAULT_VENV, REPO_ROOT, _kill_group, free_port
from test_authtoken_interop import (  # noqa: F401  (keystone_side is a fixture used below)
    NOVA_PW, PLAIN_PW, Side, keystone_side, middleware_options, spawn)


def client_binary() -> Path:
    default = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target")) / "debug" / "examples" / "keystone_interop"
    return Path(os.environ.get("BATON_CLIENT_INTEROP", default))


@pytest.fixture(scope="module")
def observed(keystone_side: Side, tmp_path_factory) -> Iterator[dict]:
    exe = client_binary()
    if not exe.exists():
        pytest.skip(f"{exe} not built (cargo build -p baton-client --examples)")
    d = tmp_path_factory.mktemp("ksm-keystone")
    port = free_port()
    python = str(DEFAULT_VENV / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    # Tokens are validated on every request, so what the middleware decides is Keystone's answer.
    proc = spawn([python, str(Path(__file__).parent / "ksm_app.py"), str(port),
                  json.dumps(middleware_options(keystone_side.auth_url))], d, port, "ksm_app")
    try:
        keystone_side.mint()
        scenario = {
            "auth_url": keystone_side.auth_url,
            "root_url": keystone_side.main.url,
            "ksm_url": f"http://127.0.0.1:{port}",
            "admin_password": ADMIN_PASSWORD,
            "nova_password": NOVA_PW,
            "plain_password": PLAIN_PW,
            "fresh_user_token": keystone_side.tokens["fresh_user"],
            "expired_user_token": keystone_side.tokens["expired_user"],
        }
        r = subprocess.run([str(exe), json.dumps(scenario)], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, env={**os.environ, "RUST_BACKTRACE": "1"})
        assert r.returncode == 0, f"keystone_interop failed rc={r.returncode}\n{r.stderr[-3000:]}"
        for secret in (ADMIN_PASSWORD, NOVA_PW, PLAIN_PW, scenario["fresh_user_token"]):
            assert secret not in r.stdout and secret not in r.stderr
        yield json.loads(r.stdout)
    finally:
        _kill_group(proc.pid, 5, proc)


def test_password_auth_and_catalog(observed, keystone_side):
    _, body = issue_token(keystone_side.auth_url)
    t = body["token"]
    pw = observed["password"]
    assert pw["user_id"] == t["user"]["id"] and pw["user_name"] == "admin"
    assert pw["project_id"] == t["project"]["id"] and pw["project_name"] == "admin"
    assert sorted(pw["roles"]) == sorted(r["name"] for r in t["roles"])
    assert pw["methods"] == ["password"]
    assert pw["identity_public"] == keystone_side.auth_url
    assert pw["identity_nowhere"] is None
    assert pw["session_identity"] == keystone_side.auth_url
    assert pw["catalog_types"] == [s["type"] for s in t["catalog"]]
    # Version discovery from the root URL finds the same v3 API and project.
    assert observed["generic"]["project_id"] == t["project"]["id"]
    assert observed["scopes"] == {"system": True, "unscoped_is_scoped": False, "unscoped_catalog": 0}
    wrong = observed["wrong_password"]
    assert wrong["error"] == "AuthenticationFailed" and ": 401 " in wrong["message"], wrong


def test_token_validation_by_the_service_user(observed):
    v = observed["validate"]
    assert v["fresh"] == "admin"
    assert v["expired"]["error"] == "TokenNotFound", v
    assert v["expired_allowed"] == "admin"


def test_service_token_wrapper_through_keystonemiddleware(observed):
    k = observed["ksm"]
    fresh = k["fresh_user_only"]
    assert fresh["status"] == 200 and fresh["headers"]["x-user-name"] == "admin", fresh
    assert "x-service-identity-status" not in fresh["headers"]
    expired = k["expired_user_only"]
    assert expired["error"] == "Unauthorized" and expired["service_token_sent"] is False, expired
    # keystonemiddleware does not say which token it refused; the client says so.
    assert "401 Unauthorized: the token (X-Auth-Token) was refused" in expired["message"], expired
    ok = k["expired_user+service"]
    assert ok["status"] == 200, ok
    h = ok["headers"]
    assert h["x-identity-status"] == "Confirmed" and h["x-service-identity-status"] == "Confirmed", h
    assert "service" in h["x-service-roles"].split(",") and h["x-service-user-name"] == "nova", h
    assert h["x-user-name"] == "admin", h
    bad = k["expired_user+nonservice"]
    assert bad["error"] == "Unauthorized" and bad["service_token_sent"] is True, bad
    assert "receiver did not say which token" in bad["message"], bad


def test_service_user_start_up_check(observed):
    su = observed["service_user"]
    assert su["nova"]["user"] == "nova" and "service" in su["nova"]["roles"], su
    assert su["plain"]["error"] == "Startup" and "service user plain" in su["plain"]["message"], su
    assert "but none of [service]" in su["plain"]["message"], su
    assert su["wrong_url"]["error"] == "Startup", su
    assert "cannot authenticate the service user" in su["wrong_url"]["message"], su


def test_os_environment(observed, keystone_side):
    _, body = issue_token(keystone_side.auth_url)
    assert observed["os_env"]["project_id"] == body["token"]["project"]["id"]
    assert observed["os_env"]["identity"] == keystone_side.auth_url
