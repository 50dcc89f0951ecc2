"""Small helpers shared by the interop tests: raw Keystone v3 REST calls and DB tweaks."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import requests

HTTP_TIMEOUT = 30  # seconds; every request is bounded

ADMIN_PASSWORD = "adminpass"
PROJECT_SCOPE = {"project": {"name": "admin", "domain": {"name": "Default"}}}
SYSTEM_SCOPE = {"system": {"all": True}}
DOMAIN_SCOPE = {"domain": {"id": "default"}}
UNSCOPED = "unscoped"
SCOPES = {"project": PROJECT_SCOPE, "system": SYSTEM_SCOPE, "domain": DOMAIN_SCOPE, "unscoped": UNSCOPED}


@dataclass
class Target:
    """A running identity server (Baton or the real Keystone) bootstrapped with admin/adminpass."""

    name: str
    auth_url: str  # http://127.0.0.1:PORT/v3
    db_path: Path
    admin_password: str = ADMIN_PASSWORD
    server: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.auth_url[: -len("/v3")]

    def issue(self, scope: Union[dict, str, None] = PROJECT_SCOPE, *, username: str = "admin",
              password: Optional[str] = None, nocatalog: bool = False) -> tuple[str, dict]:
        return issue_token(self.auth_url, scope, username=username,
                           password=self.admin_password if password is None else password,
                           nocatalog=nocatalog)

    def validate(self, subject: str, caller: Optional[str] = None, **kw) -> requests.Response:
        if caller is None:
            caller, _ = self.issue()
        return validate_token(self.auth_url, caller, subject, **kw)

    def __str__(self) -> str:  # shows up in assertion messages
        return f"{self.name}@{self.auth_url}"


def password_body(username: str, password: str, scope: Union[dict, str, None]) -> dict:
    auth: dict = {"identity": {"methods": ["password"], "password": {"user": {
        "name": username, "domain": {"name": "Default"}, "password": password}}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def issue_token(auth_url: str, scope: Union[dict, str, None] = PROJECT_SCOPE, *, username: str = "admin",
                password: str = ADMIN_PASSWORD, nocatalog: bool = False) -> tuple[str, dict]:
    r = requests.post(auth_url + "/auth/tokens" + ("?nocatalog" if nocatalog else ""),
                      json=password_body(username, password, scope), timeout=HTTP_TIMEOUT)
    assert r.status_code == 201, f"POST {auth_url}/auth/tokens -> {r.status_code}: {r.text[:500]}"
    tok = r.headers.get("X-Subject-Token")
    assert tok, f"no X-Subject-Token from {auth_url}"
    return tok, r.json()


def validate_token(auth_url: str, caller: str, subject: str, *, allow_expired: bool = False,
                   nocatalog: bool = False, method: str = "GET") -> requests.Response:
    params = []
    if nocatalog:
        params.append("nocatalog")
    if allow_expired:
        params.append("allow_expired=1")
    url = auth_url + "/auth/tokens" + ("?" + "&".join(params) if params else "")
    return requests.request(method, url, timeout=HTTP_TIMEOUT,
                            headers={"X-Auth-Token": caller, "X-Subject-Token": subject})


def revoke_token(auth_url: str, caller: str, subject: str) -> requests.Response:
    return requests.delete(auth_url + "/auth/tokens", timeout=HTTP_TIMEOUT,
                           headers={"X-Auth-Token": caller, "X-Subject-Token": subject})


def parse_ts(s: str) -> dt.datetime:
    """Keystone timestamps ('2026-11-22T11:33:43.000000Z') and OSC ones ('...T11:33:43+0000')."""
    s = s.replace("Z", "+00:00")
    if len(s) >= 5 and s[-5] in "+-" and s[-3] != ":":
        s = s[:-2] + ":" + s[-2:]
    v = dt.datetime.fromisoformat(s)
    return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)


def grant_admin_on_default_domain(db_path: Path) -> None:
    """Insert a UserDomain assignment (admin user, admin role, domain default) straight into the
    keystone-schema sqlite DB, so domain-scoped tokens can be issued (bootstrap only grants the
    project and the system). Must run while no server has the assignment cached."""
    con = sqlite3.connect(db_path, timeout=10)
    try:
        row = con.execute("SELECT user_id FROM local_user WHERE name='admin' AND domain_id='default'").fetchone()
        assert row, f"no admin user in {db_path}"
        uid = row[0]
        row = con.execute("SELECT id FROM role WHERE name='admin' AND domain_id='<<null>>'").fetchone()
        assert row, f"no global admin role in {db_path}"
        rid = row[0]
        con.execute("INSERT OR IGNORE INTO assignment (type, actor_id, target_id, role_id, inherited) "
                    "VALUES ('UserDomain', ?, 'default', ?, 0)", (uid, rid))
        con.commit()
    finally:
        con.close()


def normalize_catalog(catalog: Optional[list]) -> list:
    out = []
    for svc in catalog or []:
        for ep in svc.get("endpoints", []):
            out.append((svc.get("type"), svc.get("name"), ep.get("interface"), ep.get("region_id"), ep.get("url")))
    return sorted(out)


def token_essentials(body: dict) -> dict:
    """The fields of a validated token that both implementations must agree on."""
    t = body["token"]
    return {
        "user": t.get("user"),
        "methods": t.get("methods"),
        "audit_ids": t.get("audit_ids"),
        "expires_at": t.get("expires_at"),
        "issued_at": t.get("issued_at"),
        "project": t.get("project"),
        "domain": t.get("domain"),
        "system": t.get("system"),
        "is_domain": t.get("is_domain"),
        "roles": sorted((r["id"], r["name"]) for r in t.get("roles", [])) if "roles" in t else None,
        "catalog": normalize_catalog(t.get("catalog")) if "catalog" in t else None,
    }


# ---- admin API helpers shared by the delegation tests ------------------------------------------
USER_PASSWORD = "Interop-User-Pw-7731"  # the password of every user make_user creates


def api(t: Target, method: str, path: str, token: str, body=None) -> requests.Response:
    """One admin API request to `t` (`path` under /v3) with `token`."""
    return requests.request(method, f"{t.auth_url}/{path}", headers={"X-Auth-Token": token},
                            json=body, timeout=HTTP_TIMEOUT)


def project_id(t: Target, token: str, name: str = "admin") -> str:
    r = api(t, "GET", f"projects?name={name}", token)
    assert r.status_code == 200, r.text
    return r.json()["projects"][0]["id"]


def role_id(t: Target, token: str, name: str) -> str:
    r = api(t, "GET", f"roles?name={name}", token)
    assert r.status_code == 200, r.text
    return r.json()["roles"][0]["id"]


def make_user(t: Target, admin: str, prefix: str, roles=("member",)) -> tuple[str, str]:
    """A user of the default domain (password USER_PASSWORD) holding `roles` on the admin
    project: (id, name)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    r = api(t, "POST", "users", admin, {"user": {"name": name, "password": USER_PASSWORD,
                                                  "domain_id": "default"}})
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    pid = project_id(t, admin)
    for role in roles:
        r = api(t, "PUT", f"projects/{pid}/users/{uid}/roles/{role_id(t, admin, role)}", admin)
        assert r.status_code == 204, r.text
    return uid, name
