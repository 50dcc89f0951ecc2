"""Policy blobs (/v3/policies) and endpoint policy (OS-ENDPOINT-POLICY) against Keystone 30.

The same requests (admin, a system reader, a member; good and bad bodies; associations with an
endpoint, a service, a service in a region; unknown ids; the endpoint lookup walking up the region
tree) get the same statuses, body keys and messages from both servers. On one database, the rows
either server wrote are served by the other, and both answer the same policy for each endpoint.
"""

from __future__ import annotations

import uuid

from interop_util import SYSTEM_SCOPE, USER_PASSWORD, api, make_user
from test_unified_limits import Recorder, compare

EP = "OS-ENDPOINT-POLICY"


class FirstParagraph(Recorder):
    """Keystone's older validator appends jsonschema's report (the schema and instance, printed
    by Python) to its 400s; Baton sends the first paragraph, the part naming field and fault.
    A list's keys are those of all its members (Keystone lists policies in the database's order,
    Baton by id, so the first member differs)."""

    def __call__(self, label: str, r):
        super().__call__(label, r)
        status, keys, message = self.out[label]
        if message:
            message = message.split("\n\nFailed validating")[0]
        if keys:
            body = r.json()
            for k, v in body.items():
                if isinstance(v, list) and v and isinstance(v[0], dict):
                    keys[k] = sorted({key for item in v for key in item})
        self.out[label] = (status, keys, message)
        return r


def region_setup(t, admin: str) -> dict:
    """A region with a child region, a service, an endpoint in each region and one in none."""
    top = f"ep-top-{uuid.uuid4().hex[:6]}"
    sub = f"ep-sub-{uuid.uuid4().hex[:6]}"
    assert api(t, "POST", "regions", admin, {"region": {"id": top}}).status_code == 201
    assert api(t, "POST", "regions", admin, {"region": {"id": sub, "parent_region_id": top}}).status_code == 201
    r = api(t, "POST", "services", admin, {"service": {"type": f"volume-{uuid.uuid4().hex[:6]}"}})
    assert r.status_code == 201, r.text
    svc = r.json()["service"]["id"]
    eps = []
    for region in (sub, top, None):
        e = {"service_id": svc, "interface": "public", "url": "http://cinder.test/"}
        if region:
            e["region_id"] = region
        r = api(t, "POST", "endpoints", admin, {"endpoint": e})
        assert r.status_code == 201, r.text
        eps.append(r.json()["endpoint"]["id"])
    return {"top": top, "sub": sub, "service": svc, "endpoints": eps}


