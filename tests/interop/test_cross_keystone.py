"""Baton and the real Keystone sharing ONE sqlite database and ONE Fernet key repository.

Both directions (fixture ``pair``): Keystone initializes (db_sync, fernet_setup, bootstrap) and
Baton only serves; Baton initializes and Keystone only serves. Each server must accept the
other's tokens and agree on every field of the validation response, honour the other's
revocations, and treat expired tokens the same way (404, or 200 with ?allow_expired=1).
"""

from __future__ import annotations

import time

import pytest
import requests

from interop_util import SCOPES, issue_token, parse_ts, revoke_token, token_essentials, validate_token


def validate_everywhere(pair, subject: str, **kw) -> dict:
    """Validate `subject` on both servers (callers are fresh admin tokens from each server)."""
    out = {}
    for t in pair.both():
        caller, _ = t.issue()
        r = validate_token(t.auth_url, caller, subject, **kw)
        out[t.name] = r
    return out


def assert_same_token(pair, responses: dict, issuer: str) -> dict:
    for name, r in responses.items():
        assert r.status_code == 200, f"{name} could not validate a token issued by {issuer}: {r.status_code} {r.text[:300]}"
        assert r.headers.get("X-Subject-Token"), f"{name}: no X-Subject-Token echoed"
    ess = {name: token_essentials(r.json()) for name, r in responses.items()}
    k, b = ess["keystone"], ess["baton"]
    diff = {f: (k[f], b[f]) for f in k if k[f] != b[f]}
    assert not diff, f"keystone vs baton disagree on a token issued by {issuer} (field: (keystone, baton)): {diff}"
    return k


@pytest.mark.parametrize("scope", ["project", "domain", "system", "unscoped"])
@pytest.mark.parametrize("issuer", ["keystone", "baton"])
def test_cross_validate(pair, issuer, scope):
    src = getattr(pair, issuer)
    token, issue_body = src.issue(SCOPES[scope])
    assert token.startswith("gAAAAA")
    ess = assert_same_token(pair, validate_everywhere(pair, token), issuer)
    # and both agree with what the issuer said at issue time
    issued = token_essentials(issue_body)
    assert ess["user"] == issued["user"]
    assert ess["audit_ids"] == issued["audit_ids"]
    assert ess["expires_at"] == issued["expires_at"]
    assert ess["methods"] == ["password"]
    if scope == "project":
        assert ess["project"]["name"] == "admin" and ess["project"]["domain"]["id"] == "default"
        assert ess["is_domain"] is False
    if scope == "domain":
        assert ess["domain"] == {"id": "default", "name": "Default"}
    if scope == "system":
        assert ess["system"] == {"all": True}
    if scope == "unscoped":
        assert ess["roles"] is None and ess["catalog"] is None
    else:
        assert {n for _, n in ess["roles"]} == {"admin", "manager", "member", "reader"}
        assert ess["catalog"], "scoped token without catalog"
    # HEAD (check_token) on both
    for t in pair.both():
        caller, _ = t.issue()
        r = validate_token(t.auth_url, caller, token, method="HEAD")
        assert r.status_code == 200, f"HEAD on {t.name}: {r.status_code}"


@pytest.mark.parametrize("issuer", ["keystone", "baton"])
def test_cross_nocatalog(pair, issuer):
    token, _ = getattr(pair, issuer).issue()
    responses = validate_everywhere(pair, token, nocatalog=True)
    ess = assert_same_token(pair, responses, issuer)
    assert ess["catalog"] is None


