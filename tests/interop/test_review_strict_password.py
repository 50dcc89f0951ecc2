"""Security review 2026-12, finding #11: `[DEFAULT] strict_password_check`, asked of Baton and the
real Keystone 30.

Keystone (`password_hashing.verify_length_and_trunc_password`) truncates a password longer than
the hashing limit (`[identity] max_password_length`, and at most 72 bytes for bcrypt) unless
`strict_password_check` is true; then hashing it (user create, update, self-service change)
and checking it (authentication, the original password of a change) refuse it with
PasswordVerificationError. Both servers run with the option on and get the same requests; the
statuses and messages must match. A second pair runs with the option off (truncation).

Authentication with a password over the limit is refused with 403 as in Keystone, but for every
user alike (Keystone answers 401 for an unknown user, which tells user ids apart).
"""

from __future__ import annotations

from typing import Iterator, Optional

import pytest
import requests

from conftest import start_configured_pair
from interop_util import HTTP_TIMEOUT, PROJECT_SCOPE, Target

AT_LIMIT = "p" * 71 + "9"  # 72 bytes: bcrypt's limit
OVER = "p" * 71 + "9X"  # 73 bytes
OVER_MULTIBYTE = "é" * 37  # 37 characters, 74 bytes: the limit counts bytes


@pytest.fixture(scope="module", params=[True, False], ids=["strict", "truncating"])
def servers(request, tmp_path_factory, keystone_template) -> Iterator[tuple[bool, tuple[Target, Target]]]:
    conf = {"DEFAULT": {"strict_password_check": "true" if request.param else "false"}}
    pair = start_configured_pair(tmp_path_factory.mktemp("strict-password"), keystone_template, conf)
    yield request.param, pair
    for t in pair:
        t.server.stop()


def call(t: Target, method: str, path: str, token: Optional[str], body: Optional[dict] = None) -> tuple:
    headers = {"X-Auth-Token": token} if token else {}
    r = requests.request(method, t.auth_url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT)
    message = None
    if r.status_code >= 400 and r.content:
        message = r.json()["error"]["message"]
    return r.status_code, message, (r.json() if r.status_code < 300 and r.content else None)


def login(t: Target, user_id: str, password: str) -> int:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": user_id, "password": password}}}}}
    return requests.post(t.auth_url + "/auth/tokens", json=body, timeout=HTTP_TIMEOUT).status_code


def scenario(t: Target) -> list:
    """Every password path with passwords at, over and (in bytes) over the limit."""
    admin, _ = t.issue(PROJECT_SCOPE)
    out: list = []

    def note(label: str, result: tuple) -> None:
        out.append((label, result[0], result[1]))

    for name, pw in (("at-limit", AT_LIMIT), ("over", OVER), ("multibyte", OVER_MULTIBYTE)):
        r = call(t, "POST", "/users", admin, {"user": {"name": f"sp-{name}", "password": pw}})
        note(f"create {name}", r)
        if r[0] == 201:
            uid = r[2]["user"]["id"]
            out.append((f"login {name} as given", login(t, uid, pw)))
            out.append((f"login {name} truncated to 72 bytes", login(t, uid, pw.encode()[:72].decode(errors="ignore"))))
    # A user with a password at the limit, then every way to set or check a longer one.
    r = call(t, "POST", "/users", admin, {"user": {"name": "sp-paths", "password": AT_LIMIT}})
    uid = r[2]["user"]["id"]
    note("update over", call(t, "PATCH", f"/users/{uid}", admin, {"user": {"password": OVER}}))
    out.append(("login after update, at-limit", login(t, uid, AT_LIMIT)))
    note("update at-limit", call(t, "PATCH", f"/users/{uid}", admin, {"user": {"password": AT_LIMIT}}))
    note("change to over", call(t, "POST", f"/users/{uid}/password", None,
                                {"user": {"original_password": AT_LIMIT, "password": OVER}}))
    note("change from over", call(t, "POST", f"/users/{uid}/password", None,
                                  {"user": {"original_password": OVER, "password": "n3w-Passw0rd"}}))
    out.append(("login at-limit", login(t, uid, AT_LIMIT)))
    return out


def test_strict_password_check_matches_keystone(servers) -> None:
    strict, (keystone, baton) = servers
    want = scenario(keystone)
    got = scenario(baton)
    diff = [f"{w}  !=  {g}" for w, g in zip(want, got) if w != g]
    assert not diff and len(want) == len(got), "keystone != baton:\n" + "\n".join(diff)
    if strict:
        assert ("create over", 403,
                "The password length must be less than or equal to 72. The server could not comply "
                "with the request because the password is invalid.") in want


def test_strict_login_refuses_an_over_long_password(servers) -> None:
    """Keystone 30 refuses the login (403, PasswordVerificationError) of a user whose password
    matches the first 72 bytes of the one sent, and so does Baton. (Keystone answers 401 for an
    unknown user, which tells user ids apart; Baton answers 403 to both.)"""
    strict, pair = servers
    if not strict:
        pytest.skip("strict_password_check only")
    got = {}
    for t in pair:
        admin, _ = t.issue(PROJECT_SCOPE)
        r = call(t, "POST", "/users", admin, {"user": {"name": "sp-login", "password": AT_LIMIT}})
        uid = r[2]["user"]["id"]
        got[t.name] = (login(t, uid, AT_LIMIT), login(t, uid, OVER))
    assert got["keystone"] == (201, 403)
    assert got["baton"] == got["keystone"]
    baton = next(t for t in pair if t.name == "baton")
    assert login(baton, "0" * 32, OVER) == 403, "an unknown user gets the same answer"
