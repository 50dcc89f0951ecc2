"""Federation identity providers, protocols and mappings (/v3/OS-FEDERATION/...) against
Keystone 30.

The same requests (admin, a system reader, a member; good and bad bodies; unknown ids;
duplicates) get the same statuses, bodies and messages from both servers; mapping bodies are
checked against the mapping schema of their version with every violation reported. On one
database the identity providers, remote ids, protocols and mappings either server wrote are
served by the other, and deleting a domain deletes its identity providers on both.
python-openstackclient's `identity provider`, `mapping` and `federation protocol` commands work
against both alike.
"""

from __future__ import annotations

import json
import uuid

from interop_util import USER_PASSWORD, api, make_user
from test_policies import FirstParagraph, system_reader
from test_unified_limits import compare

IDPS = "OS-FEDERATION/identity_providers"
MAPPINGS = "OS-FEDERATION/mappings"

RULES = [{"local": [{"user": {"name": "{0}"}}, {"group": {"id": "g1"}}],
          "remote": [{"type": "UserName"}, {"any_one_of": ["staff"], "type": "orgPersonType"}]}]

# Mapping bodies that break the schema, each in keys already sorted (Baton quotes objects with
# sorted keys; Keystone in the client's order).
BAD_MAPPINGS = {
    "no-rules": {},
    "rules-not-array": {"rules": "x"},
    "rules-empty": {"rules": []},
    "rule-no-remote": {"rules": [{"local": []}]},
    "rule-extra": {"rules": [{"local": [], "other": 1, "remote": [{"type": "a"}]}]},
    "remote-empty": {"rules": [{"local": [], "remote": []}]},
    "remote-two-kinds": {"rules": [{"local": [], "remote": [{"any_one_of": ["a"], "not_any_of": ["b"],
                                                             "type": "a"}]}]},
    "remote-list-not-array": {"rules": [{"local": [], "remote": [{"blacklist": "x", "type": "a"}]}]},
    "remote-not-object": {"rules": [{"local": [], "remote": ["a"]}]},
    "regex-not-bool": {"rules": [{"local": [], "remote": [{"regex": "yes", "type": "a", "whitelist": []}]}]},
    "group-both": {"rules": [{"local": [{"group": {"id": "g", "name": "n"}}], "remote": [{"type": "a"}]}]},
    "group-name-no-domain": {"rules": [{"local": [{"group": {"name": "n"}}], "remote": [{"type": "a"}]}]},
    "user-type": {"rules": [{"local": [{"user": {"name": "x", "type": "guest"}}], "remote": [{"type": "a"}]}]},
    "user-extra": {"rules": [{"local": [{"user": {"nickname": "x"}}], "remote": [{"type": "a"}]}]},
    "domain-extra": {"rules": [{"local": [{"domain": {"id": "d", "zone": "z"}}], "remote": [{"type": "a"}]}]},
    "project-domain-1.0": {"rules": [{"local": [{"projects": [{"domain": {"name": "d"}, "name": "p",
                                                               "roles": [{"name": "member"}]}]}],
                                      "remote": [{"type": "a"}]}]},
    "project-no-roles": {"rules": [{"local": [{"projects": [{"name": "p"}]}], "remote": [{"type": "a"}]}],
                         "schema_version": "2.0"},
    "projects-json-2.0": {"rules": [{"local": [{"projects_json": "x"}], "remote": [{"type": "a"}]}],
                          "schema_version": "2.0"},
    "many": {"rules": [{"local": [{"groups": 5, "user": {"id": 5}}], "remote": [{"type": 7}]}, "x"]},
}


