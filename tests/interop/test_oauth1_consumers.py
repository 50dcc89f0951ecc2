"""OAuth1 consumers (/v3/OS-OAUTH1/consumers) against Keystone 30.

The same requests (admin, a system reader, a member; good and bad bodies, checked after
policy; unknown ids) get the same statuses, bodies and messages from both servers; a consumer's
secret is shown once. On one database a consumer either server made is served, changed and
deleted by the other. python-openstackclient's `consumer` commands work against both alike.
"""

from __future__ import annotations

import json
import uuid

from interop_util import USER_PASSWORD, api, make_user
from test_policies import FirstParagraph, system_reader
from test_unified_limits import compare

CONSUMERS = "OS-OAUTH1/consumers"


def consumer_requests(t) -> dict:
    admin, _ = t.issue()
    reader = system_reader(t, admin)
    _, member_name = make_user(t, admin, "oauth-member")
    member, _ = t.issue(username=member_name, password=USER_PASSWORD)
    rec = FirstParagraph({})
    out = rec.out
    made = []

    def shown(entity):
        if not isinstance(entity, dict):
            return entity
        e = dict(entity)
        for key in ("id", "secret"):
            if key in e:
                e[key] = f"<{key}:{len(e[key])}>" if isinstance(e[key], str) else e[key]
        e["links"] = e.get("links", {}).get("self", "").split("/v3/")[-1].replace(entity.get("id", "?"), "<id>")
        return e

    def req(label, method, path, token=admin, body=None):
        r = api(t, method, path, token, body)
        for i in made:
            if i in r.text:
                rec.names[i] = "<id>"
        rec(label, r)
        if r.status_code < 300 and r.content:
            out[f"{label}-body"] = shown(r.json().get("consumer"))
        return r

    for label, body in {
        "no-body": None,
        "empty": {"consumer": {}},
        "description-null": {"consumer": {"description": None}},
        "extras": {"consumer": {"description": "d", "a-b": 1, "c:d": [1]}},
        "secret-and-id-given": {"consumer": {"secret": "mine", "id": "mine"}},
    }.items():
        r = req(f"create-{label}", "POST", CONSUMERS, body=body)
        made.append(r.json()["consumer"]["id"])
    for label, body in {
        "description-number": {"consumer": {"description": 5}},
        "not-object": {"consumer": "x"},
    }.items():
        req(f"create-{label}", "POST", CONSUMERS, body=body)
    req("create-member", "POST", CONSUMERS, member, {"consumer": {}})
    req("create-reader", "POST", CONSUMERS, reader, {"consumer": {}})
    ours = made[3]
    req("show", "GET", f"{CONSUMERS}/{ours}", reader)
    req("show-member", "GET", f"{CONSUMERS}/{ours}", member)
    req("show-unknown", "GET", f"{CONSUMERS}/nosuch")
    r = req("list", "GET", CONSUMERS, reader)
    out["list-ours"] = [shown(c) for c in r.json()["consumers"] if c["id"] == ours]
    out.pop("list-body", None)
    req("list-member", "GET", CONSUMERS, member)
    req("update", "PATCH", f"{CONSUMERS}/{ours}", body={"consumer": {"description": "new", "e-f": 2}})
    req("update-same-id", "PATCH", f"{CONSUMERS}/{ours}", body={"consumer": {"id": ours, "description": None}})
    req("update-empty", "PATCH", f"{CONSUMERS}/{ours}", body={"consumer": {}})
    req("update-no-body", "PATCH", f"{CONSUMERS}/{ours}", body={})
    req("update-secret", "PATCH", f"{CONSUMERS}/{ours}", body={"consumer": {"secret": "x"}})
    req("update-other-id", "PATCH", f"{CONSUMERS}/{ours}", body={"consumer": {"id": "other"}})
    req("update-description-number", "PATCH", f"{CONSUMERS}/{ours}", body={"consumer": {"description": 5}})
    req("update-unknown", "PATCH", f"{CONSUMERS}/nosuch", body={"consumer": {"description": "x"}})
    req("update-member", "PATCH", f"{CONSUMERS}/{ours}", member, {"consumer": {"description": "x"}})
    req("show-after", "GET", f"{CONSUMERS}/{ours}")
    req("delete-member", "DELETE", f"{CONSUMERS}/{ours}", member)
    for i, c in enumerate(made):
        req(f"delete-{i}", "DELETE", f"{CONSUMERS}/{c}")
    req("delete-again", "DELETE", f"{CONSUMERS}/{ours}")
    return out


