"""Federation service providers (/v3/OS-FEDERATION/service_providers) against Keystone 30.

The same requests (admin, a system reader, a member; good and bad bodies, checked before
policy; unknown ids; a duplicate) get the same statuses, bodies and messages from both servers.
On one database, a service provider either server wrote is served by the other, and once
enabled it is listed in the tokens of both. python-openstackclient's `service provider`
commands work against both alike.
"""

from __future__ import annotations

import json
import time
import uuid

from interop_util import SYSTEM_SCOPE, USER_PASSWORD, api, make_user
from test_policies import FirstParagraph, system_reader

SPS = "OS-FEDERATION/service_providers"


def sp_requests(t) -> dict:
    admin, _ = t.issue()
    reader = system_reader(t, admin)
    _, member_name = make_user(t, admin, "sp-member")
    member, _ = t.issue(username=member_name, password=USER_PASSWORD)
    sp = f"sp-{uuid.uuid4().hex[:8]}"
    rec = FirstParagraph({sp: "<sp>"})
    out = rec.out

    def req(label, method, path, token=admin, body=None):
        r = rec(label, api(t, method, path, token, body))
        if r.status_code < 300 and r.content:
            entity = r.json().get("service_provider")
            if entity:
                out[f"{label}-body"] = {k: v for k, v in entity.items() if k not in ("id", "links")}
                out[f"{label}-link"] = entity["links"]["self"].split("/v3/")[1].replace(sp, "<sp>")
        return r

    good = {"service_provider": {"auth_url": "https://sp.test/v3/auth", "sp_url": "https://sp.test/ecp"}}
    for label, body in {
        "no-body": {},
        "extra-top": {"service_provider": good["service_provider"], "x": 1},
        "not-object": {"service_provider": "x"},
        "no-auth-url": {"service_provider": {"sp_url": "https://x"}},
        "bad-url": {"service_provider": {"auth_url": "nourl", "sp_url": "https://x"}},
        "url-not-string": {"service_provider": {"auth_url": 5, "sp_url": "https://x"}},
        "long-url": {"service_provider": {"auth_url": "https://" + "x" * 230, "sp_url": "https://x"}},
        # (Baton quotes a body's object with its keys sorted; this one is sorted already.)
        "extra": {"service_provider": {**good["service_provider"], "zzz": 1}},
        "bad-enabled": {"service_provider": {**good["service_provider"], "enabled": "maybe"}},
        "enabled-number": {"service_provider": {**good["service_provider"], "enabled": 5}},
        "description-number": {"service_provider": {**good["service_provider"], "description": 5}},
    }.items():
        req(f"create-{label}", "PUT", f"{SPS}/{sp}", body=body)
    req("create-member-bad", "PUT", f"{SPS}/{sp}", member, {})
    req("create-member", "PUT", f"{SPS}/{sp}", member, good)
    req("create-reader", "PUT", f"{SPS}/{sp}", reader, good)
    req("create", "PUT", f"{SPS}/{sp}", body=good)
    req("create-again", "PUT", f"{SPS}/{sp}", body=good)
    req("show", "GET", f"{SPS}/{sp}", reader)
    req("show-member", "GET", f"{SPS}/{sp}", member)
    req("show-unknown", "GET", f"{SPS}/nosuch")
    r = req("list", "GET", SPS)
    out["list-ours"] = [x["enabled"] for x in r.json()["service_providers"] if x["id"] == sp]
    r = req("list-enabled", "GET", f"{SPS}?enabled=true")
    out["list-enabled-ours"] = [x["id"] for x in r.json()["service_providers"] if x["id"] == sp]
    req("list-member", "GET", SPS, member)
    req("update", "PATCH", f"{SPS}/{sp}", body={"service_provider": {"enabled": True, "description": "remote",
                                                                      "relay_state_prefix": "ss:x:"}})
    req("update-empty", "PATCH", f"{SPS}/{sp}", body={"service_provider": {}})
    req("update-id", "PATCH", f"{SPS}/{sp}", body={"service_provider": {"id": "other"}})
    req("update-unknown", "PATCH", f"{SPS}/nosuch", body={"service_provider": {"enabled": True}})
    req("update-member", "PATCH", f"{SPS}/{sp}", member, {"service_provider": {"enabled": False}})
    _, body = t.issue()
    out["token-sps"] = [{**x, "id": "<sp>"} for x in body["token"].get("service_providers", []) if x["id"] == sp]
    req("delete-member", "DELETE", f"{SPS}/{sp}", member)
    req("delete", "DELETE", f"{SPS}/{sp}")
    req("delete-again", "DELETE", f"{SPS}/{sp}")
    _, body = t.issue()
    out["token-sps-after"] = [x for x in body["token"].get("service_providers", []) if x["id"] == sp]
    return out