def policy_requests(t) -> dict:
    admin, _ = t.issue()
    system, _ = t.issue(SYSTEM_SCOPE)
    ids = region_setup(t, admin)
    top, sub, svc = ids["top"], ids["sub"], ids["service"]
    in_sub, in_top, nowhere = ids["endpoints"]
    _, member_name = make_user(t, admin, "ep-member")
    member, _ = t.issue(username=member_name, password=USER_PASSWORD)
    rec = FirstParagraph({top: "<top>", sub: "<sub>", svc: "<service>", in_sub: "<in-sub>",
                          in_top: "<in-top>", nowhere: "<nowhere>"})
    out = rec.out

    def req(label, method, path, token=admin, body=None):
        return rec(label, api(t, method, path, token, body))

    # Policy blobs.
    r = req("create", "POST", "policies", body={"policy": {"blob": '{"a": 1}', "type": "application/json",
                                                            "x-tag": 1}})
    p1 = r.json()["policy"]["id"]
    out["create-body"] = {k: v for k, v in r.json()["policy"].items() if k not in ("id", "links")}
    pols = [p1]
    for n in (2, 3):
        r = req(f"create-{n}", "POST", "policies", body={"policy": {"blob": f"b{n}", "type": "text/plain"}})
        pols.append(r.json()["policy"]["id"])
    p1, p2, p3 = pols
    rec.names.update({p1: "<p1>", p2: "<p2>", p3: "<p3>"})
    for label, body in {
        "no-body": {},
        "no-type": {"policy": {"blob": "x"}},
        "no-blob": {"policy": {"type": "x"}},
        "blob-not-string": {"policy": {"blob": 1, "type": "t"}},
        "type-null": {"policy": {"blob": "x", "type": None}},
        "not-object": {"policy": "x"},
    }.items():
        req(f"create-{label}", "POST", "policies", body=body)
    req("create-member", "POST", "policies", member, {"policy": {"blob": "x", "type": "t"}})
    req("create-member-bad", "POST", "policies", member, {})
    req("create-reader", "POST", "policies", system_reader(t, admin), {"policy": {"blob": "x", "type": "t"}})
    r = req("list", "GET", "policies")
    out["list-ours"] = sorted(rec.names.get(p["id"], "?") for p in r.json()["policies"] if p["id"] in pols)
    r = req("list-type", "GET", "policies?type=application/json")
    out["list-type-ours"] = sorted(rec.names.get(p["id"], "?") for p in r.json()["policies"] if p["id"] in pols)
    req("list-system", "GET", "policies", system)
    req("list-member", "GET", "policies", member)
    req("show", "GET", f"policies/{p1}")
    req("show-member", "GET", f"policies/{p1}", member)
    req("show-unknown", "GET", "policies/nosuch")
    req("show-unknown-member", "GET", "policies/nosuch", member)
    r = req("update", "PATCH", f"policies/{p1}", body={"policy": {"type": "text/x-yaml", "note": "n"}})
    out["update-body"] = {k: v for k, v in r.json()["policy"].items() if k not in ("id", "links")}
    req("update-same-id", "PATCH", f"policies/{p1}", body={"policy": {"id": p1, "blob": "c"}})
    req("update-other-id", "PATCH", f"policies/{p1}", body={"policy": {"id": "other"}})
    req("update-empty", "PATCH", f"policies/{p1}", body={"policy": {}})
    req("update-no-body", "PATCH", f"policies/{p1}", body={})
    req("update-bad-type", "PATCH", f"policies/{p1}", body={"policy": {"type": 5}})
    req("update-unknown", "PATCH", "policies/nosuch", body={"policy": {"blob": "x"}})
    req("update-member", "PATCH", f"policies/{p1}", member, {"policy": {"blob": "x"}})

    # Associations.
    base = f"policies/{p1}/{EP}"
    req("ep-check-before", "GET", f"{base}/endpoints/{in_sub}")
    req("ep-put", "PUT", f"{base}/endpoints/{in_sub}")
    req("ep-put-again", "PUT", f"{base}/endpoints/{in_sub}")
    req("ep-put-member", "PUT", f"{base}/endpoints/{in_sub}", member)
    req("ep-put-reader", "PUT", f"{base}/endpoints/{in_sub}", system)
    req("ep-put-unknown-endpoint", "PUT", f"{base}/endpoints/nosuch")
    req("ep-put-unknown-policy", "PUT", f"policies/nosuch/{EP}/endpoints/{in_sub}")
    req("ep-put-unknown-both-member", "PUT", f"policies/nosuch/{EP}/endpoints/nosuch", member)
    req("ep-check", "GET", f"{base}/endpoints/{in_sub}")
    req("ep-head", "HEAD", f"{base}/endpoints/{in_sub}")
    req("ep-check-other-policy", "GET", f"policies/{p2}/{EP}/endpoints/{in_sub}")
    req("ep-check-member", "GET", f"{base}/endpoints/{in_sub}", member)
    r2 = f"policies/{p2}/{EP}/services/{svc}/regions/{top}"
    req("region-put", "PUT", r2)
    req("region-check", "GET", r2)
    req("region-put-unknown-region", "PUT", f"policies/{p2}/{EP}/services/{svc}/regions/nosuch")
    req("region-put-unknown-service", "PUT", f"policies/{p2}/{EP}/services/nosuch/regions/{top}")
    req("region-check-sub", "GET", f"policies/{p2}/{EP}/services/{svc}/regions/{sub}")
    s3 = f"policies/{p3}/{EP}/services/{svc}"
    req("service-put", "PUT", s3)
    req("service-check", "GET", s3)
    req("service-check-other", "GET", f"policies/{p2}/{EP}/services/{svc}")
    req("service-put-unknown", "PUT", f"policies/{p3}/{EP}/services/nosuch")

    # Which policy each endpoint uses, and each policy's endpoints.
    def policy_for(label, endpoint, token=admin):
        r = req(label, "GET", f"endpoints/{endpoint}/{EP}/policy", token)
        if r.status_code == 200:
            p = r.json()["policy"]
            out[f"{label}-id"] = rec.names.get(p["id"], "?")
            out[f"{label}-link"] = p["links"]["self"].split("/v3/")[1].replace(p["id"], "<id>")

    def endpoints_for(label, policy):
        r = req(label, "GET", f"policies/{policy}/{EP}/endpoints")
        if r.status_code == 200:
            out[f"{label}-ids"] = sorted(rec.names.get(e["id"], "?") for e in r.json()["endpoints"])
            out[f"{label}-keys"] = sorted({k for e in r.json()["endpoints"] for k in e})

    policy_for("for-in-sub", in_sub)
    policy_for("for-in-top", in_top, system)
    policy_for("for-nowhere", nowhere)
    policy_for("for-member", in_sub, member)
    policy_for("for-unknown", "nosuch")
    endpoints_for("endpoints-p1", p1)
    endpoints_for("endpoints-p2", p2)
    endpoints_for("endpoints-p3", p3)
    endpoints_for("endpoints-unknown", "nosuch")
    req("endpoints-member", "GET", f"policies/{p1}/{EP}/endpoints", member)

    # Removing the endpoint's own association: the parent region's policy applies.
    req("ep-delete", "DELETE", f"{base}/endpoints/{in_sub}")
    req("ep-delete-again", "DELETE", f"{base}/endpoints/{in_sub}")
    req("ep-delete-member", "DELETE", f"{base}/endpoints/{in_sub}", member)
    policy_for("for-in-sub-after", in_sub)
    # One policy per target: another association for the same endpoint replaces it.
    req("ep3-put", "PUT", f"policies/{p3}/{EP}/endpoints/{in_top}")
    req("ep1-put-same-endpoint", "PUT", f"{base}/endpoints/{in_top}")
    req("ep3-check-replaced", "GET", f"policies/{p3}/{EP}/endpoints/{in_top}")
    policy_for("for-in-top-replaced", in_top)
    req("region-delete", "DELETE", r2)
    req("service-delete-unknown-region", "DELETE", f"policies/{p2}/{EP}/services/{svc}/regions/nosuch")

    # Deleting a policy leaves its associations behind.
    req("delete-member", "DELETE", f"policies/{p3}", member)
    req("delete", "DELETE", f"policies/{p3}")
    req("delete-again", "DELETE", f"policies/{p3}")
    policy_for("for-nowhere-deleted", nowhere)
    endpoints_for("endpoints-deleted", p3)
    for p in (p1, p2):
        api(t, "DELETE", f"policies/{p}", admin)
    return out


