"""Continuation tokens (Baton's own, docs/continuation.md) with the unchanged ecosystem.

Keystone 30 and Baton share one database and one key repository, both with
``[token] allow_expired_window = 0``; Baton has ``[continuation]`` set. nova exchanges alice's
token for a continuation token whose audience is ``volume`` (cinder). Then:

- the REAL keystonemiddleware, running as cinder against Baton, accepts the continuation token
  alone in ``X-Auth-Token`` (no service token) and sets alice's identity headers; running as
  glance (outside the audience) it refuses it; so does ``baton authproxy`` either way;
- Keystone, sharing the keys, refuses it cleanly (404 "This is not a recognized Fernet payload
  version: 200");
- nova's continuation outlives alice's token: after the user token expires (allow_expired_window
  is 0, so the service-token pair no longer helps) the renewed continuation still passes.
"""

from __future__ import annotations

import time
import uuid
from typing import Iterator

import pytest
import requests

from baton_process import Baton
from conftest import KEYSTONE_HASH_ROUNDS, require_baton, require_venv
from interop_util import ADMIN_PASSWORD, grant_admin_on_default_domain, issue_token, validate_token
from keystone_oracle import KeystoneOracle, free_port
from test_access_rules_interop import Fronts

HTTP_TIMEOUT = 30
PW = "Continue-Pw-8841"
# Short user tokens so one can expire within the test.
USER_TOKEN_LIFETIME = 8
CONTINUATION = {"senders": "nova:600", "receivers": "volume:cinder, image:glance",
                "token_lifetime": 60}


def api(auth_url: str, method: str, path: str, token: str, body=None) -> requests.Response:
    return requests.request(method, f"{auth_url}/{path}", headers={"X-Auth-Token": token}, json=body,
                            timeout=HTTP_TIMEOUT)


def login(auth_url: str, name: str, project_id: str) -> str:
    r = requests.post(f"{auth_url}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"id": "default"}, "password": PW}}},
        "scope": {"project": {"id": project_id}}}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


