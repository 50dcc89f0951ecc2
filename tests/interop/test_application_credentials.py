"""Application credentials with Keystone 30 and Baton on one database and one key repository.

A credential created on either server authenticates on both (keystoneauth1's
``v3applicationcredential`` plugin, by id and by name), its tokens validate on both with the same
fields, and the create/list/show/delete API answers the same requests with the same statuses and
body keys (owner, another user, bad input) on both.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import requests
from keystoneauth1 import loading, session

from interop_util import USER_PASSWORD as USER_PW
from interop_util import (HTTP_TIMEOUT, api, make_user, project_id, role_id, token_essentials,
                          validate_token)



def user_token(t, name: str) -> str:
    token, _ = t.issue({"project": {"name": "admin", "domain": {"id": "default"}}}, username=name,
                       password=USER_PW)
    return token


def app_cred_session(t, **kw) -> session.Session:
    loader = loading.get_plugin_loader("v3applicationcredential")
    return session.Session(auth=loader.load_from_options(auth_url=t.auth_url, **kw))


def cred_keys(body: dict) -> set:
    return set(body["application_credential"])


@pytest.mark.parametrize("creator", ["keystone", "baton"])
def test_credential_authenticates_on_both(pair, creator):
    src = getattr(pair, creator)
    admin, _ = src.issue()
    uid, name = make_user(src, admin, f"ac-{creator}")
    owner = user_token(src, name)
    r = api(src, "POST", f"users/{uid}/application_credentials", owner,
            {"application_credential": {"name": "cross", "description": "interop"}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    logins = {
        "id": dict(application_credential_id=cred["id"], application_credential_secret=cred["secret"]),
        "name": dict(application_credential_name="cross", application_credential_secret=cred["secret"],
                     username=name, user_domain_id="default"),
    }
    for t in pair.both():
        for how, kw in logins.items():
            token = app_cred_session(t, **kw).get_token()
            assert token.startswith("gAAAAA"), f"{t.name} by {how}"
            seen = {}
            for v in pair.both():
                caller, _ = v.issue()
                resp = validate_token(v.auth_url, caller, token)
                assert resp.status_code == 200, f"{v.name} validating {t.name}'s token: {resp.text[:300]}"
                body = resp.json()["token"]
                assert body["methods"] == ["application_credential"]
                assert body["application_credential"] == {"id": cred["id"], "name": "cross", "restricted": True}
                seen[v.name] = token_essentials(resp.json())
            k, b = seen["keystone"], seen["baton"]
            assert {f: (k[f], b[f]) for f in k if k[f] != b[f]} == {}, f"issued by {t.name}, by {how}"
            assert {n for _, n in k["roles"]} == {"member", "reader"}

    # Deleted on the other server: its tokens stop validating on both at once (cached or not),
    # logins fail on both.
    other = pair.baton if creator == "keystone" else pair.keystone
    token = app_cred_session(src, **logins["id"]).get_token()
    for v in pair.both():  # validated (and cached) before the delete
        caller, _ = v.issue()
        assert validate_token(v.auth_url, caller, token).status_code == 200
    other_admin, _ = other.issue()
    r = api(other, "DELETE", f"users/{uid}/application_credentials/{cred['id']}", other_admin)
    assert r.status_code == 204, r.text
    for v in pair.both():
        caller, _ = v.issue()
        assert validate_token(v.auth_url, caller, token).status_code == 404, v.name
        r = requests.post(f"{v.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}})
        assert r.status_code in (401, 404), f"{v.name}: {r.status_code}"


def crud_statuses(t) -> dict:
    """The same requests against one server: status and body keys of each."""
    admin, _ = t.issue()
    uid, name = make_user(t, admin, f"crud-{t.name}")
    oid, oname = make_user(t, admin, f"other-{t.name}")
    owner = user_token(t, name)
    other = user_token(t, oname)
    base = f"users/{uid}/application_credentials"
    out = {}

    def rec(label, r):
        keys = None
        if r.content and r.headers.get("content-type", "").startswith("application/json"):
            j = r.json()
            keys = {k: sorted(v) if isinstance(v, dict) else None for k, v in j.items()}
        out[label] = (r.status_code, keys)
        return r

    future = (dt.datetime.utcnow() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    r = rec("create", api(t, "POST", base, owner, {"application_credential": {
        "name": "c1", "expires_at": future, "roles": [{"name": "member"}]}}))
    cid = r.json()["application_credential"]["id"]
    out["create-roles"] = sorted(x["name"] for x in r.json()["application_credential"]["roles"])
    c2 = rec("create-rules", api(t, "POST", base, owner, {"application_credential": {
        "name": "c2", "access_rules": [{"service": "compute", "path": "/v2.1/servers", "method": "GET"}]}}))
    c2 = c2.json()["application_credential"]
    ruled = requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": c2["id"], "secret": c2["secret"]}}}})
    rec("login-rules", ruled)
    ruled = ruled.headers["X-Subject-Token"]
    for header in (None, "0.9", "1", "1.0"):
        h = {"X-Auth-Token": admin, "X-Subject-Token": ruled}
        if header:
            h["OpenStack-Identity-Access-Rules"] = header
        rec(f"validate-rules-{header}", requests.get(f"{t.auth_url}/auth/tokens", headers=h, timeout=HTTP_TIMEOUT))
    rec("rules-token-as-caller", api(t, "GET", base, ruled))
    rec("list", api(t, "GET", base, owner))
    rec("list-name", api(t, "GET", base + "?name=c1", owner))
    rec("show", api(t, "GET", f"{base}/{cid}", owner))
    rec("show-admin", api(t, "GET", f"{base}/{cid}", admin))
    rec("show-other", api(t, "GET", f"{base}/{cid}", other))
    rec("show-other-own-path", api(t, "GET", f"users/{oid}/application_credentials/{cid}", other))
    rec("list-other", api(t, "GET", base, other))
    rec("create-for-other", api(t, "POST", base, other, {"application_credential": {"name": "x"}}))
    rec("unassigned-role", api(t, "POST", base, owner, {"application_credential": {
        "name": "x", "roles": [{"name": "admin"}]}}))
    rec("past-expiry", api(t, "POST", base, owner, {"application_credential": {
        "name": "x", "expires_at": "2001-01-01T00:00:00"}}))
    rec("duplicate", api(t, "POST", base, owner, {"application_credential": {"name": "c1"}}))
    rec("no-name", api(t, "POST", base, owner, {"application_credential": {"description": "d"}}))
    rec("scope-requested", requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {
        "identity": {"methods": ["application_credential"],
                     "application_credential": {"id": cid, "secret": "x"}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
    login = requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cid, "secret": r.json()["application_credential"]["secret"]}}}})
    rec("login", login)
    ac_token = login.headers["X-Subject-Token"]
    rec("exchange", requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": ac_token}}}}))
    rec("restricted-create", api(t, "POST", base, ac_token, {"application_credential": {"name": "y"}}))
    rec("wrong-secret", requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {
        "identity": {"methods": ["application_credential"],
                     "application_credential": {"id": cid, "secret": "wrong"}}}}))
    rec("access-rules", api(t, "GET", f"users/{uid}/access_rules", owner))
    rec("access-rules-other", api(t, "GET", f"users/{uid}/access_rules", other))
    rec("delete-other", api(t, "DELETE", f"{base}/{cid}", other))
    rec("delete", api(t, "DELETE", f"{base}/{cid}", owner))
    rec("show-deleted", api(t, "GET", f"{base}/{cid}", owner))
    rec("delete-deleted", api(t, "DELETE", f"{base}/{cid}", owner))
    return out


def test_crud_matches_keystone(pair):
    k = crud_statuses(pair.keystone)
    b = crud_statuses(pair.baton)
    diff = {label: (k[label], b.get(label)) for label in k if k[label] != b.get(label)}
    assert not diff, f"(keystone, baton) per request: {diff}"
