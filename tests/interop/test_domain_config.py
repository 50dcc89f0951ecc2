"""Domain configuration (/v3/domains/{id}/config and the defaults) against Keystone 30.

The same requests (admin, a system reader, a member; creating, merging, reading and deleting
groups and options; the sensitive `[ldap] password`; unsupported groups and options; unknown
domains; the security-compliance and default views) get the same statuses, bodies and messages
from both servers. On one database, the configuration either server wrote is served by the other.
"""

from __future__ import annotations

import uuid

from interop_util import SYSTEM_SCOPE, USER_PASSWORD, api, make_user
from test_policies import FirstParagraph, system_reader


def new_domain(t, admin: str) -> str:
    r = api(t, "POST", "domains", admin, {"domain": {"name": f"dc-{uuid.uuid4().hex[:8]}"}})
    assert r.status_code == 201, r.text
    return r.json()["domain"]["id"]


def config_requests(t) -> dict:
    admin, _ = t.issue()
    system, _ = t.issue(SYSTEM_SCOPE)
    reader = system_reader(t, admin)
    _, member_name = make_user(t, admin, "dc-member")
    member, _ = t.issue(username=member_name, password=USER_PASSWORD)
    dom = new_domain(t, admin)
    rec = FirstParagraph({dom: "<domain>"})
    out = rec.out

    def req(label, method, path, token=admin, body=None, keep_body=False):
        r = rec(label, api(t, method, path, token, body))
        if keep_body and r.status_code < 300:
            out[f"{label}-body"] = r.json()
        return r

    base = f"domains/{dom}/config"
    ldap = {"url": "ldap://directory.test", "user_tree_dn": "ou=Users,dc=test", "password": "s3cret",
            "page_size": 50, "use_tls": False}
    req("get-none", "GET", base)
    req("get-none-member", "GET", base, member)
    req("get-group-none", "GET", f"{base}/ldap")
    req("get-option-none", "GET", f"{base}/ldap/url")
    req("put-member", "PUT", base, member, {"config": {"ldap": ldap}})
    req("put-reader", "PUT", base, reader, {"config": {"ldap": ldap}})
    for label, body in {
        "empty": {"config": {}},
        "no-body": {},
        "bad-group": {"config": {"nova": {"x": 1}}},
        "bad-option": {"config": {"ldap": {"bogus": 1}}},
        "group-not-object": {"config": {"ldap": "x"}},
        "group-empty": {"config": {"ldap": {}}},
    }.items():
        req(f"put-{label}", "PUT", base, body=body)
    req("put-unknown-domain", "PUT", "domains/nosuch/config", body={"config": {"ldap": ldap}})
    req("put", "PUT", base, body={"config": {"ldap": ldap, "identity": {"driver": "ldap"}}}, keep_body=True)
    req("put-again", "PUT", base, body={"config": {"ldap": ldap, "identity": {"driver": "ldap"}}}, keep_body=True)
    req("get", "GET", base, keep_body=True)
    req("get-reader", "GET", base, reader)
    req("get-system", "GET", base, system)
    req("get-member", "GET", base, member)
    req("head", "HEAD", base)
    req("get-group", "GET", f"{base}/ldap", keep_body=True)
    req("get-option", "GET", f"{base}/ldap/url", keep_body=True)
    req("get-sensitive", "GET", f"{base}/ldap/password")
    req("get-bad-group", "GET", f"{base}/nova")
    req("get-bad-option", "GET", f"{base}/ldap/bogus")
    req("get-unknown-domain", "GET", "domains/nosuch/config")
    req("get-unknown-domain-group", "GET", "domains/nosuch/config/ldap")
    req("get-unknown-domain-member", "GET", "domains/nosuch/config", member)

    # Updates: merge; a group or option in the path must be the only one given and exist.
    req("patch", "PATCH", base, body={"config": {"ldap": {"url": "ldap://other.test", "suffix": "dc=test"}}},
        keep_body=True)
    req("patch-group", "PATCH", f"{base}/ldap", body={"config": {"ldap": {"page_size": 10}}}, keep_body=True)
    req("patch-group-other", "PATCH", f"{base}/ldap", body={"config": {"identity": {"driver": "sql"}}})
    req("patch-group-two", "PATCH", f"{base}/ldap",
        body={"config": {"ldap": {"page_size": 1}, "identity": {"driver": "sql"}}})
    req("patch-option", "PATCH", f"{base}/ldap/url", body={"config": {"url": "ldap://third.test"}},
        keep_body=True)
    req("patch-option-other", "PATCH", f"{base}/ldap/url", body={"config": {"suffix": "x"}})
    req("patch-option-two", "PATCH", f"{base}/ldap/url", body={"config": {"url": "a", "suffix": "b"}})
    req("patch-option-missing", "PATCH", f"{base}/ldap/tls_cacertfile", body={"config": {"tls_cacertfile": "f"}})
    req("patch-option-empty", "PATCH", f"{base}/ldap/url", body={"config": {}})
    req("patch-sensitive", "PATCH", f"{base}/ldap/password", body={"config": {"password": "n3w"}},
        keep_body=True)
    req("patch-bad-group", "PATCH", f"{base}/nova", body={"config": {"nova": {"x": 1}}})
    req("patch-security", "PATCH", f"{base}/security_compliance", body={"config": {"security_compliance": {"x": 1}}})
    req("patch-member", "PATCH", base, member, {"config": {"ldap": {"url": "x"}}})
    req("patch-unknown-domain", "PATCH", "domains/nosuch/config", body={"config": {"ldap": {"url": "x"}}})
    req("patch-empty", "PATCH", base, body={"config": {}})
    r = req("put-on-group", "PUT", f"{base}/ldap", body={"config": {"ldap": {"url": "x"}}})
    out["put-on-group-body"] = r.json()

    # Deletes.
    req("delete-option-missing", "DELETE", f"{base}/ldap/tls_cacertfile")
    req("delete-option-false", "DELETE", f"{base}/ldap/use_tls")
    req("delete-option", "DELETE", f"{base}/ldap/suffix")
    req("get-after-option-delete", "GET", base, keep_body=True)
    req("delete-sensitive", "DELETE", f"{base}/ldap/password")
    req("delete-group", "DELETE", f"{base}/identity")
    req("delete-group-again", "DELETE", f"{base}/identity")
    req("delete-member", "DELETE", base, member)
    req("delete-unknown-domain", "DELETE", "domains/nosuch/config")
    req("delete", "DELETE", base)
    req("delete-again", "DELETE", base)
    req("get-deleted", "GET", base)
    # Only a sensitive option left: the update answers 404 (nothing shown remains).
    req("put-sensitive-only", "PUT", base, body={"config": {"ldap": {"password": "x"}}}, keep_body=True)
    req("patch-sensitive-only", "PATCH", base, body={"config": {"ldap": {"password": "y"}}})

    # Security compliance (default domain only) and defaults.
    req("security", "GET", "domains/default/config/security_compliance", keep_body=True)
    req("security-member", "GET", "domains/default/config/security_compliance", member, keep_body=True)
    req("security-option", "GET", "domains/default/config/security_compliance/password_regex", keep_body=True)
    req("security-bad-option", "GET", "domains/default/config/security_compliance/lockout_duration")
    req("security-other-domain", "GET", f"{base}/security_compliance")
    req("default", "GET", "domains/config/default", keep_body=True)
    req("default-reader", "GET", "domains/config/default", reader)
    req("default-member", "GET", "domains/config/default", member)
    req("default-group", "GET", "domains/config/identity/default", keep_body=True)
    req("default-option", "GET", "domains/config/ldap/url/default", keep_body=True)
    req("default-sensitive", "GET", "domains/config/ldap/password/default")
    req("default-bad-group", "GET", "domains/config/nova/default")
    req("default-bad-option", "GET", "domains/config/ldap/bogus/default")

    # A deleted domain takes its configuration with it.
    req("put-before-domain-delete", "PUT", base, body={"config": {"ldap": {"url": "ldap://x"}}})
    api(t, "PATCH", f"domains/{dom}", admin, {"domain": {"enabled": False}})
    assert api(t, "DELETE", f"domains/{dom}", admin).status_code == 204
    req("get-domain-deleted", "GET", base)
    return out


