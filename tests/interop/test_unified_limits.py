"""Unified limits (/v3/registered_limits, /v3/limits, /v3/limits/model) against Keystone 30.

The same requests (admin, a member, a domain admin; good and bad bodies; filters; duplicates; a
registered limit in use; a project that is a domain) get the same statuses, body keys and
messages from both servers, with the `flat` model and with `strict_two_level`. On one database,
the rows each server writes are served by the other. python-openstackclient's `registered limit`
and `limit` commands print the same on both, and the real oslo.limit (the quota check Nova and
Glance make) gives the same verdicts against both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import uuid

import pytest

from conftest import CliPair, OpenStackCLI, start_configured_pair
from interop_util import (ADMIN_PASSWORD, DOMAIN_SCOPE, SYSTEM_SCOPE, USER_PASSWORD, api, make_user,
                          project_id)

SERVICE = "9fe2ff9ee4384b1894a90878d3e92bab"  # a well-formed id no service has


def setup_catalog(t, admin: str) -> dict:
    """A service with a public endpoint in a new region, and two projects (one under the other):
    the ids the requests use."""
    r = api(t, "POST", "services", admin, {"service": {"type": f"quota-{uuid.uuid4().hex[:6]}",
                                                        "name": "quota"}})
    assert r.status_code == 201, r.text
    sid = r.json()["service"]["id"]
    region = f"region-{uuid.uuid4().hex[:6]}"
    r = api(t, "POST", "regions", admin, {"region": {"id": region}})
    assert r.status_code == 201, r.text
    r = api(t, "POST", "endpoints", admin, {"endpoint": {
        "service_id": sid, "interface": "public", "region_id": region, "url": "http://quota.test"}})
    assert r.status_code == 201, r.text
    eid = r.json()["endpoint"]["id"]
    r = api(t, "POST", "projects", admin, {"project": {"name": f"top-{uuid.uuid4().hex[:6]}",
                                                        "domain_id": "default"}})
    assert r.status_code == 201, r.text
    top = r.json()["project"]["id"]
    r = api(t, "POST", "projects", admin, {"project": {"name": f"sub-{uuid.uuid4().hex[:6]}",
                                                        "domain_id": "default", "parent_id": top}})
    assert r.status_code == 201, r.text
    return {"service": sid, "region": region, "endpoint": eid, "top": top,
            "sub": r.json()["project"]["id"]}


class Recorder:
    """Status, body keys and error message per label, ids replaced by their names."""

    def __init__(self, names: dict) -> None:
        self.names = names
        self.out: dict = {}

    def __call__(self, label: str, r):
        keys = message = None
        if r.content and r.headers.get("content-type", "").startswith("application/json"):
            j = r.json()
            keys = {k: sorted(v) if isinstance(v, dict) else (
                sorted(v[0]) if isinstance(v, list) and v and isinstance(v[0], dict) else None)
                for k, v in j.items()}
            message = j.get("error", {}).get("message")
            if message:
                for i, name in self.names.items():
                    message = message.replace(i, name)
                message = re.sub(r"[0-9a-f]{32}", "<id>", message)
        self.out[label] = (r.status_code, keys, message)
        return r


def limit_requests(t) -> dict:
    admin, _ = t.issue()
    system, _ = t.issue(SYSTEM_SCOPE)
    domain_admin, _ = t.issue(DOMAIN_SCOPE)
    ids = setup_catalog(t, admin)
    sid, region, top, sub = ids["service"], ids["region"], ids["top"], ids["sub"]
    _, member_name = make_user(t, admin, "member")
    member, _ = t.issue(username=member_name, password=USER_PASSWORD)
    admin_project = project_id(t, admin)
    rec = Recorder({sid: "<service>", region: "<region>", top: "<top>", sub: "<sub>",
                    admin_project: "<admin-project>"})
    out = rec.out

    def post(label, token, path, body):
        return rec(label, api(t, "POST", path, token, body))

    rec("model", api(t, "GET", "limits/model", admin))
    out["model-body"] = api(t, "GET", "limits/model", admin).json()
    rec("model-member", api(t, "GET", "limits/model", member))

    # Registered limits.
    good = {"registered_limits": [
        {"service_id": sid, "resource_name": "cores", "default_limit": 10, "description": "vCPUs"},
        {"service_id": sid, "region_id": region, "resource_name": "ram", "default_limit": 4096}]}
    r = post("reg-create", admin, "registered_limits", good)
    reg = {x["resource_name"]: x["id"] for x in r.json()["registered_limits"]}
    rec.names.update({reg["cores"]: "<reg-cores>", reg["ram"]: "<reg-ram>"})
    out["reg-create-body"] = sorted((x["resource_name"], x["region_id"] is not None, x["default_limit"],
                                     x["description"]) for x in r.json()["registered_limits"])
    post("reg-create-member", member, "registered_limits", good)
    post("reg-duplicate", admin, "registered_limits", {"registered_limits": [good["registered_limits"][0]]})
    twice = {"service_id": sid, "resource_name": "disk", "default_limit": 1}
    post("reg-duplicate-in-batch", admin, "registered_limits", {"registered_limits": [twice, twice]})
    out["reg-duplicate-in-batch-left"] = len(api(t, "GET", "registered_limits?resource_name=disk",
                                                 admin).json()["registered_limits"])
    post("reg-unknown-service", admin, "registered_limits",
         {"registered_limits": [{"service_id": SERVICE, "resource_name": "x", "default_limit": 1}]})
    post("reg-unknown-region", admin, "registered_limits", {"registered_limits": [
        {"service_id": sid, "region_id": "nowhere", "resource_name": "x", "default_limit": 1}]})
    for label, body in {
        "no-body": {},
        "not-array": {"registered_limits": 5},
        "empty": {"registered_limits": []},
        "item-not-object": {"registered_limits": [5]},
        "item-empty": {"registered_limits": [{}]},
        "bad-uuid": {"registered_limits": [{"default_limit": 1, "resource_name": "x", "service_id": "abc"}]},
        "blank-name": {"registered_limits": [{"default_limit": 1, "resource_name": " ", "service_id": sid}]},
        "too-low": {"registered_limits": [{"default_limit": -2, "resource_name": "x", "service_id": sid}]},
        "too-high": {"registered_limits": [{"default_limit": 2 ** 31, "resource_name": "x", "service_id": sid}]},
        "string-limit": {"registered_limits": [{"default_limit": "5", "resource_name": "x", "service_id": sid}]},
        "empty-region": {"registered_limits": [{"default_limit": 1, "region_id": "", "resource_name": "x",
                                                "service_id": sid}]},
        "extra": {"registered_limits": [{"default_limit": 1, "extra": 1, "resource_name": "x",
                                         "service_id": sid}]},
        "missing": {"registered_limits": [{"resource_name": "x", "service_id": sid}]},
        "extra-top": {"other": 1, "registered_limits": [{"default_limit": 1, "resource_name": "x",
                                                         "service_id": sid}]},
    }.items():
        post(f"reg-bad-{label}", admin, "registered_limits", body)
    post("reg-bad-member", member, "registered_limits", {})

    for label, (token, query) in {
        "admin": (admin, ""), "member": (member, ""), "system": (system, ""),
        "service": (admin, f"?service_id={sid}"), "name": (admin, "?resource_name=cores"),
        "region": (admin, f"?region_id={region}"), "contains": (admin, "?resource_name__contains=or"),
        "bad-uuid": (admin, "?service_id=abc"), "empty-name": (admin, "?resource_name="),
    }.items():
        r = rec(f"reg-list-{label}", api(t, "GET", f"registered_limits{query}", token))
        if r.status_code == 200:
            # The database is shared with the other server's run: only this run's rows count.
            out[f"reg-list-{label}-names"] = sorted(x["resource_name"] for x in r.json()["registered_limits"]
                                                    if x["service_id"] == sid)
    rec("reg-show", api(t, "GET", f"registered_limits/{reg['cores']}", member))
    rec("reg-show-unknown", api(t, "GET", "registered_limits/nosuch", admin))
    rec("reg-show-unknown-member", api(t, "GET", "registered_limits/nosuch", member))

    patch = lambda label, token, rid, body: rec(label, api(t, "PATCH", f"registered_limits/{rid}",  # noqa: E731
                                                          token, body))
    r = patch("reg-update", admin, reg["cores"], {"registered_limit": {"default_limit": 20, "description": None}})
    out["reg-update-body"] = (r.json()["registered_limit"]["default_limit"],
                              r.json()["registered_limit"]["description"])
    patch("reg-update-conflict", admin, reg["ram"], {"registered_limit": {"resource_name": "cores",
                                                                          "region_id": None}})
    patch("reg-update-unknown-service", admin, reg["ram"], {"registered_limit": {"service_id": SERVICE}})
    patch("reg-update-unknown", admin, "nosuch", {"registered_limit": {"default_limit": 1}})
    patch("reg-update-member", member, reg["ram"], {"registered_limit": {"default_limit": 1}})
    patch("reg-update-bad-id", admin, reg["ram"], {"registered_limit": {"id": "x"}})
    patch("reg-update-no-body", admin, reg["ram"], {})

    # Limits.
    lim = lambda **kw: {"limits": [{"service_id": sid, "resource_name": "cores", "resource_limit": 5, **kw}]}  # noqa: E731
    r = post("lim-create-project", admin, "limits", lim(project_id=top, description="top"))
    top_limit = r.json()["limits"][0]["id"]
    out["lim-create-project-body"] = {k: v for k, v in r.json()["limits"][0].items()
                                      if k not in ("id", "links", "service_id", "project_id")}
    r = post("lim-create-domain", admin, "limits", lim(domain_id="default", resource_limit=8))
    domain_limit = r.json()["limits"][0]["id"]
    r = post("lim-create-region", admin, "limits", {"limits": [
        {"project_id": sub, "region_id": region, "resource_limit": 1024, "resource_name": "ram",
         "service_id": sid}]})
    ram_limit = r.json()["limits"][0]["id"]
    rec.names.update({top_limit: "<top-limit>", domain_limit: "<domain-limit>", ram_limit: "<ram-limit>"})
    post("lim-duplicate", admin, "limits", lim(project_id=top))
    post("lim-no-registered", admin, "limits", lim(project_id=sub, resource_name="gpus"))
    post("lim-wrong-region", admin, "limits", lim(project_id=sub, region_id=region))
    post("lim-unknown-project", admin, "limits", lim(project_id="nosuch"))
    post("lim-unknown-domain", admin, "limits", lim(domain_id="nosuch"))
    post("lim-unknown-service", admin, "limits", {"limits": [
        {"project_id": sub, "resource_limit": 1, "resource_name": "cores", "service_id": SERVICE}]})
    r = post("lim-project-is-domain", admin, "limits", lim(project_id="default", resource_name="ram",
                                                             region_id=region))
    if r.status_code == 201:
        out["lim-project-is-domain-owner"] = (r.json()["limits"][0]["project_id"],
                                              r.json()["limits"][0]["domain_id"])
    post("lim-create-member", member, "limits", lim(project_id=sub))
    for label, body in {
        "neither": {"limits": [{"resource_limit": 1, "resource_name": "cores", "service_id": sid}]},
        "both": {"limits": [{"domain_id": "default", "project_id": top, "resource_limit": 1,
                             "resource_name": "cores", "service_id": sid}]},
        "bad-project": {"limits": [{"project_id": "a b", "resource_limit": 1, "resource_name": "cores",
                                    "service_id": sid}]},
        "id": {"limits": [{"id": "x", "project_id": sub, "resource_limit": 1, "resource_name": "cores",
                           "service_id": sid}]},
        "missing": {"limits": [{"project_id": sub, "resource_name": "cores", "service_id": sid}]},
        "empty": {"limits": []},
    }.items():
        post(f"lim-bad-{label}", admin, "limits", body)

    for label, (token, query) in {
        "admin": (admin, ""), "system": (system, ""), "domain": (domain_admin, ""), "member": (member, ""),
        "project": (admin, f"?project_id={top}"), "domain-filter": (admin, "?domain_id=default"),
        "name": (admin, "?resource_name=ram"), "service": (admin, f"?service_id={sid}"),
        "region": (admin, f"?region_id={region}"), "bad-project": (admin, "?project_id=a%20b"),
    }.items():
        r = rec(f"lim-list-{label}", api(t, "GET", f"limits{query}", token))
        if r.status_code == 200:
            out[f"lim-list-{label}-values"] = sorted(x["resource_limit"] for x in r.json()["limits"]
                                                     if x["service_id"] == sid)
    rec("lim-show", api(t, "GET", f"limits/{top_limit}", admin))
    rec("lim-show-member-other-project", api(t, "GET", f"limits/{top_limit}", member))
    rec("lim-show-unknown", api(t, "GET", "limits/nosuch", admin))
    rec("lim-show-unknown-member", api(t, "GET", "limits/nosuch", member))
    lpatch = lambda label, token, lid, body: rec(label, api(t, "PATCH", f"limits/{lid}", token, body))  # noqa: E731
    r = lpatch("lim-update", admin, top_limit, {"limit": {"resource_limit": 7, "description": "seven"}})
    out["lim-update-body"] = (r.json()["limit"]["resource_limit"], r.json()["limit"]["description"])
    lpatch("lim-update-unknown", admin, "nosuch", {"limit": {"resource_limit": 1}})
    lpatch("lim-update-member", member, top_limit, {"limit": {"resource_limit": 1}})
    lpatch("lim-update-bad", admin, top_limit, {"limit": {"resource_limit": -5}})
    lpatch("lim-update-extra", admin, top_limit, {"limit": {"service_id": sid}})
    lpatch("lim-update-empty", admin, top_limit, {"limit": {}})

    # A registered limit in use can be neither changed nor deleted; a limit goes, then it can.
    patch("reg-update-in-use", admin, reg["cores"], {"registered_limit": {"default_limit": 3}})
    rec("reg-delete-in-use", api(t, "DELETE", f"registered_limits/{reg['cores']}", admin))
    rec("lim-delete-member", api(t, "DELETE", f"limits/{top_limit}", member))
    rec("lim-delete", api(t, "DELETE", f"limits/{top_limit}", admin))
    rec("lim-delete-again", api(t, "DELETE", f"limits/{top_limit}", admin))
    rec("lim-delete-domain", api(t, "DELETE", f"limits/{domain_limit}", admin))
    rec("reg-delete", api(t, "DELETE", f"registered_limits/{reg['cores']}", admin))
    rec("reg-delete-again", api(t, "DELETE", f"registered_limits/{reg['cores']}", admin))
    rec("reg-delete-member", api(t, "DELETE", f"registered_limits/{reg['ram']}", member))

    # Deleting a project deletes its limits.
    rec("project-delete", api(t, "DELETE", f"projects/{sub}", admin))
    rec("lim-show-after-project", api(t, "GET", f"limits/{ram_limit}", admin))
    return out


def compare(k: dict, b: dict) -> None:
    diff = {label: (k[label], b.get(label)) for label in k if k[label] != b.get(label)}
    extra = sorted(set(b) - set(k))
    assert not diff and not extra, f"(keystone, baton) per request: {diff}; only baton: {extra}"


def test_unified_limit_api_matches_keystone(pair):
    compare(limit_requests(pair.keystone), limit_requests(pair.baton))


STRICT = {"unified_limit": {"enforcement_model": "strict_two_level"}}


def strict_requests(t) -> dict:
    admin, _ = t.issue()
    ids = setup_catalog(t, admin)
    sid, top, sub = ids["service"], ids["top"], ids["sub"]
    rec = Recorder({sid: "<service>", top: "<top>", sub: "<sub>"})
    out = rec.out
    out["model"] = api(t, "GET", "limits/model", admin).json()
    r = api(t, "POST", "registered_limits", admin, {"registered_limits": [
        {"service_id": sid, "resource_name": "cores", "default_limit": 10},
        {"service_id": sid, "resource_name": "ram", "default_limit": 100}]})
    assert r.status_code == 201, r.text

    def limits(label, *items):
        return rec(label, api(t, "POST", "limits", admin, {"limits": [
            {"service_id": sid, "resource_name": name, "resource_limit": value, **owner}
            for name, value, owner in items]}))

    # Without a domain limit, the registered default bounds a top project.
    limits("over-default", ("cores", 11, {"project_id": top}))
    limits("under-default", ("cores", 6, {"project_id": top}))
    # A domain limit below a project's is refused; above it is fine.
    limits("domain-below-child", ("cores", 5, {"domain_id": "default"}))
    r = limits("domain-above-child", ("cores", 8, {"domain_id": "default"}))
    domain_limit = r.json()["limits"][0]["id"] if r.status_code == 201 else None
    # In one request, the domain's limit in the batch is the bound.
    limits("batch-over", ("ram", 50, {"domain_id": "default"}), ("ram", 60, {"project_id": top}))
    limits("batch-under", ("ram", 50, {"domain_id": "default"}), ("ram", 40, {"project_id": top}))
    # A sub-project's parent is a project: its bound is the registered default.
    limits("sub-over-default", ("cores", 12, {"project_id": sub}))
    limits("sub-under-default", ("cores", 9, {"project_id": sub}))
    if domain_limit:
        rec("lower-domain", api(t, "PATCH", f"limits/{domain_limit}", admin, {"limit": {"resource_limit": 2}}))
        rec("raise-domain", api(t, "PATCH", f"limits/{domain_limit}", admin, {"limit": {"resource_limit": 9}}))
    # Projects are at most two levels deep.
    rec("third-level", api(t, "POST", "projects", admin, {"project": {
        "name": "deep", "domain_id": "default", "parent_id": sub}}))
    return out


def test_strict_two_level_matches_keystone(tmp_path, keystone_template):
    k, b = start_configured_pair(tmp_path, keystone_template, STRICT)
    try:
        compare(strict_requests(k), strict_requests(b))
    finally:
        b.server.stop()
        k.server.stop()


def test_rows_of_each_served_by_the_other(pair):
    """On one database, each server lists and shows the limits the other wrote, with the same
    body apart from the links."""
    writer, reader = (pair.keystone, pair.baton), (pair.baton, pair.keystone)
    for w, r in (writer, reader):
        admin, _ = w.issue()
        ids = setup_catalog(w, admin)
        res = api(w, "POST", "registered_limits", admin, {"registered_limits": [
            {"service_id": ids["service"], "region_id": ids["region"], "resource_name": "cores",
             "default_limit": 4, "description": f"by {w.name}"}]})
        assert res.status_code == 201, res.text
        rid = res.json()["registered_limits"][0]["id"]
        res = api(w, "POST", "limits", admin, {"limits": [
            {"service_id": ids["service"], "region_id": ids["region"], "resource_name": "cores",
             "resource_limit": 2, "project_id": ids["top"]}]})
        assert res.status_code == 201, res.text
        lid = res.json()["limits"][0]["id"]
        radmin, _ = r.issue()
        for path, key in ((f"registered_limits/{rid}", "registered_limit"), (f"limits/{lid}", "limit")):
            mine = api(w, "GET", path, admin).json()[key]
            theirs = api(r, "GET", path, radmin).json()[key]
            mine.pop("links"), theirs.pop("links")
            assert mine == theirs, (w.name, r.name, path)
        listed = api(r, "GET", f"limits?service_id={ids['service']}", radmin).json()["limits"]
        assert [x["id"] for x in listed] == [lid]
        # The reader may change and delete what the writer made.
        res = api(r, "PATCH", f"limits/{lid}", radmin, {"limit": {"resource_limit": 3}})
        assert res.status_code == 200 and res.json()["limit"]["resource_limit"] == 3, res.text
        assert api(w, "GET", f"limits/{lid}", admin).json()["limit"]["resource_limit"] == 3
        assert api(r, "DELETE", f"limits/{lid}", radmin).status_code == 204
        assert api(r, "DELETE", f"registered_limits/{rid}", radmin).status_code == 204
        assert api(w, "GET", f"registered_limits/{rid}", admin).status_code == 404


def openstack_limits(cli: OpenStackCLI, t) -> dict:
    """python-openstackclient's limit commands against one server, ids taken out."""
    admin, _ = t.issue()
    ids = setup_catalog(t, admin)
    out = {}

    def run(label, *args, check=True):
        r = cli.run(*args, "-f", "json", check=check)
        text = r.stdout
        for i, name in ((ids["service"], "<service>"), (ids["region"], "<region>"), (ids["top"], "<top>")):
            text = text.replace(i, name)
        out[label] = (r.returncode, json.loads(text) if r.returncode == 0 and text.strip() else None)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    reg = run("registered-create", "registered", "limit", "create", "--service", ids["service"],
              "--default-limit", "10", "--region", ids["region"], "--description", "vCPUs", "cores")
    out["registered-create"][1].pop("id")
    run("registered-list", "registered", "limit", "list", "--service", ids["service"])
    for row in out["registered-list"][1]:
        row.pop("ID")
    shown = run("registered-show", "registered", "limit", "show", reg["id"])
    shown.pop("id"), out["registered-show"][1].pop("id")
    run("registered-set", "registered", "limit", "set", reg["id"], "--default-limit", "12")
    out["registered-set"][1].pop("id")
    lim = run("limit-create", "limit", "create", "--project", ids["top"], "--service", ids["service"],
              "--region", ids["region"], "--resource-limit", "5", "cores")
    out["limit-create"][1].pop("id")
    run("limit-list", "limit", "list", "--project", ids["top"])
    for row in out["limit-list"][1]:
        row.pop("ID")
    run("limit-show", "limit", "show", lim["id"])
    out["limit-show"][1].pop("id")
    run("limit-set", "limit", "set", lim["id"], "--resource-limit", "6", "--description", "six")
    out["limit-set"][1].pop("id")
    r = cli.run("limit", "delete", lim["id"])
    out["limit-delete"] = r.returncode
    r = cli.run("registered", "limit", "delete", reg["id"])
    out["registered-delete"] = r.returncode
    return out


