"""Endpoint filtering (/v3/OS-EP-FILTER) against Keystone 30.

The same requests (admin, a member, a system reader; endpoint groups with good and bad bodies;
project-endpoint and project-endpoint-group associations; unknown ids) get the same statuses,
body keys and messages from both servers. On one database, the catalogs of project-scoped tokens
are filtered identically by both, whichever server wrote the associations.
"""

from __future__ import annotations

import json
import time

import uuid

from conftest import CliPair
from interop_util import SYSTEM_SCOPE, USER_PASSWORD, api, make_user
from test_unified_limits import Recorder, compare

EP = "OS-EP-FILTER"


def catalog_setup(t, admin: str) -> dict:
    """Two services with a public and an internal endpoint each, in a new region, and a
    project the admin holds `admin` on (so its tokens carry a catalog)."""
    region = f"ef-{uuid.uuid4().hex[:6]}"
    assert api(t, "POST", "regions", admin, {"region": {"id": region}}).status_code == 201
    ids = {"region": region, "services": [], "endpoints": []}
    for kind in ("alpha", "beta"):
        r = api(t, "POST", "services", admin, {"service": {"type": f"{kind}-{uuid.uuid4().hex[:6]}",
                                                            "name": kind}})
        assert r.status_code == 201, r.text
        sid = r.json()["service"]["id"]
        ids["services"].append(sid)
        for iface in ("public", "internal"):
            r = api(t, "POST", "endpoints", admin, {"endpoint": {
                "service_id": sid, "interface": iface, "region_id": region,
                "url": f"http://{kind}.test/{iface}"}})
            assert r.status_code == 201, r.text
            ids["endpoints"].append(r.json()["endpoint"]["id"])
    r = api(t, "POST", "projects", admin, {"project": {"name": f"ef-{uuid.uuid4().hex[:6]}",
                                                        "domain_id": "default"}})
    assert r.status_code == 201, r.text
    ids["project"] = r.json()["project"]["id"]
    admin_user = api(t, "GET", "users?name=admin", admin).json()["users"][0]["id"]
    admin_role = api(t, "GET", "roles?name=admin", admin).json()["roles"][0]["id"]
    r = api(t, "PUT", f"projects/{ids['project']}/users/{admin_user}/roles/{admin_role}", admin)
    assert r.status_code == 204, r.text
    return ids


def project_catalog(t, project_id: str, services: list) -> list:
    """This run's services (the database may hold another run's) in the catalog of an admin
    token scoped to the project: (service name, interfaces) pairs."""
    _, body = t.issue({"project": {"id": project_id}})
    return sorted((s.get("name"), sorted(e["interface"] for e in s["endpoints"]))
                  for s in body["token"]["catalog"] if s["id"] in services)


