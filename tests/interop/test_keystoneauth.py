"""keystoneauth1 (the library every OpenStack client and service uses) against the target server."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ka_exc
from keystoneauth1 import session as ka_session
from keystoneauth1.identity import v3

from interop_util import parse_ts

ADMIN_ROLES = {"admin", "manager", "member", "reader"}  # admin + the implied-role chain from bootstrap


def password_auth(target, **kw):
    kw.setdefault("password", target.admin_password)
    return v3.Password(auth_url=target.auth_url, username="admin", user_domain_name="Default", **kw)


def login(target, auth):
    sess = ka_session.Session(auth=auth, timeout=30)
    token = sess.get_token()
    return sess, token, auth.get_access(sess)


def methods(access):
    # AccessInfoV3 has no public accessor for the auth methods
    return access._data["token"]["methods"]


def check_user(access):
    assert access.username == "admin"
    assert access.user_domain_id == "default"
    assert access.user_domain_name == "Default"
    assert access.user_id and len(access.user_id) == 32
    assert access.expires is not None and access.issued is not None
    assert access.expires > access.issued
    assert access.audit_id and len(access.audit_id) == 22


def test_project_scope_by_name(target):
    auth = password_auth(target, project_name="admin", project_domain_name="Default")
    sess, token, access = login(target, auth)
    assert token.startswith("gAAAAA"), "expected a Fernet token"
    assert access.auth_token == token
    check_user(access)
    assert access.project_scoped and not access.domain_scoped and not access.system_scoped
    assert access.project_name == "admin"
    assert access.project_domain_id == "default"
    assert access.project_domain_name == "Default"
    assert set(access.role_names) == ADMIN_ROLES
    assert methods(access) == ["password"]
    assert access.has_service_catalog()
    assert access.service_catalog.get_endpoints(service_type="identity", interface="public")
    ep = sess.get_endpoint(service_type="identity", interface="public")
    assert ep.rstrip("/") == target.auth_url
    assert auth.get_project_id(sess) == access.project_id
    assert auth.get_user_id(sess) == access.user_id


def test_project_scope_by_id(target):
    _, _, first = login(target, password_auth(target, project_name="admin", project_domain_name="Default"))
    sess, token, access = login(target, password_auth(target, project_id=first.project_id))
    check_user(access)
    assert access.project_id == first.project_id
    assert access.project_name == "admin"
    assert access.user_id == first.user_id
    assert set(access.role_names) == ADMIN_ROLES
    assert access.audit_id != first.audit_id
    assert sess.get_endpoint(service_type="identity", interface="public").rstrip("/") == target.auth_url


def test_domain_scope(target):
    # conftest grants admin the admin role on domain default (bootstrap doesn't).
    sess, token, access = login(target, password_auth(target, domain_name="Default"))
    check_user(access)
    assert access.domain_scoped and not access.project_scoped
    assert access.domain_id == "default"
    assert access.domain_name == "Default"
    assert access.project_id is None
    assert set(access.role_names) == ADMIN_ROLES
    _, _, by_id = login(target, password_auth(target, domain_id="default"))
    assert by_id.domain_id == "default"


def test_system_scope(target):
    sess, token, access = login(target, password_auth(target, system_scope="all"))
    check_user(access)
    assert access.system_scoped
    assert access.system == {"all": True}
    assert access.project_id is None and access.domain_id is None
    assert set(access.role_names) == ADMIN_ROLES
    assert sess.get_endpoint(service_type="identity", interface="public").rstrip("/") == target.auth_url


def test_unscoped(target):
    sess, token, access = login(target, password_auth(target, unscoped=True))
    check_user(access)
    assert not access.scoped
    assert access.project_id is None and access.domain_id is None and not access.system_scoped
    assert not access.role_names
    assert not access.has_service_catalog()


def test_token_plugin_rescope(target):
    _, unscoped_token, unscoped = login(target, password_auth(target, unscoped=True))
    auth = v3.Token(auth_url=target.auth_url, token=unscoped_token,
                    project_name="admin", project_domain_name="Default")
    sess, token, access = login(target, auth)
    assert token != unscoped_token
    assert access.project_scoped and access.project_name == "admin"
    assert access.user_id == unscoped.user_id
    assert set(access.role_names) == ADMIN_ROLES
    # keystone: methods = "token" + the original methods; audit_ids = [new, original chain];
    # the re-scoped token keeps the original expiry. The ORDER of methods in the POST response is
    # arbitrary in keystone (list(set(...))); on validation it is decoded from the Fernet bitmask,
    # high bit first, so GET /v3/auth/tokens always says ["token", "password"].
    assert sorted(methods(access)) == ["password", "token"]
    r = sess.get("/auth/tokens", endpoint_filter={"service_type": "identity", "interface": "public"},
                 headers={"X-Subject-Token": token})
    assert r.status_code == 200
    assert r.json()["token"]["methods"] == ["token", "password"]
    assert access.audit_chain_id == unscoped.audit_id
    assert access.audit_id != unscoped.audit_id
    assert access.expires == unscoped.expires
    assert sess.get_endpoint(service_type="identity", interface="public").rstrip("/") == target.auth_url

    # re-scope the project token to the system (scoped -> scoped is allowed by default)
    _, _, sys_access = login(target, v3.Token(auth_url=target.auth_url, token=token, system_scope="all"))
    assert sys_access.system_scoped
    assert sys_access.audit_chain_id == unscoped.audit_id


def test_wrong_password_is_unauthorized(target):
    auth = password_auth(target, password="not-the-password", project_name="admin", project_domain_name="Default")
    sess = ka_session.Session(auth=auth, timeout=30)
    with pytest.raises(ka_exc.Unauthorized) as ei:
        sess.get_token()
    assert ei.value.http_status == 401


def test_unknown_user_is_unauthorized(target):
    auth = v3.Password(auth_url=target.auth_url, username="nobody", user_domain_name="Default",
                       password="x", project_name="admin", project_domain_name="Default")
    with pytest.raises(ka_exc.Unauthorized):
        ka_session.Session(auth=auth, timeout=30).get_token()


def test_session_uses_token_for_identity_api(target):
    """An authenticated GET through the session (X-Auth-Token added by keystoneauth)."""
    sess, token, access = login(target, password_auth(target, project_name="admin", project_domain_name="Default"))
    r = sess.get("/auth/tokens", endpoint_filter={"service_type": "identity", "interface": "public"},
                 headers={"X-Subject-Token": token})
    assert r.status_code == 200
    body = r.json()["token"]
    assert body["user"]["id"] == access.user_id
    assert parse_ts(body["expires_at"]) == access.expires