def test_openstackclient_limit_commands(pair, venv_bin, tmp_path):
    k = openstack_limits(OpenStackCLI(venv_bin / "openstack", pair.keystone, tmp_path / "k"), pair.keystone)
    b = openstack_limits(OpenStackCLI(venv_bin / "openstack", pair.baton, tmp_path / "b"), pair.baton)
    compare(k, b)


ENFORCE = textwrap.dedent("""
    import json, sys, tempfile
    from oslo_config import cfg
    from oslo_limit import limit, opts, exception
    conf = cfg.CONF
    opts.register_opts(conf)
    args = json.loads(sys.argv[1])
    # As a service reads them: an [oslo_limit] section of its configuration file.
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        lines = ["[oslo_limit]"] + [f"{k} = {v}" for k, v in args["conf"].items()]
        f.write(chr(10).join(lines) + chr(10))
    conf([], project="oslo_limit_test", default_config_files=[f.name])
    usage = args["usage"]
    enforcer = limit.Enforcer(lambda project_id, names: {n: usage.get(n, 0) for n in names})
    verdicts = {}
    for label, deltas in args["checks"].items():
        try:
            enforcer.enforce(args["project"], deltas)
            verdicts[label] = "ok"
        except exception.ProjectOverLimit as e:
            verdicts[label] = sorted((o.resource_name, o.limit, o.current_usage, o.delta)
                                     for o in e.over_limit_info_list)
    print(json.dumps({"verdicts": verdicts,
                      "limits": enforcer.model.get_project_limits(args["project"], ["cores", "ram", "gpus"])}))
""")