def eventually_catalog(t, project_id: str, services: list, want: list) -> list:
    """The catalog once it is `want`, or what it still is after 8 s: a node sees another
    implementation's writes within its snapshot age (5 s, `directory.rs` `MAX_AGE`)."""
    deadline = time.monotonic() + 8
    while True:
        got = project_catalog(t, project_id, services)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def filter_requests(t) -> dict:
    admin, _ = t.issue()
    system, _ = t.issue(SYSTEM_SCOPE)
    ids = catalog_setup(t, admin)
    alpha, beta = ids["services"]
    a_pub, a_int, b_pub, b_int = ids["endpoints"]
    pid = ids["project"]
    _, member_name = make_user(t, admin, "ef-member")
    member, _ = t.issue(username=member_name, password=USER_PASSWORD)
    rec = Recorder({alpha: "<alpha>", beta: "<beta>", a_pub: "<a-pub>", a_int: "<a-int>", b_pub: "<b-pub>",
                    b_int: "<b-int>", pid: "<project>", ids["region"]: "<region>"})
    out = rec.out
    out["catalog-before"] = project_catalog(t, pid, ids["services"])

    def req(label, method, path, token=admin, body=None):
        r = rec(label, api(t, method, f"{EP}/{path}", token, body))
        return r

    # Endpoint groups.
    r = req("group-create", "POST", "endpoint_groups", body={"endpoint_group": {
        "name": "internal-only", "description": "internal", "filters": {"interface": "internal"}}})
    group = r.json()["endpoint_group"]["id"]
    rec.names[group] = "<group>"
    out["group-create-body"] = {k: v for k, v in r.json()["endpoint_group"].items() if k not in ("id", "links")}
    r = req("group-create-beta", "POST", "endpoint_groups", body={"endpoint_group": {
        "name": "beta", "filters": {"service_id": beta, "region_id": ids["region"]}}})
    beta_group = r.json()["endpoint_group"]["id"]
    rec.names[beta_group] = "<beta-group>"
    for label, body in {
        "no-body": {},
        "empty-filters": {"endpoint_group": {"name": "x", "filters": {}}},
        "bad-filter-key": {"endpoint_group": {"name": "x", "filters": {"enabled": True}}},
        "bad-interface": {"endpoint_group": {"name": "x", "filters": {"interface": "bogus"}}},
        "filters-not-object": {"endpoint_group": {"name": "x", "filters": 5}},
        "no-name": {"endpoint_group": {"filters": {"interface": "public"}}},
        "empty-name": {"endpoint_group": {"filters": {"interface": "public"}, "name": ""}},
        "extra": {"endpoint_group": {"filters": {"interface": "public"}, "name": "x", "other": 1}},
        "extra-top": {"x": 1},
    }.items():
        req(f"group-create-{label}", "POST", "endpoint_groups", body=body)
    req("group-create-member", "POST", "endpoint_groups", member,
        {"endpoint_group": {"name": "x", "filters": {"interface": "public"}}})
    r = req("group-list", "GET", "endpoint_groups")
    out["group-list-ours"] = sorted(g["name"] for g in r.json()["endpoint_groups"] if g["id"] in (group, beta_group))
    req("group-list-system", "GET", "endpoint_groups", system)
    req("group-list-member", "GET", "endpoint_groups", member)
    req("group-list-bad-query", "GET", "endpoint_groups?limit=1")
    req("group-show", "GET", f"endpoint_groups/{group}")
    req("group-show-member", "GET", f"endpoint_groups/{group}", member)
    req("group-show-unknown", "GET", "endpoint_groups/nosuch")
    r = req("group-update", "PATCH", f"endpoint_groups/{group}", body={"endpoint_group": {"description": None}})
    out["group-update-body"] = r.json().get("endpoint_group", {}).get("description", "absent")
    req("group-update-empty", "PATCH", f"endpoint_groups/{group}", body={"endpoint_group": {}})
    req("group-update-bad-key", "PATCH", f"endpoint_groups/{group}",
        body={"endpoint_group": {"filters": {"url": "x"}}})
    req("group-update-unknown", "PATCH", "endpoint_groups/nosuch", body={"endpoint_group": {"name": "y"}})
    req("group-update-no-body", "PATCH", f"endpoint_groups/{group}", body={})
    r = req("group-endpoints", "GET", f"endpoint_groups/{beta_group}/endpoints")
    out["group-endpoints-ids"] = sorted(rec.names.get(e["id"], "?") for e in r.json()["endpoints"])
    req("group-endpoints-unknown", "GET", "endpoint_groups/nosuch/endpoints")

    # Endpoint groups and projects.
    req("group-project-check-before", "GET", f"endpoint_groups/{group}/projects/{pid}")
    req("group-project-add", "PUT", f"endpoint_groups/{group}/projects/{pid}")
    req("group-project-add-again", "PUT", f"endpoint_groups/{group}/projects/{pid}")
    req("group-project-add-member", "PUT", f"endpoint_groups/{beta_group}/projects/{pid}", member)
    req("group-project-add-unknown-project", "PUT", f"endpoint_groups/{group}/projects/nosuch")
    req("group-project-add-unknown-group", "PUT", f"endpoint_groups/nosuch/projects/{pid}")
    req("group-project-check", "GET", f"endpoint_groups/{group}/projects/{pid}")
    r = req("group-projects", "GET", f"endpoint_groups/{group}/projects")
    out["group-projects-ids"] = [rec.names.get(p["id"], "?") for p in r.json()["projects"]]
    r = req("project-groups", "GET", f"projects/{pid}/endpoint_groups")
    out["project-groups-ids"] = [rec.names.get(g["id"], "?") for g in r.json()["endpoint_groups"]]
    req("project-groups-unknown", "GET", "projects/nosuch/endpoint_groups")
    out["catalog-internal"] = project_catalog(t, pid, ids["services"])

    # Endpoints and projects.
    req("project-endpoint-check-before", "GET", f"projects/{pid}/endpoints/{a_pub}")
    req("project-endpoint-add", "PUT", f"projects/{pid}/endpoints/{a_pub}")
    req("project-endpoint-add-again", "PUT", f"projects/{pid}/endpoints/{a_pub}")
    req("project-endpoint-add-member", "PUT", f"projects/{pid}/endpoints/{b_pub}", member)
    req("project-endpoint-add-unknown-endpoint", "PUT", f"projects/{pid}/endpoints/nosuch")
    req("project-endpoint-add-unknown-project", "PUT", f"projects/nosuch/endpoints/{a_pub}")
    req("project-endpoint-check", "GET", f"projects/{pid}/endpoints/{a_pub}")
    req("project-endpoint-head", "HEAD", f"projects/{pid}/endpoints/{a_pub}")
    r = req("project-endpoints", "GET", f"projects/{pid}/endpoints")
    # (The interface group matches the other run's internal endpoints too.)
    out["project-endpoints-ids"] = sorted(rec.names[e["id"]] for e in r.json()["endpoints"] if e["id"] in rec.names)
    r = req("endpoint-projects", "GET", f"endpoints/{a_pub}/projects")
    out["endpoint-projects-ids"] = [rec.names.get(p["id"], "?") for p in r.json()["projects"]]
    req("endpoint-projects-unknown", "GET", "endpoints/nosuch/projects")
    out["catalog-internal-and-alpha-public"] = project_catalog(t, pid, ids["services"])

    # A disabled endpoint leaves the catalog; removing the associations restores the whole one.
    api(t, "PATCH", f"endpoints/{a_int}", admin, {"endpoint": {"enabled": False}})
    out["catalog-disabled"] = project_catalog(t, pid, ids["services"])
    api(t, "PATCH", f"endpoints/{a_int}", admin, {"endpoint": {"enabled": True}})
    req("project-endpoint-remove", "DELETE", f"projects/{pid}/endpoints/{a_pub}")
    req("project-endpoint-remove-again", "DELETE", f"projects/{pid}/endpoints/{a_pub}")
    req("group-project-remove", "DELETE", f"endpoint_groups/{group}/projects/{pid}")
    req("group-project-remove-again", "DELETE", f"endpoint_groups/{group}/projects/{pid}")
    out["catalog-after"] = project_catalog(t, pid, ids["services"])
    req("group-project-add-beta", "PUT", f"endpoint_groups/{beta_group}/projects/{pid}")
    out["catalog-beta"] = project_catalog(t, pid, ids["services"])
    req("group-delete", "DELETE", f"endpoint_groups/{beta_group}")
    req("group-delete-again", "DELETE", f"endpoint_groups/{beta_group}")
    out["catalog-group-deleted"] = project_catalog(t, pid, ids["services"])
    req("group-delete-member", "DELETE", f"endpoint_groups/{group}", member)
    req("group-delete-last", "DELETE", f"endpoint_groups/{group}")
    return out


