"""Trusts (OS-TRUST) with Keystone 30 and Baton on one database and one key repository.

A trust created on either server gives trust-scoped tokens (keystoneauth1's password plugin with
``trust_id``) on both, which validate on both with the same fields; deleting it on the other
server ends them on both. The trust API and trust-scoped issuing answer the same requests with
the same statuses, body keys and messages on both. python-openstackclient's ``trust create`` /
``trust list|show|delete`` and ``--os-trust-id`` work against Baton.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests
from keystoneauth1 import loading, session

from interop_util import USER_PASSWORD as USER_PW
from interop_util import (HTTP_TIMEOUT, api, make_user, project_id, role_id, token_essentials,
                          validate_token)



def user_token(t, name: str, scope="project") -> str:
    scope = {"project": {"name": "admin", "domain": {"id": "default"}}} if scope == "project" else scope
    token, _ = t.issue(scope, username=name, password=USER_PW)
    return token


def trust_auth(t, identity: dict, trust_id) -> requests.Response:
    scope = {"OS-TRUST:trust": {"id": trust_id}} if trust_id is not None else {"OS-TRUST:trust": {}}
    return requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT,
                         json={"auth": {"identity": identity, "scope": scope}})


def password(uid: str) -> dict:
    return {"methods": ["password"], "password": {"user": {"id": uid, "password": USER_PW}}}


def trustee_access(t, trustee: str, trust_id: str):
    """keystoneauth1's v3 password plugin with trust_id: the access info of a trust token."""
    auth = loading.get_plugin_loader("password").load_from_options(
        auth_url=t.auth_url, username=trustee, password=USER_PW, user_domain_id="default",
        trust_id=trust_id)
    return auth.get_access(session.Session(auth=auth))


@pytest.mark.parametrize("creator", ["keystone", "baton"])
def test_trust_tokens_on_both(pair, creator):
    src = getattr(pair, creator)
    admin, _ = src.issue()
    tor_id, tor = make_user(src, admin, f"tor-{creator}")
    tee_id, tee = make_user(src, admin, f"tee-{creator}", roles=())
    pid = project_id(src, admin)
    r = api(src, "POST", "OS-TRUST/trusts", user_token(src, tor), {"trust": {
        "trustor_user_id": tor_id, "trustee_user_id": tee_id, "project_id": pid,
        "impersonation": True, "roles": [{"name": "member"}]}})
    assert r.status_code == 201, r.text
    trust = r.json()["trust"]
    tokens = []
    for t in pair.both():
        access = trustee_access(t, tee, trust["id"])
        assert access.trust_scoped, t.name
        assert (access.trust_id, access.trustor_user_id, access.trustee_user_id) == (trust["id"], tor_id, tee_id)
        assert access.user_id == tor_id, "impersonation shows the trustor"
        token = access.auth_token
        tokens.append(token)
        seen = {}
        for v in pair.both():
            caller, _ = v.issue()
            resp = validate_token(v.auth_url, caller, token)
            assert resp.status_code == 200, f"{v.name} validating {t.name}'s trust token: {resp.text[:300]}"
            body = resp.json()
            seen[v.name] = (token_essentials(body), body["token"]["OS-TRUST:trust"],
                            sorted(k for k in body["token"]))
        k, b = seen["keystone"], seen["baton"]
        assert k[1] == b[1] == {"id": trust["id"], "impersonation": True,
                                "trustee_user": {"id": tee_id}, "trustor_user": {"id": tor_id}}
        assert k[2] == b[2], f"token keys, issued by {t.name}"
        assert {f: (k[0][f], b[0][f]) for f in k[0] if k[0][f] != b[0][f]} == {}, f"issued by {t.name}"
        assert {n for _, n in k[0]["roles"]} == {"member", "reader"}

    # Deleted on the other server: the tokens stop validating on both, new ones are refused.
    other = pair.baton if creator == "keystone" else pair.keystone
    other_admin, _ = other.issue()
    r = api(other, "DELETE", f"OS-TRUST/trusts/{trust['id']}", other_admin)
    assert r.status_code == 204, r.text
    for v in pair.both():
        caller, _ = v.issue()
        for token in tokens:
            assert validate_token(v.auth_url, caller, token).status_code == 404, v.name
        assert trust_auth(v, password(tee_id), trust["id"]).status_code == 401, v.name