def test_service_provider_api_matches_keystone(pair):
    k = sp_requests(pair.keystone)
    b = sp_requests(pair.baton)
    diff = {label: (k[label], b.get(label)) for label in k if k[label] != b.get(label)}
    assert not diff and not sorted(set(b) - set(k)), f"(keystone, baton) per request: {diff}"


def test_service_providers_served_and_listed_by_both(pair):
    for writer in pair.both():
        admin, _ = writer.issue()
        sp = f"sp-{uuid.uuid4().hex[:8]}"
        r = api(writer, "PUT", f"{SPS}/{sp}", admin, {"service_provider": {
            "auth_url": "https://a.test/v3", "sp_url": "https://a.test/ecp", "enabled": True}})
        assert r.status_code == 201, r.text
        made = {k: v for k, v in r.json()["service_provider"].items() if k != "links"}
        want = {"auth_url": "https://a.test/v3", "id": sp, "sp_url": "https://a.test/ecp"}
        for t in pair.both():
            token, body = t.issue()
            r = api(t, "GET", f"{SPS}/{sp}", token)
            assert r.status_code == 200 and {k: v for k, v in r.json()["service_provider"].items()
                                             if k != "links"} == made, (writer.name, t.name, r.text)
            # A node sees another implementation's writes within its snapshot age (5 s).
            deadline = time.monotonic() + 8
            while want not in body["token"].get("service_providers", []) and time.monotonic() < deadline:
                time.sleep(0.5)
                _, body = t.issue()
            assert want in body["token"].get("service_providers", []), (writer.name, t.name, body["token"].keys())
        other = pair.baton if writer is pair.keystone else pair.keystone
        other_admin, _ = other.issue()
        assert api(other, "DELETE", f"{SPS}/{sp}", other_admin).status_code == 204


def test_openstackclient_service_provider_commands(target, venv_bin, tmp_path):
    """`openstack service provider create|list|show|set|delete` work against both alike, and
    `baton service provider ...` prints what openstackclient prints."""
    from conftest import CliPair

    cli = CliPair(target, venv_bin, tmp_path)
    ours = f"sp-{uuid.uuid4().hex[:6]}"
    cli.bt("service", "provider", "create", "--auth-url", "https://d.test/v3",
           "--service-provider-url", "https://d.test/ecp", ours)
    for fmt in ([], ["-f", "json"], ["-f", "value"]):
        cli.same("service", "provider", "show", ours, *fmt)
    cli.bt("service", "provider", "set", "--disable", "--description", "d", ours)
    cli.same("service", "provider", "show", ours)
    cli.same("service", "provider", "list")
    cli.bt("service", "provider", "delete", ours)
    r = cli.bt("service", "provider", "show", ours, check=False)
    want = cli.os("service", "provider", "show", ours, check=False)
    assert r.returncode == want.returncode == 1 and r.stderr.strip() == want.stderr.strip().splitlines()[-1], \
        (r.stderr, want.stderr)
    sp = f"sp-{uuid.uuid4().hex[:6]}"
    made = json.loads(cli.os("service", "provider", "create", "--auth-url", "https://b.test/v3",
                             "--service-provider-url", "https://b.test/ecp", "--enable",
                             "--description", "remote", "-f", "json", sp).stdout)
    assert (made["id"], made["enabled"], made["relay_state_prefix"]) == (sp, True, "ss:mem:"), made
    listed = json.loads(cli.os("service", "provider", "list", "-f", "json").stdout)
    assert [x["ID"] for x in listed if x["ID"] == sp] == [sp], listed
    cli.os("service", "provider", "set", "--disable", "--auth-url", "https://c.test/v3", sp)
    shown = json.loads(cli.os("service", "provider", "show", "-f", "json", sp).stdout)
    assert (shown["enabled"], shown["auth_url"]) == (False, "https://c.test/v3"), shown
    cli.os("service", "provider", "delete", sp)
    r = cli.os("service", "provider", "show", sp, check=False)
    assert r.returncode == 1, r.stdout