def test_endpoint_filter_api_matches_keystone(pair):
    compare(filter_requests(pair.keystone), filter_requests(pair.baton))


def test_catalogs_filtered_alike_on_one_database(pair):
    """Associations written by either server filter the catalogs both servers put in tokens."""
    for writer in pair.both():
        admin, _ = writer.issue()
        ids = catalog_setup(writer, admin)
        a_pub = ids["endpoints"][0]
        r = api(writer, "POST", f"{EP}/endpoint_groups", admin, {"endpoint_group": {
            "name": "beta-internal", "filters": {"service_id": ids["services"][1], "interface": "internal"}}})
        assert r.status_code == 201, r.text
        group = r.json()["endpoint_group"]["id"]
        assert api(writer, "PUT", f"{EP}/projects/{ids['project']}/endpoints/{a_pub}", admin).status_code == 204
        assert api(writer, "PUT", f"{EP}/endpoint_groups/{group}/projects/{ids['project']}",
                   admin).status_code == 204
        want = [("alpha", ["public"]), ("beta", ["internal"])]
        for t in pair.both():
            got = eventually_catalog(t, ids["project"], ids["services"], want)
            assert got == want, (writer.name, t.name, got)
            # The other server serves the rows too.
            admin_t, _ = t.issue()
            r = api(t, "GET", f"{EP}/projects/{ids['project']}/endpoints", admin_t)
            assert sorted(e["id"] for e in r.json()["endpoints"]) == sorted([a_pub, ids["endpoints"][3]])
        # Deleting the group on the other server widens the catalog on both.
        other = pair.baton if writer is pair.keystone else pair.keystone
        other_admin, _ = other.issue()
        assert api(other, "DELETE", f"{EP}/endpoint_groups/{group}", other_admin).status_code == 204
        for t in pair.both():
            got = eventually_catalog(t, ids["project"], ids["services"], [("alpha", ["public"])])
            assert got == [("alpha", ["public"])], (writer.name, t.name, got)