def trust_requests(t) -> dict:
    """The same requests against one server: status, body keys and message of each."""
    admin, _ = t.issue()
    tor_id, tor = make_user(t, admin, f"tor-{t.name}")
    tee_id, tee = make_user(t, admin, f"tee-{t.name}", roles=())
    eve_id, eve = make_user(t, admin, f"eve-{t.name}", roles=())
    pid = project_id(t, admin)
    tor_t, tee_t, eve_t = user_token(t, tor), user_token(t, tee, "unscoped"), user_token(t, eve, "unscoped")
    ids = {tor_id: "<trustor>", tee_id: "<trustee>", eve_id: "<eve>", pid: "<project>"}
    out = {}

    def rec(label, r):
        keys = message = None
        if r.content and r.headers.get("content-type", "").startswith("application/json"):
            j = r.json()
            keys = {k: sorted(v) if isinstance(v, dict) else None for k, v in j.items()}
            message = j.get("error", {}).get("message")
            if message:
                for i, name in ids.items():
                    message = message.replace(i, name)
                message = re.sub(r"[0-9a-f]{32}", "<id>", message)
        out[label] = (r.status_code, keys, message)
        return r

    def trust(**kw):
        body = {"trustor_user_id": tor_id, "trustee_user_id": tee_id, "project_id": pid,
                "impersonation": False, "roles": [{"name": "member"}]}
        body.update(kw)
        return {"trust": body}

    post = lambda label, token, body: rec(label, api(t, "POST", "OS-TRUST/trusts", token, body))  # noqa: E731
    r = post("create", tor_t, trust(impersonation=True))
    tid = r.json()["trust"]["id"]
    out["create-body"] = sorted(r.json()["trust"])
    out["create-roles"] = sorted(x["name"] for x in r.json()["trust"]["roles"])
    post("create-extra", tor_t, trust(expires_at="2999-01-01T00:00:00Z", note="kept", remaining_uses=5))
    post("create-duplicate", tor_t, trust(expires_at="2999-01-01T00:00:00Z"))
    post("create-redelegatable", tor_t, trust(allow_redelegation=True, expires_at="2998-01-01T00:00:00Z"))
    post("create-for-other", eve_t, trust())
    post("create-no-roles", tor_t, trust(roles=[]))
    post("create-unheld-role", tor_t, trust(roles=[{"name": "admin"}]))
    post("create-unknown-role", tor_t, trust(roles=[{"name": "nosuchrole"}]))
    post("create-unknown-trustee", tor_t, trust(trustee_user_id="nobody"))
    post("create-unknown-project", tor_t, trust(project_id="nosuchproject"))
    post("create-past", tor_t, trust(expires_at="2001-01-01T00:00:00Z"))
    post("create-bad-time", tor_t, trust(expires_at="soon"))
    post("create-zero-uses", tor_t, trust(remaining_uses=0))
    post("create-redeleg-uses", tor_t, trust(allow_redelegation=True, remaining_uses=2))
    post("create-redeleg-deep", tor_t, trust(allow_redelegation=True, redelegation_count=9))
    body = trust()
    del body["trust"]["impersonation"]
    # Keystone's message quotes the trust as Python prints it, in the client's key order; Baton
    # prints keys sorted (its JSON objects keep no order), so the client sends them sorted here.
    body["trust"] = dict(sorted(body["trust"].items()))
    post("create-no-impersonation", tor_t, body)
    post("create-no-body", tor_t, {})

    rec("list-admin", api(t, "GET", "OS-TRUST/trusts", admin))
    rec("list-trustor", api(t, "GET", f"OS-TRUST/trusts?trustor_user_id={tor_id}", tor_t))
    rec("list-trustee", api(t, "GET", f"OS-TRUST/trusts?trustee_user_id={tee_id}", tee_t))
    rec("list-other-trustor", api(t, "GET", f"OS-TRUST/trusts?trustor_user_id={tor_id}", eve_t))
    rec("list-all-by-user", api(t, "GET", "OS-TRUST/trusts", tor_t))
    r = rec("list-odd-query", api(t, "GET", "OS-TRUST/trusts?foo=bar", admin))
    out["list-odd-query-n"] = len(r.json().get("trusts", []))
    for label, token in (("show-trustor", tor_t), ("show-trustee", tee_t), ("show-other", eve_t),
                         ("show-admin", admin)):
        rec(label, api(t, "GET", f"OS-TRUST/trusts/{tid}", token))
    rec("show-unknown", api(t, "GET", "OS-TRUST/trusts/nosuchtrust", eve_t))
    rec("roles", api(t, "GET", f"OS-TRUST/trusts/{tid}/roles", tee_t))
    member, reader = role_id(t, admin, "member"), role_id(t, admin, "reader")
    rec("role", api(t, "GET", f"OS-TRUST/trusts/{tid}/roles/{member}", tee_t))
    rec("role-head", api(t, "HEAD", f"OS-TRUST/trusts/{tid}/roles/{member}", tee_t))
    rec("role-not-delegated", api(t, "GET", f"OS-TRUST/trusts/{tid}/roles/{reader}", tee_t))

    # Trust-scoped tokens.
    r = rec("issue", trust_auth(t, password(tee_id), tid))
    trust_token = r.headers["X-Subject-Token"]
    out["issue-keys"] = sorted(r.json()["token"])
    out["issue-roles"] = sorted(x["name"] for x in r.json()["token"]["roles"])
    rec("issue-not-trustee", trust_auth(t, password(eve_id), tid))
    rec("issue-unknown", trust_auth(t, password(tee_id), uuid.uuid4().hex))
    rec("issue-no-id", trust_auth(t, password(tee_id), None))
    rec("issue-by-token", trust_auth(t, {"methods": ["token"], "token": {"id": tee_t}}, tid))
    rec("rescope-trust-token", requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": trust_token}},
        "scope": {"project": {"id": pid}}}}))
    rec("validate", validate_token(t.auth_url, admin, trust_token))
    rec("trust-token-as-caller", api(t, "GET", f"OS-TRUST/trusts/{tid}", trust_token))
    rec("trust-token-redelegates", api(t, "POST", "OS-TRUST/trusts", trust_token, trust(trustee_user_id=eve_id)))

    # A trust of one use: what its token and the trust look like once it is used.
    r = post("create-one-use", tor_t, trust(remaining_uses=1, expires_at="2997-01-01T00:00:00Z"))
    one = r.json()["trust"]["id"]
    r = rec("one-use-issue", trust_auth(t, password(tee_id), one))
    rec("one-use-validate", validate_token(t.auth_url, admin, r.headers.get("X-Subject-Token", "")))
    rec("one-use-again", trust_auth(t, password(tee_id), one))
    rec("one-use-show", api(t, "GET", f"OS-TRUST/trusts/{one}", tor_t))

    # Application credential tokens may not touch trusts.
    r = api(t, "POST", f"users/{tor_id}/application_credentials", tor_t,
            {"application_credential": {"name": "tr", "unrestricted": True}})
    assert r.status_code == 201, r.text
    c = r.json()["application_credential"]
    ac = requests.post(f"{t.auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": c["id"], "secret": c["secret"]}}}}).headers["X-Subject-Token"]
    rec("app-cred-create", api(t, "POST", "OS-TRUST/trusts", ac, trust(expires_at="2996-01-01T00:00:00Z")))
    rec("app-cred-list", api(t, "GET", f"OS-TRUST/trusts?trustor_user_id={tor_id}", ac))
    rec("app-cred-show", api(t, "GET", f"OS-TRUST/trusts/{tid}", ac))

    rec("delete-trustee", api(t, "DELETE", f"OS-TRUST/trusts/{tid}", tee_t))
    rec("delete", api(t, "DELETE", f"OS-TRUST/trusts/{tid}", tor_t))
    rec("show-deleted", api(t, "GET", f"OS-TRUST/trusts/{tid}", tor_t))
    rec("delete-deleted", api(t, "DELETE", f"OS-TRUST/trusts/{tid}", tor_t))
    rec("validate-deleted", validate_token(t.auth_url, admin, trust_token))
    rec("issue-deleted", trust_auth(t, password(tee_id), tid))
    return out