@pytest.mark.parametrize("rescoper", ["keystone", "baton"])
def test_cross_rescope(pair, rescoper):
    """Unscoped token from one server, re-scoped (token method) on the other, validated on both."""
    other = "baton" if rescoper == "keystone" else "keystone"
    unscoped, ubody = getattr(pair, other).issue("unscoped")
    r = requests.post(
        getattr(pair, rescoper).auth_url + "/auth/tokens", timeout=30,
        json={"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                       "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    assert r.status_code == 201, r.text
    scoped = r.headers["X-Subject-Token"]
    ess = assert_same_token(pair, validate_everywhere(pair, scoped), rescoper)
    assert ess["methods"] == ["token", "password"]
    assert ess["audit_ids"][1] == ubody["token"]["audit_ids"][0]
    assert ess["expires_at"] == ubody["token"]["expires_at"]


REVOCATION_PROPAGATION_S = 3  # Baton polls revocation_event once a second


@pytest.mark.parametrize("revoker", ["keystone", "baton"])
@pytest.mark.parametrize("issuer", ["keystone", "baton"])
def test_cross_revoke(pair, issuer, revoker):
    victim, _ = getattr(pair, issuer).issue()
    bystander, _ = getattr(pair, issuer).issue()
    before = validate_everywhere(pair, victim)
    assert all(r.status_code == 200 for r in before.values())
    rev = getattr(pair, revoker)
    caller, _ = rev.issue()
    r = revoke_token(rev.auth_url, caller, victim)
    assert r.status_code == 204, f"DELETE on {revoker}: {r.status_code} {r.text[:300]}"
    # The revoking server must refuse the token at once. The other one reads the event from the
    # shared database: Keystone (no cache) at once, Baton by polling revocation_event every 1 s,
    # so allow it a bounded propagation window.
    for t in [rev] + [t for t in pair.both() if t is not rev]:
        limit = 0 if t is rev else REVOCATION_PROPAGATION_S
        caller_t, _ = t.issue()
        start = time.monotonic()
        while True:
            resp = validate_token(t.auth_url, caller_t, victim)
            if resp.status_code != 200 or time.monotonic() - start > limit:
                break
            time.sleep(0.2)
        assert resp.status_code == 404, (f"{t.name} still accepts a token revoked on {revoker} after "
                                         f"{time.monotonic() - start:.1f}s: {resp.status_code}")
        assert resp.json()["error"]["code"] == 404
    # revoking again is a 404 (keystone validates the subject first)
    assert revoke_token(rev.auth_url, caller, victim).status_code == 404
    # other tokens of the same user still work everywhere
    assert all(r.status_code == 200 for r in validate_everywhere(pair, bystander).values())


EXPIRY = 4  # [token] expiration for the expiry test, seconds


@pytest.mark.parametrize("initialized_by", ["keystone", "baton"], ids=["keystone-inits", "baton-inits"])
def test_cross_expired_token(pair_factory, initialized_by):
    pair = pair_factory(initialized_by, expiration=EXPIRY)
    subjects = {}
    for t in pair.both():
        tok, body = t.issue()
        subjects[t.name] = (tok, parse_ts(body["token"]["expires_at"]))
    latest = max(exp for _, exp in subjects.values())
    # bounded wait until every subject token is expired (+1 s margin for clock rounding)
    deadline = time.monotonic() + EXPIRY + 5
    while time.time() < latest.timestamp() + 1:
        assert time.monotonic() < deadline, "expiry wait overran"
        time.sleep(0.2)
    for issuer, (tok, _) in subjects.items():
        for t in pair.both():
            caller, _ = t.issue()  # fresh: it lives only EXPIRY seconds
            plain = validate_token(t.auth_url, caller, tok)
            assert plain.status_code == 404, \
                f"{t.name}: expired token (issued by {issuer}) gave {plain.status_code}, want 404"
            caller, _ = t.issue()
            allowed = validate_token(t.auth_url, caller, tok, allow_expired=True)
            assert allowed.status_code == 200, \
                f"{t.name}: ?allow_expired=1 on token issued by {issuer} gave {allowed.status_code}: {allowed.text[:300]}"
            assert parse_ts(allowed.json()["token"]["expires_at"]).timestamp() < time.time()
        # both servers return the same body for the expired token
        responses = {}
        for t in pair.both():
            caller, _ = t.issue()
            responses[t.name] = validate_token(t.auth_url, caller, tok, allow_expired=True)
        assert_same_token(pair, responses, issuer)


def test_effective_scopes_agree(pair):
    """Issue 11: `/v3/auth/projects`, `/v3/auth/domains` and `/v3/users/{id}/projects` list the
    same projects and domains on both servers: projects reached only through an inherited grant
    (OS-INHERIT on a parent project or on a domain), disabled projects and domains, and a project
    whose only role is domain-specific. Everything is written through Keystone's API."""
    import uuid

    ks = pair.keystone
    admin, _ = ks.issue()
    h = {"X-Auth-Token": admin}
    tag = uuid.uuid4().hex[:8]

    def call(method: str, path: str, body: dict | None = None, want: int = 201) -> dict:
        r = requests.request(method, ks.auth_url + path, json=body, headers=h, timeout=30)
        assert r.status_code == want, f"{method} {path} -> {r.status_code}: {r.text[:300]}"
        return r.json() if r.content else {}

    pw = "Heir-Secret-9xQ"
    user = call("POST", "/users", {"user": {"name": f"heir-{tag}", "domain_id": "default", "password": pw}})["user"]
    dom = call("POST", "/domains", {"domain": {"name": f"d-{tag}"}})["domain"]
    proj = lambda name, **kw: call("POST", "/projects", {"project": {"name": f"{name}-{tag}", **kw}})["project"]
    parent = proj("parent", domain_id="default")
    child = proj("child", domain_id="default", parent_id=parent["id"])
    grandchild = proj("grandchild", domain_id="default", parent_id=child["id"])
    direct = proj("direct", domain_id="default")
    in_dom = proj("indom", domain_id=dom["id"])
    only_domain_role = proj("droleonly", domain_id="default")
    member = call("GET", "/roles?name=member", want=200)["roles"][0]["id"]
    drole = call("POST", "/roles", {"role": {"name": f"drole-{tag}", "domain_id": "default"}})["role"]["id"]
    u = user["id"]
    for path in (f"/OS-INHERIT/projects/{parent['id']}/users/{u}/roles/{member}/inherited_to_projects",
                 f"/OS-INHERIT/domains/{dom['id']}/users/{u}/roles/{member}/inherited_to_projects",
                 f"/projects/{direct['id']}/users/{u}/roles/{member}",
                 f"/domains/{dom['id']}/users/{u}/roles/{member}",
                 f"/projects/{only_domain_role['id']}/users/{u}/roles/{drole}"):
        call("PUT", path, want=204)
    call("PATCH", f"/projects/{direct['id']}", {"project": {"enabled": False}}, want=200)

    def listing(t) -> dict:
        mine, _ = issue_token(t.auth_url, "unscoped", username=user["name"], password=pw)
        caller, _ = t.issue()
        out = {}
        for key, path, token in (("auth/projects", "/auth/projects", mine),
                                 ("auth/domains", "/auth/domains", mine),
                                 ("users/projects", f"/users/{u}/projects", caller)):
            r = requests.get(t.auth_url + path, headers={"X-Auth-Token": token}, timeout=30)
            assert r.status_code == 200, f"{t.name} GET {path}: {r.status_code} {r.text[:300]}"
            out[key] = sorted(x["id"] for x in r.json()[path.split("/")[-1]])
        return out

    # Baton's role snapshot may lag writes made by another process by a few seconds.
    deadline = time.monotonic() + 10
    while True:
        got = {t.name: listing(t) for t in pair.both()}
        if got["keystone"] == got["baton"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got["baton"] == got["keystone"], f"(keystone, baton): {got}"
    projects = got["keystone"]["auth/projects"]
    assert child["id"] in projects and grandchild["id"] in projects and in_dom["id"] in projects
    assert parent["id"] not in projects and only_domain_role["id"] not in projects
    assert got["keystone"]["users/projects"] == projects
    # A token can be scoped to every listed enabled project, on both servers.
    for t in pair.both():
        issue_token(t.auth_url, {"project": {"id": grandchild["id"]}}, username=user["name"], password=pw)


def test_healthcheck_like_keystone(pair):
    """`/healthcheck` as Keystone mounts oslo.middleware's: status, content types, JSON shape,
    HEAD 204 and any method. Keystone without backends says nothing; Baton checks its database
    and says OK, as oslo.middleware does with a backend."""
    seen = {}
    for t in pair.both():
        root = t.auth_url.rsplit("/v3", 1)[0]
        get = requests.get(f"{root}/healthcheck", timeout=10)
        js = requests.get(f"{root}/healthcheck", headers={"Accept": "application/json"}, timeout=10)
        head = requests.head(f"{root}/healthcheck", timeout=10)
        post = requests.post(f"{root}/healthcheck", timeout=10)
        seen[t.name] = (get.status_code, get.headers["Content-Type"], js.status_code,
                        js.headers["Content-Type"], sorted(js.json()), js.json()["detailed"],
                        head.status_code, post.status_code)
        assert get.text in ("", "OK"), f"{t.name}: {get.text!r}"
    assert seen["keystone"] == seen["baton"], seen