def test_return_all_endpoints_if_no_filter_false(tmp_path, keystone_template):
    """With `[endpoint_filter] return_all_endpoints_if_no_filter = false`, a project without
    associations gets an empty catalog from both servers, and one with associations its own."""
    from conftest import start_configured_pair

    k, b = start_configured_pair(tmp_path, keystone_template,
                                 {"endpoint_filter": {"return_all_endpoints_if_no_filter": "false"}})
    try:
        seen = []
        for t in (k, b):
            admin, _ = t.issue()
            ids = catalog_setup(t, admin)
            before = project_catalog(t, ids["project"], ids["services"])
            assert api(t, "PUT", f"{EP}/projects/{ids['project']}/endpoints/{ids['endpoints'][2]}",
                       admin).status_code == 204
            seen.append((before, project_catalog(t, ids["project"], ids["services"])))
        assert seen[0] == seen[1] == ([], [("beta", ["public"])]), seen
    finally:
        b.server.stop()
        k.server.stop()





def test_baton_endpoint_group_commands_print_what_openstack_prints(target, venv_bin, tmp_path):
    """`baton endpoint group ...` prints what `openstack endpoint group ...` prints, and its
    writes are what openstackclient's are."""
    t = target
    admin, _ = t.issue()
    ids = catalog_setup(t, admin)
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"interface": "internal"}))
    wider = tmp_path / "wider.json"
    wider.write_text(json.dumps({"service_id": ids["services"][0]}))

    cli = CliPair(t, venv_bin, tmp_path)
    bt, same, osc = cli.bt, cli.same, cli.osc

    name = f"eg-{uuid.uuid4().hex[:6]}"
    made = json.loads(bt("endpoint", "group", "create", "--description", "internal ones", "-f", "json",
                         name, str(filters)).stdout)
    assert made["filters"] == {"interface": "internal"} and made["name"] == name, made
    for fmt in ([], ["-f", "json"], ["-f", "value"]):
        same("endpoint", "group", "show", *fmt, name)
    same("endpoint", "group", "show", made["id"])
    bt("endpoint", "group", "add", "project", name, ids["project"])
    same("endpoint", "group", "list", "--endpointgroup", name)
    same("endpoint", "group", "list", "--project", ids["project"], "-f", "json")
    assert project_catalog(t, ids["project"], ids["services"]) == [("alpha", ["internal"]), ("beta", ["internal"])]
    bt("endpoint", "group", "set", name, "--filters", str(wider), "--description", "alpha")
    shown = json.loads(osc.run("endpoint", "group", "show", "-f", "json", name).stdout)
    assert (shown["filters"], shown["description"]) == ({"service_id": ids["services"][0]}, "alpha"), shown
    assert project_catalog(t, ids["project"], ids["services"]) == [("alpha", ["internal", "public"])]
    bt("endpoint", "group", "remove", "project", name, ids["project"])
    same("endpoint", "group", "list", "--project", ids["project"])
    bt("endpoint", "group", "delete", name)
    r = bt("endpoint", "group", "show", name, check=False)
    assert r.returncode == 1 and r.stderr.strip() == f"No EndpointGroup found for {name}", r.stderr

    # An endpoint on the project: `endpoint add|remove project`, `endpoint list --project|--endpoint`.
    a_pub = ids["endpoints"][0]
    bt("endpoint", "add", "project", a_pub, ids["project"])
    same("endpoint", "list", "--project", ids["project"])
    same("endpoint", "list", "--endpoint", a_pub, "-f", "json")
    assert project_catalog(t, ids["project"], ids["services"]) == [("alpha", ["public"])]
    bt("endpoint", "remove", "project", a_pub, ids["project"])
    same("endpoint", "list", "--project", ids["project"])
    r = bt("endpoint", "remove", "project", a_pub, ids["project"], check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