def test_trust_api_matches_keystone(pair):
    k = trust_requests(pair.keystone)
    b = trust_requests(pair.baton)
    diff = {label: (k[label], b.get(label)) for label in k if k[label] != b.get(label)}
    assert not diff, f"(keystone, baton) per request: {diff}"


def test_openstackclient_trusts_against_baton(baton, venv_bin, tmp_path):
    # A Baton of its own: a pair's catalog sends the CLI to the server that initialized it.
    from conftest import OpenStackCLI

    t = baton
    admin, _ = t.issue()
    tor_id, tor = make_user(t, admin, "osc-tor")
    tee_id, tee = make_user(t, admin, "osc-tee", roles=())
    cli = OpenStackCLI(venv_bin / "openstack", t, tmp_path)
    as_trustor = {"OS_USERNAME": tor, "OS_PASSWORD": USER_PW}
    # Ids: a member may not look users or projects up by name, so the CLI passes ids through.
    r = cli.run("trust", "create", "--project", project_id(t, admin), "--project-domain", "Default",
                "--role", role_id(t, admin, "member"), "--impersonate", "--trustor-domain", "Default",
                "--trustee-domain", "Default", "-f", "json", tor_id, tee_id, env=as_trustor)
    made = json.loads(r.stdout)
    assert made["trustor_user_id"] == tor_id and made["trustee_user_id"] == tee_id
    assert made["is_impersonation"] is True
    assert [r["name"] for r in made["roles"]] == ["member"]
    shown = json.loads(cli.run("trust", "show", "-f", "json", made["id"], env=as_trustor).stdout)
    assert shown["id"] == made["id"]
    listed = json.loads(cli.run("trust", "list", "-f", "json", env={}).stdout)
    assert made["id"] in {x["ID"] for x in listed}

    # --os-trust-id as the trustee: a trust-scoped token (no project in the environment).
    for key in ("OS_PROJECT_NAME", "OS_PROJECT_DOMAIN_NAME"):
        cli.env.pop(key, None)
    fields = json.loads(cli.run("--os-trust-id", made["id"], "token", "issue", "-f", "json",
                                env={"OS_USERNAME": tee, "OS_PASSWORD": USER_PW}).stdout)
    v = validate_token(t.auth_url, admin, fields["id"])
    assert v.status_code == 200, v.text
    assert v.json()["token"]["OS-TRUST:trust"]["id"] == made["id"]
    assert v.json()["token"]["user"]["id"] == tor_id

    cli.run("trust", "delete", made["id"], env=as_trustor)
    assert validate_token(t.auth_url, admin, fields["id"]).status_code == 404