def system_reader(t, admin: str) -> str:
    """A token of a new user holding `reader` on the system."""
    uid, name = make_user(t, admin, "ep-reader", roles=())
    reader = api(t, "GET", "roles?name=reader", admin).json()["roles"][0]["id"]
    assert api(t, "PUT", f"system/users/{uid}/roles/{reader}", admin).status_code == 204
    token, _ = t.issue(SYSTEM_SCOPE, username=name, password=USER_PASSWORD)
    return token


def test_policy_api_matches_keystone(pair):
    k = policy_requests(pair.keystone)
    # A deliberate difference: Keystone 30 prints the database row where the id belongs when an
    # association names a deleted policy (`Could not find policy: ('<id>',).`); Baton the id.
    status, keys, message = k["for-nowhere-deleted"]
    k["for-nowhere-deleted"] = (status, keys, message.replace("('<p3>',)", "<p3>"))
    compare(k, policy_requests(pair.baton))


def test_policy_rows_served_by_both(pair):
    """Policies and associations written by either server are read, checked and resolved
    identically by the other, on one database."""
    for writer in pair.both():
        admin, _ = writer.issue()
        ids = region_setup(writer, admin)
        in_sub, in_top, nowhere = ids["endpoints"]
        made = []
        for blob in ('{"rule": "admin"}', "plain"):
            r = api(writer, "POST", "policies", admin, {"policy": {"blob": blob, "type": "text/plain",
                                                                    "owner": writer.name}})
            assert r.status_code == 201, r.text
            made.append(r.json()["policy"])
        first, second = (p["id"] for p in made)
        for path in (f"policies/{first}/{EP}/endpoints/{in_sub}",
                     f"policies/{second}/{EP}/services/{ids['service']}/regions/{ids['top']}"):
            assert api(writer, "PUT", path, admin).status_code == 204
        for t in pair.both():
            token, _ = t.issue()
            for p in made:
                r = api(t, "GET", f"policies/{p['id']}", token)
                assert r.status_code == 200, (writer.name, t.name, r.text)
                got = {k: v for k, v in r.json()["policy"].items() if k != "links"}
                assert got == {k: v for k, v in p.items() if k != "links"}, (writer.name, t.name, got)
            assert api(t, "GET", f"policies/{first}/{EP}/endpoints/{in_sub}", token).status_code == 204
            resolved = [api(t, "GET", f"endpoints/{e}/{EP}/policy", token) for e in (in_sub, in_top, nowhere)]
            assert [r.status_code for r in resolved] == [200, 200, 404], (writer.name, t.name)
            assert [r.json()["policy"]["id"] for r in resolved[:2]] == [first, second]
            r = api(t, "GET", f"policies/{second}/{EP}/endpoints", token)
            assert sorted(e["id"] for e in r.json()["endpoints"]) == sorted([in_sub, in_top])