def idp_requests(t) -> dict:
    admin, _ = t.issue()
    reader = system_reader(t, admin)
    _, member_name = make_user(t, admin, "idp-member")
    member, _ = t.issue(username=member_name, password=USER_PASSWORD)
    tag = uuid.uuid4().hex[:8]
    idp, idp2, mapping, m2 = f"idp-{tag}", f"idp2-{tag}", f"map-{tag}", f"map2-{tag}"
    rid1, rid2, rid3 = f"https://idp-{tag}.test/a", f"https://idp-{tag}.test/b", f"https://idp-{tag}.test/c"
    r = api(t, "POST", "domains", admin, {"domain": {"name": f"idp-dom-{tag}"}})
    dom = r.json()["domain"]["id"]
    rec = FirstParagraph({rid1: "<rid1>", rid2: "<rid2>", rid3: "<rid3>", idp2: "<idp2>", idp: "<idp>",
                          m2: "<map2>", mapping: "<map>", dom: "<domain>"})
    out = rec.out

    def shown(v):
        s = json.dumps(v)
        for k, name in rec.names.items():
            s = s.replace(k, name)
        return json.loads(s.replace(t.auth_url, "<v3>"))

    def req(label, method, path, token=admin, body=None):
        r = rec(label, api(t, method, path, token, body))
        if r.status_code < 300 and r.content:
            body = r.json()
            key = next(k for k in body if k != "links")
            out[f"{label}-body"] = shown(body[key]) if isinstance(body[key], dict) else None
            out[f"{label}-links"] = shown(body.get("links"))
        return r

    # Identity providers: bodies first (checked before policy), then policy, then rows.
    for label, body in {
        "extra-top": {"identity_provider": {}, "x": 1},
        "not-object": {"identity_provider": "x"},
        "bad-enabled": {"identity_provider": {"enabled": "maybe"}},
        "ttl-negative": {"identity_provider": {"authorization_ttl": -1}},
        "ttl-string": {"identity_provider": {"authorization_ttl": "5"}},
        "remote-ids-string": {"identity_provider": {"remote_ids": "x"}},
        "remote-id-long": {"identity_provider": {"remote_ids": ["x" * 65]}},
        "remote-id-number": {"identity_provider": {"remote_ids": [5]}},
        "remote-ids-repeated": {"identity_provider": {"remote_ids": ["a", "a"]}},
        "domain-bad": {"identity_provider": {"domain_id": "no/slash"}},
        "domain-empty": {"identity_provider": {"domain_id": ""}},
        "description-number": {"identity_provider": {"description": 5}},
        "extra": {"identity_provider": {"zzz": 1}},
    }.items():
        req(f"idp-create-{label}", "PUT", f"{IDPS}/{idp}", body=body)
    good = {"identity_provider": {"domain_id": dom, "remote_ids": [rid2, rid1], "description": "d",
                                  "enabled": True, "authorization_ttl": 30}}
    req("idp-create-member", "PUT", f"{IDPS}/{idp}", member, good)
    req("idp-create-reader", "PUT", f"{IDPS}/{idp}", reader, good)
    req("idp-create-unknown-domain", "PUT", f"{IDPS}/{idp}",
        body={"identity_provider": {"domain_id": "nosuchdomain"}})
    req("idp-create", "PUT", f"{IDPS}/{idp}", body=good)
    req("idp-create-again", "PUT", f"{IDPS}/{idp}", body=good)
    req("idp-create-taken-remote-id", "PUT", f"{IDPS}/{idp2}", body={"identity_provider": {"remote_ids": [rid1]}})
    r = req("idp2-create-auto-domain", "PUT", f"{IDPS}/{idp2}", body={})
    auto = r.json()["identity_provider"]["domain_id"]
    d = api(t, "GET", f"domains/{auto}", admin).json()["domain"]
    out["auto-domain"] = (d["name"] == auto, d["enabled"], d["description"].replace(idp2, "<idp2>"))
    out["idp2-body-domain"] = out["idp2-create-auto-domain-body"].pop("domain_id") == auto
    req("idp-show", "GET", f"{IDPS}/{idp}", reader)
    req("idp-show-member", "GET", f"{IDPS}/{idp}", member)
    req("idp-show-unknown", "GET", f"{IDPS}/nosuch")
    r = req("idp-list", "GET", IDPS)
    out["idp-list-ours"] = shown([x for x in r.json()["identity_providers"] if x["id"] == idp])
    out.pop("idp-list-body", None)
    r = req("idp-list-enabled", "GET", f"{IDPS}?enabled=false")
    out["idp-list-enabled-ours"] = sorted(shown([x["id"] for x in r.json()["identity_providers"]
                                                 if x["id"] in (idp, idp2)]))
    req("idp-list-member", "GET", IDPS, member)
    req("idp-update", "PATCH", f"{IDPS}/{idp}", body={"identity_provider": {
        "enabled": False, "description": None, "remote_ids": [rid3, rid1], "authorization_ttl": None}})
    req("idp-update-empty", "PATCH", f"{IDPS}/{idp}", body={"identity_provider": {}})
    req("idp-update-no-body", "PATCH", f"{IDPS}/{idp}", body={})
    req("idp-update-domain", "PATCH", f"{IDPS}/{idp}", body={"identity_provider": {"domain_id": dom}})
    req("idp-update-extra-top", "PATCH", f"{IDPS}/{idp}", body={"identity_provider": {"enabled": True}, "x": 1})
    req("idp-update-taken-remote-id", "PATCH", f"{IDPS}/{idp2}", body={"identity_provider": {"remote_ids": [rid3]}})
    req("idp-update-unknown", "PATCH", f"{IDPS}/nosuch", body={"identity_provider": {"enabled": True}})
    req("idp-update-member", "PATCH", f"{IDPS}/{idp}", member, {"identity_provider": {"enabled": True}})
    req("idp-show-after", "GET", f"{IDPS}/{idp}")

    # Mappings: policy first, then the mapping schema.
    req("map-create-member", "PUT", f"{MAPPINGS}/{mapping}", member, {"mapping": {"rules": RULES}})
    for label, body in BAD_MAPPINGS.items():
        req(f"map-create-{label}", "PUT", f"{MAPPINGS}/{mapping}", body={"mapping": body})
    req("map-create", "PUT", f"{MAPPINGS}/{mapping}", body={"mapping": {"rules": RULES}})
    req("map-create-again", "PUT", f"{MAPPINGS}/{mapping}", body={"mapping": {"rules": RULES}})
    req("map2-create-2.0", "PUT", f"{MAPPINGS}/{m2}", body={"mapping": {"rules": [{
        "local": [{"projects": [{"domain": {"name": "d"}, "name": "p", "roles": [{"name": "member"}]}]}],
        "remote": [{"type": "a"}]}], "schema_version": "2.0"}})
    req("map-show", "GET", f"{MAPPINGS}/{mapping}", reader)
    req("map-show-member", "GET", f"{MAPPINGS}/{mapping}", member)
    req("map-show-unknown", "GET", f"{MAPPINGS}/nosuch")
    r = req("map-list", "GET", MAPPINGS, reader)
    out["map-list-ours"] = shown(sorted([x for x in r.json()["mappings"] if x["id"] in (mapping, m2)],
                                        key=lambda x: x["id"]))
    out.pop("map-list-body", None)
    req("map-update", "PATCH", f"{MAPPINGS}/{m2}", body={"mapping": {"rules": RULES}})
    req("map-update-bad", "PATCH", f"{MAPPINGS}/{m2}", body={"mapping": {"rules": []}})
    req("map-update-unknown", "PATCH", f"{MAPPINGS}/nosuch", body={"mapping": {"rules": RULES}})

    # Protocols of an identity provider.
    P = f"{IDPS}/{idp}/protocols"
    for label, body in {
        "no-body": {},
        "no-mapping": {"protocol": {}},
        "mapping-empty": {"protocol": {"mapping_id": ""}},
        "mapping-number": {"protocol": {"mapping_id": 5}},
        "extra": {"protocol": {"mapping_id": mapping, "zzz": 1}},
        "extra-top": {"protocol": {"mapping_id": mapping}, "x": 1},
        "remote-attr-number": {"protocol": {"mapping_id": mapping, "remote_id_attribute": 5}},
        "remote-attr-long": {"protocol": {"mapping_id": mapping, "remote_id_attribute": "x" * 65}},
    }.items():
        req(f"proto-create-{label}", "PUT", f"{P}/saml2", body=body)
    req("proto-create-member", "PUT", f"{P}/saml2", member, {"protocol": {"mapping_id": mapping}})
    req("proto-create-unknown-mapping", "PUT", f"{P}/saml2", body={"protocol": {"mapping_id": "nosuch"}})
    req("proto-create-unknown-idp", "PUT", f"{IDPS}/nosuch/protocols/saml2", body={"protocol": {"mapping_id": mapping}})
    req("proto-create", "PUT", f"{P}/saml2", body={"protocol": {"mapping_id": mapping, "remote_id_attribute": None}})
    req("proto-create-again", "PUT", f"{P}/saml2", body={"protocol": {"mapping_id": mapping}})
    req("proto2-create", "PUT", f"{P}/openid", body={"protocol": {"mapping_id": m2, "remote_id_attribute": "iss"}})
    req("proto-show", "GET", f"{P}/saml2", reader)
    req("proto-show-member", "GET", f"{P}/saml2", member)
    req("proto-show-unknown", "GET", f"{P}/nosuch")
    r = req("proto-list", "GET", P, reader)
    out["proto-list-all"] = shown(sorted(r.json()["protocols"], key=lambda x: x["id"]))
    out.pop("proto-list-body", None)
    req("proto-list-unknown-idp", "GET", f"{IDPS}/nosuch/protocols")
    req("proto-update", "PATCH", f"{P}/saml2", body={"protocol": {"mapping_id": m2, "remote_id_attribute": "x"}})
    req("proto-update-keeps-attr", "PATCH", f"{P}/saml2", body={"protocol": {"mapping_id": mapping}})
    req("proto-update-no-mapping", "PATCH", f"{P}/saml2", body={"protocol": {"remote_id_attribute": "y"}})
    req("proto-update-attr-null", "PATCH", f"{P}/saml2", body={"protocol": {"mapping_id": mapping,
                                                                           "remote_id_attribute": None}})
    req("proto-update-empty", "PATCH", f"{P}/saml2", body={"protocol": {}})
    req("proto-update-unknown-mapping", "PATCH", f"{P}/saml2", body={"protocol": {"mapping_id": "nosuch"}})
    req("proto-update-unknown", "PATCH", f"{P}/nosuch", body={"protocol": {"mapping_id": mapping}})
    r = req("proto-list-after", "GET", P)
    out["proto-list-after-all"] = shown(sorted(r.json()["protocols"], key=lambda x: x["id"]))
    out.pop("proto-list-after-body", None)
    req("proto-delete-member", "DELETE", f"{P}/saml2", member)
    req("proto-delete", "DELETE", f"{P}/saml2")
    req("proto-delete-again", "DELETE", f"{P}/saml2")

    # Deleting: a mapping in use by a protocol goes; the identity provider takes its protocols.
    req("map-delete-member", "DELETE", f"{MAPPINGS}/{m2}", member)
    req("map-delete-in-use", "DELETE", f"{MAPPINGS}/{m2}")
    req("map-delete-again", "DELETE", f"{MAPPINGS}/{m2}")
    req("idp-delete-member", "DELETE", f"{IDPS}/{idp}", member)
    req("idp-delete", "DELETE", f"{IDPS}/{idp}")
    req("idp-delete-again", "DELETE", f"{IDPS}/{idp}")
    req("proto-list-gone-idp", "GET", P)
    req("idp2-delete", "DELETE", f"{IDPS}/{idp2}")
    out["auto-domain-after"] = api(t, "GET", f"domains/{auto}", admin).status_code
    req("map-delete", "DELETE", f"{MAPPINGS}/{mapping}")

    # The older names of /v3/auth/projects and /v3/auth/domains.
    for kind in ("projects", "domains"):
        r = api(t, "GET", f"OS-FEDERATION/{kind}", admin)
        want = api(t, "GET", f"auth/{kind}", admin).json()
        out[f"os-federation-{kind}"] = (r.status_code, r.json()["links"]["self"].split("/v3/")[1],
                                        sorted(x["id"] for x in r.json()[kind]) == sorted(x["id"] for x in want[kind]))
    return out


