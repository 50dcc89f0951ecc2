"""Project and domain `options` (the `immutable` resource option) against Keystone 30.

Creating with and without the option, the option shown on every read (show, list, a user's
projects), an immutable project or domain refusing updates, deletes and tag changes until the
option is cleared (and only that change in the same request), bad option bodies: the same
statuses, option bodies and messages from both servers. On one database, the option either
server set is honoured by the other.
"""

from __future__ import annotations

import json
import uuid

from interop_util import api
from test_policies import FirstParagraph


def option_requests(t) -> dict:
    admin, _ = t.issue()
    rec = FirstParagraph({})
    out = rec.out

    def req(label, method, path, body=None):
        r = rec(label, api(t, method, path, admin, body))
        if r.status_code < 300 and r.content:
            j = r.json()
            entity = j.get("project") or j.get("domain")
            if entity:
                out[f"{label}-options"] = entity.get("options")
        return r

    name = f"ro-{uuid.uuid4().hex[:8]}"
    r = req("project-create", "POST", "projects",
            {"project": {"name": name, "domain_id": "default", "options": {"immutable": True}}})
    pid = r.json()["project"]["id"]
    rec.names[pid] = "<project>"
    req("project-create-bad-option", "POST", "projects",
        {"project": {"name": name + "x", "domain_id": "default", "options": {"bogus": True}}})
    req("project-create-bad-value", "POST", "projects",
        {"project": {"name": name + "y", "domain_id": "default", "options": {"immutable": "yes"}}})
    req("project-show", "GET", f"projects/{pid}")
    r = req("project-list", "GET", f"projects?name={name}")
    out["project-list-options"] = [p["options"] for p in r.json()["projects"]]
    req("project-update", "PATCH", f"projects/{pid}", {"project": {"description": "x"}})
    req("project-update-and-clear", "PATCH", f"projects/{pid}",
        {"project": {"description": "x", "options": {"immutable": False}}})
    req("project-update-still", "PATCH", f"projects/{pid}", {"project": {"options": {"immutable": True}}})
    req("project-delete", "DELETE", f"projects/{pid}")
    req("project-tag-add", "PUT", f"projects/{pid}/tags/blue")
    req("project-tags-set", "PUT", f"projects/{pid}/tags", {"tags": ["a"]})
    req("project-tag-delete", "DELETE", f"projects/{pid}/tags/blue")
    req("project-clear", "PATCH", f"projects/{pid}", {"project": {"options": {"immutable": False}}})
    req("project-tag-add-after", "PUT", f"projects/{pid}/tags/blue")
    req("project-update-after", "PATCH", f"projects/{pid}", {"project": {"description": "y"}})
    r = req("project-remove-option", "PATCH", f"projects/{pid}", {"project": {"options": {"immutable": None}}})
    out["project-update-extra"] = r.json()["project"].get("extra")
    req("project-delete-after", "DELETE", f"projects/{pid}")

    dname = f"ro-{uuid.uuid4().hex[:8]}"
    r = req("domain-create", "POST", "domains", {"domain": {"name": dname, "options": {"immutable": True}}})
    did = r.json()["domain"]["id"]
    rec.names[did] = "<domain>"
    req("domain-create-bad-option", "POST", "domains", {"domain": {"name": dname + "x", "options": {"x": 1}}})
    req("domain-show", "GET", f"domains/{did}")
    r = req("domain-list", "GET", f"domains?name={dname}")
    out["domain-list-options"] = [d["options"] for d in r.json()["domains"]]
    req("domain-disable", "PATCH", f"domains/{did}", {"domain": {"enabled": False}})
    req("domain-delete", "DELETE", f"domains/{did}")
    req("domain-clear", "PATCH", f"domains/{did}", {"domain": {"options": {"immutable": False}}})
    req("domain-disable-after", "PATCH", f"domains/{did}", {"domain": {"enabled": False}})
    req("domain-delete-after", "DELETE", f"domains/{did}")
    # A domain holding an immutable project.
    dname2 = f"ro-{uuid.uuid4().hex[:8]}"
    r = req("domain2-create", "POST", "domains", {"domain": {"name": dname2}})
    did2 = r.json()["domain"]["id"]
    rec.names[did2] = "<domain2>"
    r = req("inner-create", "POST", "projects",
            {"project": {"name": "inner", "domain_id": did2, "options": {"immutable": True}}})
    rec.names[r.json()["project"]["id"]] = "<inner>"
    req("domain2-disable", "PATCH", f"domains/{did2}", {"domain": {"enabled": False}})
    req("domain2-delete", "DELETE", f"domains/{did2}")
    return out


def test_resource_options_match_keystone(pair):
    k = option_requests(pair.keystone)
    b = option_requests(pair.baton)
    diff = {label: (k[label], b.get(label)) for label in k if k[label] != b.get(label)}
    assert not diff and not sorted(set(b) - set(k)), f"(keystone, baton) per request: {diff}"