def test_consumer_api_matches_keystone(pair):
    k, b = consumer_requests(pair.keystone), consumer_requests(pair.baton)
    # A deliberate difference: a `consumer` that is not an object is Keystone 30's 500, Baton's
    # schema 400.
    assert k.pop("create-not-object")[0] == 500
    assert b.pop("create-not-object") == (400, {"error": ["code", "message", "title"]},
                                          "'x' is not of type 'object'")
    compare(k, b)


def test_consumers_served_by_both(pair):
    for writer in pair.both():
        other = pair.baton if writer is pair.keystone else pair.keystone
        admin, _ = writer.issue()
        other_admin, _ = other.issue()
        r = api(writer, "POST", CONSUMERS, admin, {"consumer": {"description": "shared", "tier": "gold"}})
        assert r.status_code == 201, r.text
        c = r.json()["consumer"]
        assert len(c["secret"]) == 32, c
        got = api(other, "GET", f"{CONSUMERS}/{c['id']}", other_admin).json()["consumer"]
        assert {k: v for k, v in got.items() if k != "links"} == {"id": c["id"], "description": "shared",
                                                                   "tier": "gold"}, (writer.name, got)
        r = api(other, "PATCH", f"{CONSUMERS}/{c['id']}", other_admin, {"consumer": {"description": "changed"}})
        assert r.status_code == 200, r.text
        got = api(writer, "GET", f"{CONSUMERS}/{c['id']}", admin).json()["consumer"]
        assert (got["description"], got["tier"]) == ("changed", "gold"), (writer.name, got)
        assert api(other, "DELETE", f"{CONSUMERS}/{c['id']}", other_admin).status_code == 204
        assert api(writer, "GET", f"{CONSUMERS}/{c['id']}", admin).status_code == 404


def test_openstackclient_consumer_commands(target, venv_bin, tmp_path):
    """`openstack consumer create|list|show|set|delete` work against both alike, and
    `baton consumer ...` prints what openstackclient prints."""
    from conftest import CliPair

    cli = CliPair(target, venv_bin, tmp_path)
    made = json.loads(cli.bt("consumer", "create", "--description", "app", "-f", "json").stdout)
    assert sorted(made) == ["description", "id", "secret"] and len(made["secret"]) == 32, made
    theirs = json.loads(cli.os("consumer", "create", "--description", "app", "-f", "json").stdout)
    assert sorted(theirs) == sorted(made), theirs
    for fmt in ([], ["-f", "json"], ["-f", "value"]):
        cli.same("consumer", "show", made["id"], *fmt)
    cli.same("consumer", "list")
    cli.bt("consumer", "set", "--description", "renamed", made["id"])
    cli.same("consumer", "show", made["id"])
    # A deliberate difference: with several consumers in the cloud openstackclient says an
    # unknown one is ambiguous (it looks consumers up by a name they do not have); baton says
    # it does not exist.
    r = cli.bt("consumer", "show", "nosuch", check=False)
    want = cli.os("consumer", "show", "nosuch", check=False)
    assert r.returncode == want.returncode == 1, (r.stderr, want.stderr)
    assert r.stderr.strip() == "No consumer with a name or ID of 'nosuch' exists.", r.stderr
    # A bare `set` sends an empty consumer: the server's 400 through both tools.
    r = cli.bt("consumer", "set", made["id"], check=False)
    want = cli.os("consumer", "set", made["id"], check=False)
    assert r.returncode == want.returncode == 1, (r.stderr, want.stderr)
    assert "should be non-empty" in r.stderr and "should be non-empty" in want.stderr, (r.stderr, want.stderr)
    r = cli.bt("consumer", "delete", made["id"], "nosuch", check=False)
    assert r.returncode == 1 and r.stderr.strip().endswith("1 of 2 consumers failed to delete."), r.stderr
    cli.os("consumer", "delete", theirs["id"])
    assert cli.bt("consumer", "show", theirs["id"], check=False).returncode == 1
    assert uuid.UUID(made["id"])