def test_identity_provider_api_matches_keystone(pair):
    k = idp_requests(pair.keystone)
    # A deliberate difference: on SQLite Keystone 30 names no value in an identity provider's
    # 409 (`Duplicate entry: None.`, `Duplicate remote ID: None.`); Baton names the duplicate,
    # as Keystone does on MySQL and PostgreSQL.
    for label, value in (("idp-create-again", "<idp>"), ("idp-create-taken-remote-id", "<rid1>"),
                         ("idp-update-taken-remote-id", "<rid3>")):
        status, keys, message = k[label]
        k[label] = (status, keys, message.replace(": None.", f": {value}."))
    compare(k, idp_requests(pair.baton))


def federated_user(db, user_id: str, domain_id: str, idp: str, protocol: str) -> None:
    """The rows a federated log-in through Keystone leaves: a user shadowed by a federated_user."""
    import sqlite3

    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO user (id, extra, enabled, domain_id, created_at) VALUES (?, '{}', 1, ?, "
                  "'2026-01-01 00:00:00')", (user_id, domain_id))
        c.execute("INSERT INTO federated_user (user_id, idp_id, protocol_id, unique_id, display_name) "
                  "VALUES (?, ?, ?, ?, ?)", (user_id, idp, protocol, user_id, "fed"))