def test_domain_config_api_matches_keystone(pair):
    k = config_requests(pair.keystone)
    b = config_requests(pair.baton)
    diff = {label: (k[label], b.get(label)) for label in k if k[label] != b.get(label)}
    assert not diff and not sorted(set(b) - set(k)), f"(keystone, baton) per request: {diff}"


def test_domain_config_rows_served_by_both(pair):
    """A configuration either server wrote (the sensitive option included) is read, merged and
    deleted by the other, on one database."""
    for writer in pair.both():
        other = pair.baton if writer is pair.keystone else pair.keystone
        admin, _ = writer.issue()
        dom = new_domain(writer, admin)
        r = api(writer, "PUT", f"domains/{dom}/config", admin,
                {"config": {"ldap": {"url": "ldap://a", "password": "p", "page_size": 5}}})
        assert r.status_code == 201, r.text
        other_admin, _ = other.issue()
        r = api(other, "GET", f"domains/{dom}/config", other_admin)
        assert r.status_code == 200 and r.json() == {"config": {"ldap": {"url": "ldap://a", "page_size": 5}}}, r.text
        # The other server sees the sensitive option (404 would mean it is missing).
        r = api(other, "PATCH", f"domains/{dom}/config/ldap/password", other_admin,
                {"config": {"password": "q"}})
        assert r.status_code == 200, (writer.name, r.text)
        r = api(other, "PATCH", f"domains/{dom}/config/ldap", other_admin, {"config": {"ldap": {"url": "ldap://b"}}})
        assert r.status_code == 200, r.text
        r = api(writer, "GET", f"domains/{dom}/config/ldap/url", admin)
        assert r.json() == {"config": {"url": "ldap://b"}}, r.text
        assert api(other, "DELETE", f"domains/{dom}/config/ldap/password", other_admin).status_code == 204
        assert api(writer, "DELETE", f"domains/{dom}/config/ldap/password", admin).status_code == 404