def oslo_limit_verdicts(t, python) -> dict:
    admin, _ = t.issue()
    ids = setup_catalog(t, admin)
    r = api(t, "POST", "registered_limits", admin, {"registered_limits": [
        {"service_id": ids["service"], "region_id": ids["region"], "resource_name": "cores", "default_limit": 4},
        {"service_id": ids["service"], "region_id": ids["region"], "resource_name": "ram", "default_limit": 512}]})
    assert r.status_code == 201, r.text
    r = api(t, "POST", "limits", admin, {"limits": [
        {"service_id": ids["service"], "region_id": ids["region"], "resource_name": "cores",
         "resource_limit": 8, "project_id": ids["top"]}]})
    assert r.status_code == 201, r.text
    args = {
        "conf": {"auth_url": t.auth_url, "auth_type": "password", "username": "admin",
                 "password": ADMIN_PASSWORD, "user_domain_id": "default", "system_scope": "all",
                 "endpoint_id": ids["endpoint"]},
        "project": ids["top"],
        "usage": {"cores": 6, "ram": 500},
        "checks": {"within": {"cores": 2}, "over-project-limit": {"cores": 3},
                   "over-default": {"ram": 13}, "both": {"cores": 5, "ram": 100},
                   "unregistered": {"gpus": 1}},
    }
    r = subprocess.run([python, "-c", ENFORCE, json.dumps(args)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_oslo_limit_enforces_the_same(pair, venv_bin):
    python = str(venv_bin / "python")
    k = oslo_limit_verdicts(pair.keystone, python)
    b = oslo_limit_verdicts(pair.baton, python)
    assert k == b
    assert b["verdicts"]["within"] == "ok" and b["verdicts"]["over-project-limit"] != "ok"
    assert b["limits"] == [["cores", 8], ["ram", 512], ["gpus", 0]]


def test_baton_limit_commands_print_what_openstack_prints(target, venv_bin, tmp_path):
    """`baton registered limit ...` and `baton limit ...` print what `openstack` prints for the same
    arguments, in each output format, against either server."""
    t = target
    admin, _ = t.issue()
    ids = setup_catalog(t, admin)

    cli = CliPair(t, venv_bin, tmp_path)
    bt, same, osc = cli.bt, cli.same, cli.osc

    made = json.loads(bt("registered", "limit", "create", "--service", ids["service"], "--default-limit", "10",
                         "--region", ids["region"], "--description", "vCPUs", "-f", "json", "cores").stdout)
    assert made["default_limit"] == 10 and made["region_id"] == ids["region"], made
    for fmt in ([], ["-f", "json"], ["-f", "value"], ["-c", "id", "-c", "default_limit"]):
        same("registered", "limit", "show", *fmt, made["id"])
    same("registered", "limit", "list", "--service", ids["service"])
    same("registered", "limit", "list", "--region", ids["region"], "-f", "json")
    lim = json.loads(bt("limit", "create", "--project", ids["top"], "--service", ids["service"],
                        "--region", ids["region"], "--resource-limit", "4", "-f", "json", "cores").stdout)
    assert lim["project_id"] == ids["top"] and lim["resource_limit"] == 4, lim
    for fmt in ([], ["-f", "json"], ["-f", "value"]):
        same("limit", "show", *fmt, lim["id"])
    same("limit", "list", "--project", ids["top"])
    same("limit", "list", "--service", ids["service"], "--resource-name", "cores", "-f", "json")
    changed = json.loads(bt("limit", "set", lim["id"], "--resource-limit", "3", "--description", "three",
                            "-f", "json").stdout)
    assert (changed["resource_limit"], changed["description"]) == (3, "three")
    r = bt("registered", "limit", "set", made["id"], "--default-limit", "9", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    bt("limit", "delete", lim["id"])
    changed = json.loads(bt("registered", "limit", "set", made["id"], "--default-limit", "9", "-f", "json").stdout)
    assert changed["default_limit"] == 9
    bt("registered", "limit", "delete", made["id"])
    r = bt("registered", "limit", "show", made["id"], check=False)
    assert r.returncode == 1 and r.stderr.startswith(f"No RegisteredLimit found for {made['id']}"), r.stderr