def test_identity_providers_served_by_both(pair):
    """Each implementation's identity providers, remote ids, protocols and mappings are served by
    the other; deleting a protocol or identity provider deletes the federated users it leaves
    with no identity, and deleting a domain deletes its identity providers, on both."""
    for writer in pair.both():
        other = pair.baton if writer is pair.keystone else pair.keystone
        admin, _ = writer.issue()
        other_admin, _ = other.issue()
        tag = uuid.uuid4().hex[:8]
        idp, mapping = f"idp-{tag}", f"map-{tag}"
        dom = api(writer, "POST", "domains", admin, {"domain": {"name": f"d-{tag}"}}).json()["domain"]["id"]
        r = api(writer, "PUT", f"{MAPPINGS}/{mapping}", admin, {"mapping": {"rules": RULES, "schema_version": "2.0"}})
        assert r.status_code == 201, r.text
        r = api(writer, "PUT", f"{IDPS}/{idp}", admin, {"identity_provider": {
            "domain_id": dom, "remote_ids": [f"https://{tag}.test/b", f"https://{tag}.test/a"],
            "enabled": True, "authorization_ttl": 5, "description": "x"}})
        assert r.status_code == 201, r.text
        for proto, attr in (("saml2", None), ("openid", "HTTP_OIDC_ISS")):
            r = api(writer, "PUT", f"{IDPS}/{idp}/protocols/{proto}", admin,
                    {"protocol": {"mapping_id": mapping, "remote_id_attribute": attr}})
            assert r.status_code == 201, r.text
        for t, token in ((writer, admin), (other, other_admin)):
            got = api(t, "GET", f"{IDPS}/{idp}", token).json()["identity_provider"]
            assert {k: v for k, v in got.items() if k != "links"} == {
                "id": idp, "domain_id": dom, "enabled": True, "authorization_ttl": 5, "description": "x",
                "remote_ids": [f"https://{tag}.test/a", f"https://{tag}.test/b"]}, (writer.name, t.name, got)
            m = api(t, "GET", f"{MAPPINGS}/{mapping}", token).json()["mapping"]
            assert (m["rules"], m["schema_version"]) == (RULES, "2.0"), (writer.name, t.name, m)
            protos = api(t, "GET", f"{IDPS}/{idp}/protocols", token).json()["protocols"]
            assert sorted((p["id"], p["mapping_id"], p["remote_id_attribute"]) for p in protos) == [
                ("openid", mapping, "HTTP_OIDC_ISS"), ("saml2", mapping, None)], (writer.name, t.name, protos)
        # The other implementation deletes: a protocol, then the identity provider.
        lone, shared = uuid.uuid4().hex, uuid.uuid4().hex
        federated_user(writer.db_path, lone, dom, idp, "saml2")
        federated_user(writer.db_path, shared, dom, idp, "openid")
        assert api(other, "GET", f"users/{lone}", other_admin).status_code == 200
        assert api(other, "DELETE", f"{IDPS}/{idp}/protocols/saml2", other_admin).status_code == 204
        assert api(writer, "GET", f"users/{lone}", admin).status_code == 404
        assert api(writer, "GET", f"users/{shared}", admin).status_code == 200
        assert api(other, "DELETE", f"{IDPS}/{idp}", other_admin).status_code == 204
        for t, token in ((writer, admin), (other, other_admin)):
            assert api(t, "GET", f"users/{shared}", token).status_code == 404, (writer.name, t.name)
            assert api(t, "GET", f"{IDPS}/{idp}", token).status_code == 404
        # A domain takes its identity providers with it.
        idp2 = f"idp2-{tag}"
        r = api(writer, "PUT", f"{IDPS}/{idp2}", admin, {"identity_provider": {"domain_id": dom}})
        assert r.status_code == 201, r.text
        assert api(other, "PATCH", f"domains/{dom}", other_admin, {"domain": {"enabled": False}}).status_code == 200
        assert api(other, "DELETE", f"domains/{dom}", other_admin).status_code == 204
        for t, token in ((writer, admin), (other, other_admin)):
            assert api(t, "GET", f"{IDPS}/{idp2}", token).status_code == 404, (writer.name, t.name)
        assert api(other, "DELETE", f"{MAPPINGS}/{mapping}", other_admin).status_code == 204