# ---- `baton trust ...` prints what `openstack trust ...` prints, on Baton and on Keystone ----------
def test_baton_trust_commands_print_what_openstack_prints(target, venv_bin, tmp_path):
    import difflib
    import subprocess

    from baton_process import baton_bin
    from conftest import OpenStackCLI

    t = target
    admin, _ = t.issue()
    tor_id, tor = make_user(t, admin, "cli-tor")
    # The trustee logs in to the project too (the CLI's environment names one).
    tee_id, tee = make_user(t, admin, "cli-tee", roles=("reader",))
    osc = OpenStackCLI(venv_bin / "openstack", t, tmp_path)
    as_tor = {"OS_USERNAME": tor, "OS_PASSWORD": USER_PW}
    as_tee = {"OS_USERNAME": tee, "OS_PASSWORD": USER_PW}

    def bt(*args, env=None, check=True):
        r = subprocess.run([str(baton_bin()), *args], env={**osc.env, "BATON_LOG": "error", **(env or {})},
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert not check or r.returncode == 0, f"baton {args}: {r.stderr[-2000:]}"
        return r

    def same(*args, env=None):
        want = osc.run(*args, env=env).stdout
        got = bt(*args, env=env).stdout
        assert got == want, "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(),
                                                          "openstack", "baton", lineterm=""))

    # Ids: the trustor may not look the others up, so both tools pass the text through.
    created = bt("trust", "create", "--project", project_id(t, admin), "--role", role_id(t, admin, "member"),
                 "--impersonate", "--expiration", "2999-01-01T00:00:00", "-f", "json", tor_id, tee_id,
                 env=as_tor)
    made = json.loads(created.stdout)
    assert created.stdout == osc.run("trust", "show", "-f", "json", made["id"], env=as_tor).stdout
    assert made["is_impersonation"] is True and made["trustee_user_id"] == tee_id
    for fmt in ([], ["-f", "json"], ["-f", "value"], ["-c", "roles", "-c", "id"]):
        same("trust", "show", *fmt, made["id"], env=as_tor)
    same("trust", "list")
    same("trust", "list", "-f", "json")
    same("trust", "list", "--trustor", tor_id, env=as_tor)
    same("trust", "list", "--auth-user", env=as_tee)
    # --os-trust-id as the trustee: both tools get a token of the trust (no project given).
    saved = {k: osc.env.pop(k) for k in list(osc.env) if k.startswith("OS_PROJECT")}
    # (baton takes the --os-* options after the command, openstack before it.)
    for run, args in ((bt, ["token", "issue", "--os-trust-id", made["id"]]),
                      (osc.run, ["--os-trust-id", made["id"], "token", "issue"])):
        issued = json.loads(run(*args, "-f", "json", env=as_tee).stdout)
        v = validate_token(t.auth_url, admin, issued["id"]).json()["token"]
        assert v["OS-TRUST:trust"]["id"] == made["id"] and v["user"]["id"] == tor_id, v
    osc.env.update(saved)
    bt("trust", "delete", made["id"], env=as_tor)
    r = bt("trust", "show", made["id"], env=as_tor, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.strip() == f"No Trust found for {made['id']}"