def test_immutable_set_by_either_is_honoured_by_both(pair):
    for writer in pair.both():
        other = pair.baton if writer is pair.keystone else pair.keystone
        admin, _ = writer.issue()
        r = api(writer, "POST", "projects", admin, {"project": {
            "name": f"ro-{uuid.uuid4().hex[:8]}", "domain_id": "default", "options": {"immutable": True}}})
        assert r.status_code == 201, r.text
        pid = r.json()["project"]["id"]
        other_admin, _ = other.issue()
        r = api(other, "GET", f"projects/{pid}", other_admin)
        assert r.json()["project"]["options"] == {"immutable": True}, r.text
        assert api(other, "DELETE", f"projects/{pid}", other_admin).status_code == 403
        r = api(other, "PATCH", f"projects/{pid}", other_admin, {"project": {"options": {"immutable": False}}})
        assert r.status_code == 200, r.text
        assert api(writer, "DELETE", f"projects/{pid}", admin).status_code == 204


def test_baton_immutable_flags_print_what_openstack_prints(target, venv_bin, tmp_path):
    """`--immutable` / `--no-immutable` of `baton project|domain create|set` write what
    openstackclient's write, `show` prints the option as openstackclient prints it, and
    `baton project|domain delete` refuse an immutable one with openstackclient's message."""
    from conftest import CliPair

    cli = CliPair(target, venv_bin, tmp_path)
    bt, same = cli.bt, cli.same
    project = f"ro-cli-{uuid.uuid4().hex[:6]}"
    bt("project", "create", "--domain", "default", "--immutable", project)
    for fmt in ([], ["-f", "json"], ["-f", "value"]):
        same("project", "show", project, *fmt)
    refused = bt("project", "delete", project, check=False)
    want = cli.os("project", "delete", project, check=False)
    assert refused.returncode == want.returncode == 1, refused.stderr
    assert refused.stderr.strip().endswith(want.stderr.strip().splitlines()[-1]), (refused.stderr, want.stderr)
    assert "immutable" in refused.stderr, refused.stderr
    bt("project", "set", "--no-immutable", project)
    same("project", "show", project)
    bt("project", "delete", project)

    for flag in ("--immutable", "--no-immutable"):
        domain = f"ro-cli-{uuid.uuid4().hex[:6]}"
        bt("domain", "create", flag, domain)
        same("domain", "show", domain, "-f", "json")
        bt("domain", "set", "--no-immutable", domain)
        bt("domain", "set", "--disable", "--description", "gone soon", domain)
        same("domain", "show", domain)
        bt("domain", "delete", domain)
        assert bt("domain", "show", domain, check=False).returncode == 1


def test_baton_project_set_does_what_openstack_set_does(target, venv_bin, tmp_path):
    """`baton project set` (name, description, enabled, properties, tags added, removed and
    cleared) leaves a project as `openstack project set` leaves its twin; `baton project
    delete` takes several names and reports the ones it could not delete as openstackclient."""
    from conftest import CliPair

    cli = CliPair(target, venv_bin, tmp_path)
    tag = uuid.uuid4().hex[:6]
    ours, theirs = f"ps-b-{tag}", f"ps-o-{tag}"
    for name in (ours, theirs):
        cli.bt("project", "create", "--domain", "default", "--tag", "keep", "--tag", "drop", name)
    steps = (
        ["--description", "d", "--disable", "--property", "flavor=gold", "--tag", "b", "--tag", "a"],
        ["--remove-tag", "drop", "--enable"],
        ["--tag", "c"],
        ["--clear-tags", "--tag", "only"],
        ["--clear-tags"],
    )

    def shown(name):
        p = cli.os_json("project", "show", name)
        return {k: v for k, v in p.items() if k not in ("id", "name")}

    for step in steps:
        cli.bt("project", "set", *step, ours)
        cli.os("project", "set", *step, theirs)
        assert shown(ours) == shown(theirs), step
    # A deliberate difference: given --remove-tag and --tag together, openstackclient 9 adds
    # the tags to the project's old ones and drops nothing; baton does both.
    cli.bt("project", "set", "--tag", "x", "--tag", "y", ours)
    cli.bt("project", "set", "--remove-tag", "x", "--tag", "z", ours)
    assert cli.bt_json("project", "show", ours)["tags"] == ["y", "z"]
    cli.bt("project", "set", "--name", f"{ours}-2", "--domain", "default", ours)
    same = cli.same("project", "show", f"{ours}-2", "-f", "json")
    assert json.loads(same)["name"] == f"{ours}-2"
    r = cli.bt("project", "delete", f"{ours}-2", "nosuch-project", check=False)
    want = cli.os("project", "delete", "nosuch-project", check=False)
    assert r.returncode == want.returncode == 1, r.stderr
    assert r.stderr.strip().endswith("1 of 2 projects failed to delete."), r.stderr
    assert want.stderr.strip().splitlines()[0].split(": ", 1)[-1] in r.stderr, (r.stderr, want.stderr)
    cli.bt("project", "delete", theirs)
    assert cli.bt("project", "show", f"{ours}-2", check=False).returncode == 1