def test_openstackclient_federation_commands(target, venv_bin, tmp_path):
    """`openstack identity provider|mapping|federation protocol create|list|show|set|delete`
    work against both alike, and `baton ...` prints what openstackclient prints."""
    from conftest import CliPair

    cli = CliPair(target, venv_bin, tmp_path)
    tag = uuid.uuid4().hex[:6]
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    ids = tmp_path / "remote-ids"
    ids.write_text(f"https://{tag}.test/z\n https://{tag}.test/y\n")

    # Baton's commands make the resources; both tools show them.
    idp, mapping = f"idp-{tag}", f"map-{tag}"
    cli.bt("identity", "provider", "create", "--remote-id-file", str(ids), "--domain", "default",
           "--description", "d", "--authorization-ttl", "10", idp)
    cli.bt("mapping", "create", "--rules", str(rules), "--schema-version", "2.0", mapping)
    cli.bt("federation", "protocol", "create", "--identity-provider", idp, "--mapping", mapping, "saml2")
    for fmt in ([], ["-f", "json"], ["-f", "value"]):
        cli.same("identity", "provider", "show", idp, *fmt)
        cli.same("mapping", "show", mapping, *fmt)
        cli.same("federation", "protocol", "show", "--identity-provider", idp, "saml2", *fmt)
        cli.same("federation", "protocol", "list", "--identity-provider", idp, *fmt)
    cli.same("identity", "provider", "list", "--id", idp)
    cli.same("identity", "provider", "list", "--enabled", "-f", "value", "-c", "ID")
    cli.same("mapping", "list")
    cli.bt("identity", "provider", "set", "--disable", "--remote-id", f"https://{tag}.test/x",
           "--authorization-ttl", "0", idp)
    cli.same("identity", "provider", "show", idp)
    cli.bt("mapping", "set", "--rules", str(rules), mapping)
    cli.same("mapping", "show", mapping, "-f", "json")
    cli.bt("federation", "protocol", "set", "--identity-provider", idp, "--mapping", mapping, "saml2")
    cli.same("federation", "protocol", "show", "--identity-provider", idp, "saml2")
    for args in (("identity", "provider", "show", "nosuch"), ("mapping", "show", "nosuch"),
                 ("federation", "protocol", "show", "--identity-provider", idp, "nosuch"),
                 ("identity", "provider", "create", "--authorization-ttl", "-1", "x")):
        r = cli.bt(*args, check=False)
        want = cli.os(*args, check=False)
        assert r.returncode == want.returncode == 1 and r.stderr.strip() == want.stderr.strip().splitlines()[-1], \
            (args, r.stderr, want.stderr)
    cli.bt("federation", "protocol", "delete", "--identity-provider", idp, "saml2")
    cli.bt("identity", "provider", "delete", idp)
    cli.bt("mapping", "delete", mapping)
    assert cli.bt("mapping", "show", mapping, check=False).returncode == 1

    # openstackclient's commands make them; Baton's read them back.
    idp2, m2 = f"idp2-{tag}", f"map2-{tag}"
    made = json.loads(cli.os("identity", "provider", "create", "--remote-id", f"https://{tag}.test/w",
                             "-f", "json", idp2).stdout)
    assert (made["id"], made["enabled"], made["remote_ids"]) == (idp2, True, [f"https://{tag}.test/w"]), made
    cli.os("mapping", "create", "--rules", str(rules), m2)
    cli.os("federation", "protocol", "create", "--identity-provider", idp2, "--mapping", m2, "openid")
    assert cli.bt_json("mapping", "show", m2)["schema_version"] == "1.0"
    assert [p["id"] for p in cli.bt_json("federation", "protocol", "list", "--identity-provider", idp2)] == ["openid"]
    cli.os("federation", "protocol", "delete", "--identity-provider", idp2, "openid")
    cli.os("identity", "provider", "delete", idp2)
    cli.os("mapping", "delete", m2)
    r = cli.os("identity", "provider", "show", idp2, check=False)
    assert r.returncode == 1, r.stdout