def test_baton_policy_commands_print_what_openstack_prints(target, venv_bin, tmp_path):
    """`baton policy ...` prints what `openstack policy ...` prints, and its writes are what
    openstackclient's are."""
    import json

    from conftest import CliPair

    t = target
    admin, _ = t.issue()
    # This module's other tests share the database: only this test's policies are compared.
    for p in api(t, "GET", "policies", admin).json()["policies"]:
        api(t, "DELETE", f"policies/{p['id']}", admin)
    rules = tmp_path / "rules.json"
    rules.write_text('  {"identity:get_user": "role:admin"}\n')
    yaml_rules = tmp_path / "rules.yaml"
    yaml_rules.write_text('"identity:get_user": "role:reader"\n')

    cli = CliPair(t, venv_bin, tmp_path)
    bt, same, osc = cli.bt, cli.same, cli.osc

    made = json.loads(bt("policy", "create", "-f", "json", str(rules)).stdout)
    assert made["rules"] == '{"identity:get_user": "role:admin"}' and made["type"] == "application/json", made
    theirs = json.loads(osc.run("policy", "create", "--type", "text/x-yaml", "-f", "json", str(yaml_rules)).stdout)
    for fmt in ([], ["-f", "json"], ["-f", "value"]):
        same("policy", "show", made["id"], *fmt)
        same("policy", "show", theirs["id"], *fmt)
    same("policy", "list")
    same("policy", "list", "--long", "-f", "json")
    bt("policy", "set", made["id"], "--type", "text/x-yaml", "--rules", str(yaml_rules))
    shown = json.loads(osc.run("policy", "show", "-f", "json", made["id"]).stdout)
    assert (shown["type"], shown["rules"]) == ("text/x-yaml", '"identity:get_user": "role:reader"'), shown
    same("policy", "list", "--long")
    r = bt("policy", "create", str(tmp_path / "missing"), check=False)
    assert r.returncode == 1 and r.stderr.strip() == f"Error occurred trying to read from file {tmp_path / 'missing'}"
    bt("policy", "delete", made["id"], theirs["id"])
    same("policy", "list")
    r = bt("policy", "delete", made["id"], check=False)
    want = cli.os("policy", "delete", made["id"], check=False)
    assert r.returncode == want.returncode == 1, (r.stderr, want.stderr)
    assert r.stderr.strip().endswith(want.stderr.strip().splitlines()[-1]), (r.stderr, want.stderr)