class Cloud:
    def __init__(self, workdir) -> None:
        require_venv()
        require_baton()
        db = workdir / "shared.db"
        keys = workdir / "fernet-keys"
        self.keystone = KeystoneOracle(workdir / "keystone", free_port(), sqlite_path=db, key_repository=keys,
                                       expiration=USER_TOKEN_LIFETIME, password_hash_rounds=KEYSTONE_HASH_ROUNDS,
                                       allow_expired_window=0)
        self.baton = Baton(workdir / "baton", sqlite_path=db, key_repository=keys,
                           expiration=USER_TOKEN_LIFETIME, allow_expired_window=0,
                           extra_conf={"continuation": CONTINUATION})
        self.keystone.write_config()
        self.baton.write_config()
        self.baton.db_sync()
        self.baton.fernet_setup()
        self.baton.bootstrap(ADMIN_PASSWORD, public_url=self.baton.auth_url)
        grant_admin_on_default_domain(db)
        self.baton.start()
        self.keystone.start()
        b = self.baton.auth_url
        admin, _ = issue_token(b)
        self.project = api(b, "GET", "projects?name=admin", admin).json()["projects"][0]["id"]
        roles = {x["name"]: x["id"] for x in api(b, "GET", "roles", admin).json()["roles"]}
        if "service" not in roles:
            roles["service"] = api(b, "POST", "roles", admin, {"role": {"name": "service"}}).json()["role"]["id"]
        self.ids = {}
        for name, role in (("nova", "service"), ("cinder", "service"), ("glance", "service"), ("alice", "member")):
            r = api(b, "POST", "users", admin, {"user": {"name": name, "password": PW, "domain_id": "default"}})
            assert r.status_code == 201, r.text
            uid = r.json()["user"]["id"]
            assert api(b, "PUT", f"projects/{self.project}/users/{uid}/roles/{roles[role]}", admin).status_code == 204
            self.ids[name] = uid

    def stop(self) -> None:
        self.baton.stop()
        self.keystone.stop()

    def middleware_options(self, auth_url: str, service_user: str) -> dict[str, str]:
        return {
            "www_authenticate_uri": auth_url, "auth_url": auth_url, "auth_type": "password",
            "username": service_user, "password": PW, "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default", "interface": "public",
            "service_token_roles": "service", "service_token_roles_required": "true",
            "delay_auth_decision": "false", "token_cache_time": "-1", "include_service_catalog": "false",
        }

    def start_operation(self) -> tuple[str, str, dict]:
        """nova starts an operation for a fresh token of alice's with audience volume: alice's
        token, the continuation token and its body."""
        alice = login(self.baton.auth_url, "alice", self.project)
        nova = login(self.baton.auth_url, "nova", self.project)
        r = requests.post(f"{self.baton.auth_url}/baton/continuations", timeout=HTTP_TIMEOUT,
                          headers={"X-Auth-Token": nova, "X-Subject-Token": alice},
                          json={"continuation": {"audience": ["volume"]}})
        assert r.status_code == 201, r.text
        return alice, r.headers["X-Subject-Token"], r.json()["token"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[tuple[Cloud, Fronts]]:
    c = Cloud(tmp_path_factory.mktemp("continuation"))
    fronts = Fronts(tmp_path_factory.mktemp("continuation-fronts"))
    yield c, fronts
    fronts.stop()
    c.stop()


def through(front: str, token: str) -> requests.Response:
    return requests.get(f"{front}/v3/volumes", headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT)


def test_receivers_in_the_audience_accept_it_unchanged_and_others_refuse(cloud):
    c, fronts = cloud
    _, k, body = c.start_operation()
    assert body["baton:continuation"]["actor"]["id"] == c.ids["nova"]
    assert body["baton:continuation"]["audience"] == ["volume"]

    b = c.baton.auth_url
    cinder_ksm = fronts.ksm(c.middleware_options(b, "cinder"))
    glance_ksm = fronts.ksm(c.middleware_options(b, "glance"))
    cinder_proxy = fronts.authproxy(c.middleware_options(b, "cinder"))
    glance_proxy = fronts.authproxy(c.middleware_options(b, "glance"))
    for front in (cinder_ksm, cinder_proxy):
        r = through(front, k)
        assert r.status_code == 200, (front, r.text)
        seen = r.json()["headers"]
        assert seen["x-user-id"] == c.ids["alice"], seen
        assert seen["x-project-id"] == c.project, seen
        assert seen["x-identity-status"] == "Confirmed", seen
        assert "member" in seen["x-roles"].split(","), seen
    for front in (glance_ksm, glance_proxy):
        assert through(front, k).status_code == 401, front


def test_keystone_sharing_the_keys_refuses_it_cleanly(cloud):
    c, fronts = cloud
    _, k, _ = c.start_operation()
    admin, _ = issue_token(c.keystone.auth_url)
    r = validate_token(c.keystone.auth_url, admin, k)
    # Keystone's answer for a payload version it does not know: 404 in its JSON error shape
    # (the fernet provider turns its ValidationError into TokenNotFound), never a 5xx and never
    # the token's body.
    assert r.status_code == 404, r.text
    assert "not a recognized Fernet payload version: 200" in r.json()["error"]["message"], r.text
    # (keystonemiddleware pointed at Keystone would still validate at the catalog's identity
    # endpoint, which on this shared database is Baton's, so it is not tried here.)
    del fronts


def test_the_operation_outlives_the_user_token_with_no_allow_expired_window(cloud):
    c, fronts = cloud
    b = c.baton.auth_url
    alice, k, _ = c.start_operation()
    front = fronts.ksm(c.middleware_options(b, "cinder"))
    # Past the user token's expiry: the service-token pair is refused (window 0) ...
    time.sleep(USER_TOKEN_LIFETIME + 1)
    fresh_nova = login(b, "nova", c.project)
    r = requests.get(f"{front}/v3/volumes", headers={"X-Auth-Token": alice, "X-Service-Token": fresh_nova},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 401, r.text
    # ... the continuation token passes, and nova renews it (with its own fresh token).
    assert through(front, k).status_code == 200
    r = requests.post(f"{b}/baton/continuations", timeout=HTTP_TIMEOUT,
                      headers={"X-Auth-Token": fresh_nova, "X-Subject-Token": k})
    assert r.status_code == 201, r.text
    renewed = r.headers["X-Subject-Token"]
    assert renewed != k
    assert through(front, renewed).status_code == 200
    # A random name keeps the middleware's cache out of it: an unknown token is refused.
    assert through(front, "gAAAAA" + uuid.uuid4().hex).status_code == 401


def continue_token(c: Cloud, subject: str) -> tuple[str, dict]:
    """nova continues `subject` (any project-scoped token) for the volume service."""
    nova = login(c.baton.auth_url, "nova", c.project)
    r = requests.post(f"{c.baton.auth_url}/baton/continuations", timeout=HTTP_TIMEOUT,
                      headers={"X-Auth-Token": nova, "X-Subject-Token": subject},
                      json={"continuation": {"audience": ["volume"]}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"], r.json()["token"]


def test_delegated_tokens_are_continued_with_their_delegation(cloud):
    """An application credential's token and a trust's token start operations too: the real
    keystonemiddleware (as cinder) sees the credential's roles only, and the trustor when the
    trust impersonates; deleting the credential or the trust ends the operation."""
    c, fronts = cloud
    b = c.baton.auth_url
    front = fronts.ksm(c.middleware_options(b, "cinder"))
    alice = login(b, "alice", c.project)
    r = api(b, "POST", f"users/{c.ids['alice']}/application_credentials", alice,
            {"application_credential": {"name": f"batch-{uuid.uuid4().hex[:8]}", "roles": [{"name": "reader"}]}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    r = requests.post(f"{b}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}})
    assert r.status_code == 201, r.text
    k, body = continue_token(c, r.headers["X-Subject-Token"])
    assert body["application_credential"]["id"] == cred["id"], body
    r = through(front, k)
    assert r.status_code == 200, r.text
    seen = r.json()["headers"]
    assert seen["x-user-id"] == c.ids["alice"], seen
    assert seen["x-roles"].split(",") == ["reader"], seen
    admin, _ = issue_token(b)
    assert api(b, "DELETE", f"users/{c.ids['alice']}/application_credentials/{cred['id']}", admin).status_code == 204
    assert through(front, k).status_code == 401

    # nova (trustee) holds an impersonating trust of alice's; its trust token is continued.
    alice = login(b, "alice", c.project)
    r = api(b, "POST", "OS-TRUST/trusts", alice, {"trust": {
        "trustor_user_id": c.ids["alice"], "trustee_user_id": c.ids["cinder"], "project_id": c.project,
        "impersonation": True, "roles": [{"name": "member"}]}})
    assert r.status_code == 201, r.text
    trust_id = r.json()["trust"]["id"]
    r = requests.post(f"{b}/auth/tokens", timeout=HTTP_TIMEOUT, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "cinder", "domain": {"id": "default"}, "password": PW}}},
        "scope": {"OS-TRUST:trust": {"id": trust_id}}}})
    assert r.status_code == 201, r.text
    k, body = continue_token(c, r.headers["X-Subject-Token"])
    assert body["OS-TRUST:trust"]["id"] == trust_id, body
    r = through(front, k)
    assert r.status_code == 200, r.text
    seen = r.json()["headers"]
    assert seen["x-user-id"] == c.ids["alice"], seen
    assert "member" in seen["x-roles"].split(","), seen
    # Keystone sharing the keys still refuses it cleanly.
    assert validate_token(c.keystone.auth_url, admin, k).status_code == 404
    assert api(b, "DELETE", f"OS-TRUST/trusts/{trust_id}", admin).status_code == 204
    assert through(front, k).status_code == 401
