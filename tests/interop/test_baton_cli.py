"""The `baton` operator commands against python-openstackclient, on Baton AND on the real Keystone.

For each target the same data is made with `baton` itself (domains, projects, users, roles,
groups, grants, services, endpoints), then every read command is run by both `baton` and the
venv's `openstack` with the same OS_* environment, and their stdout must be identical — the same
columns, values, order and formatting (table, json, value, -c). What `baton ... create` prints is
compared with what `openstack ... show` prints for the created object. Grants made and removed by
`baton` are checked through `openstack role assignment list`; tokens issued by `baton` validate
and `baton token revoke` revokes. clouds.yaml / secure.yaml / OS_CLOUD / --os-cloud and their
precedence are checked by comparing which user and project both tools end up with.
Errors: one line on stderr and exit status 1.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from conftest import CliPair as Pair
from conftest import require_baton
from interop_util import ADMIN_PASSWORD, validate_token



@pytest.fixture(scope="module")
def world(target, venv_bin, tmp_path_factory) -> Iterator[Pair]:
    """The target with the same data made by `baton` on both kinds of server."""
    require_baton()
    p = Pair(target, venv_bin, tmp_path_factory.mktemp("cli-home"))
    bt = p.bt
    bt("domain", "create", "--description", "Domain one", "dom1")
    bt("project", "create", "--domain", "dom1", "--description", "Project one", "--tag", "blue", "proj1")
    bt("project", "create", "--domain", "dom1", "--parent", "proj1", "child1")
    bt("project", "create", "--domain", "default", "--disable", "solo")
    bt("user", "create", "--domain", "dom1", "--password", "Al1ce-pw-771", "--email", "alice@example.org",
       "--description", "Alice's account", "--project", "proj1", "--project-domain", "dom1", "alice")
    bt("user", "create", "--domain", "dom1", "--password", "B0b-pw-5521", "--disable", "bob")
    bt("user", "create", "--password", "C4rol-pw-118", "carol")
    bt("role", "create", "--description", "Can watch", "observer")
    bt("role", "create", "--domain", "dom1", "domrole")
    # Groups are not among baton's commands: made with openstack.
    p.os("group", "create", "--domain", "dom1", "ops")
    p.os("group", "add", "user", "--group-domain", "dom1", "--user-domain", "dom1", "ops", "alice")
    bt("role", "add", "--user", "alice", "--user-domain", "dom1", "--project", "proj1", "--project-domain", "dom1",
       "observer")
    bt("role", "add", "--user", "alice", "--user-domain", "dom1", "--domain", "dom1", "--inherited", "member")
    bt("role", "add", "--group", "ops", "--group-domain", "dom1", "--project", "child1", "--project-domain", "dom1",
       "reader")
    bt("role", "add", "--user", "carol", "--system", "all", "reader")
    bt("role", "add", "--user", "bob", "--user-domain", "dom1", "--project", "child1", "--project-domain", "dom1",
       "--role-domain", "dom1", "domrole")
    bt("service", "create", "--name", "nova", "--description", "Compute", "compute")
    bt("service", "create", "--name", "cinderv3", "--disable", "volumev3")
    bt("endpoint", "create", "--region", "RegionOne", "compute", "public", "http://nova.example:8774/v2.1")
    bt("endpoint", "create", "--region", "RegionOne", "compute", "internal", "http://nova.internal:8774/v2.1")
    bt("endpoint", "create", "cinderv3", "admin", "http://cinder.example:8776/v3")
    yield p


# ---- reads: identical output ------------------------------------------------------------------
READS = [
    ["role", "list"],
    ["role", "list", "--domain", "dom1"],
    ["role", "show", "observer"],
    ["role", "show", "--domain", "dom1", "domrole"],
    ["user", "list"],
    ["user", "list", "--long"],
    ["user", "list", "--domain", "dom1", "--long"],
    ["user", "list", "--domain", "dom1", "--disabled"],
    ["user", "list", "--project", "proj1", "--domain", "dom1"],
    ["user", "list", "--group", "ops"],
    ["user", "show", "--domain", "dom1", "alice"],
    ["user", "show", "admin"],
    ["project", "list"],
    ["project", "list", "--long"],
    ["project", "list", "--domain", "dom1", "--long"],
    ["project", "list", "--parent", "proj1", "--domain", "dom1"],
    ["project", "list", "--user", "admin"],
    ["project", "show", "--domain", "dom1", "proj1"],
    ["project", "show", "--domain", "dom1", "child1"],
    ["project", "show", "solo"],
    ["domain", "list"],
    ["service", "list"],
    ["service", "list", "--long"],
    ["endpoint", "list"],
    ["endpoint", "list", "--service", "compute", "--interface", "public", "--region", "RegionOne"],
    ["endpoint", "list", "--service", "volumev3"],
    ["catalog", "list"],
    ["role", "assignment", "list"],
    ["role", "assignment", "list", "--names"],
    ["role", "assignment", "list", "--user", "alice", "--user-domain", "dom1"],
    ["role", "assignment", "list", "--user", "alice", "--user-domain", "dom1", "--names", "--effective"],
    ["role", "assignment", "list", "--project", "proj1", "--project-domain", "dom1", "--names"],
    ["role", "assignment", "list", "--domain", "dom1", "--inherited", "--names"],
    ["role", "assignment", "list", "--group", "ops", "--group-domain", "dom1"],
    ["role", "assignment", "list", "--system", "all", "--names"],
    ["role", "assignment", "list", "--role", "observer", "--effective"],
    ["role", "assignment", "list", "--role", "domrole", "--role-domain", "dom1", "--names"],
    ["role", "assignment", "list", "--auth-user", "--auth-project", "--names"],
]


def _ids(cmd: list[str]) -> str:
    return "-".join(a.lstrip("-") for a in cmd)


@pytest.mark.parametrize("cmd", READS, ids=[_ids(c) for c in READS])
def test_reads_print_what_openstack_prints(world, cmd):
    world.same(*cmd)


FORMATS = [
    ["-f", "json"],
    ["-f", "value"],
    ["-c", "Name"],
    ["-f", "value", "-c", "name", "-c", "ID"],
]
FORMATTED = [
    ["user", "list", "--long"],
    ["user", "show", "--domain", "dom1", "alice"],
    ["project", "show", "--domain", "dom1", "proj1"],
    ["catalog", "list"],
    ["role", "assignment", "list", "--names"],
    ["endpoint", "list"],
]


@pytest.mark.parametrize("fmt", FORMATS, ids=[_ids(f) for f in FORMATS])
@pytest.mark.parametrize("cmd", FORMATTED, ids=[_ids(c) for c in FORMATTED])
def test_formats_and_columns(world, cmd, fmt):
    # -c names that a command lacks are an error for both; compare only where openstack accepts.
    want = world.os(*cmd, *fmt, check=False)
    got = world.bt(*cmd, *fmt, check=False)
    assert got.returncode == want.returncode, (want.stderr, got.stderr)
    if want.returncode == 0:
        assert got.stdout == want.stdout, "\n".join(difflib.unified_diff(
            want.stdout.splitlines(), got.stdout.splitlines(), "openstack", "baton", lineterm=""))
    else:
        assert got.stderr.strip() == want.stderr.strip().splitlines()[-1]


# ---- creates: what baton prints is what openstack shows --------------------------------------------
def test_create_output_matches_openstack_show(world):
    p = world
    created = p.bt_json("domain", "create", "--description", "made by baton", "dom2")
    assert created == p.os_json("domain", "show", created["id"])
    created = p.bt_json("project", "create", "--domain", "dom2", "--tag", "x", "--description", "P2", "proj2")
    assert created == p.os_json("project", "show", created["id"])
    created = p.bt_json("user", "create", "--domain", "dom2", "--password", "D4ve-pw-331", "--email", "d@example.org",
                        "--project", "proj2", "--project-domain", "dom2", "dave")
    assert created == p.os_json("user", "show", created["id"])
    created = p.bt_json("role", "create", "--domain", "dom2", "--description", "d2 role", "d2role")
    assert created == p.os_json("role", "show", created["id"])
    created = p.bt_json("service", "create", "--name", "glance", "--description", "Images", "image")
    assert created == p.os_json("service", "show", created["id"])
    created = p.bt_json("endpoint", "create", "--region", "RegionOne", "image", "public", "http://glance:9292")
    assert created == p.os_json("endpoint", "show", created["id"])
    # Table form of a create: the same rows as openstack's show, in the same order.
    table = p.bt("role", "create", "--description", "tabled", "tabled").stdout
    rid = [l for l in table.splitlines() if l.startswith("| id ")][0].split("|")[2].strip()
    assert table == p.os("role", "show", rid).stdout
    # --or-show returns the existing one.
    again = p.bt_json("role", "create", "--or-show", "tabled")
    assert again["id"] == rid
    # And created objects look the same as openstack-created ones (ids masked).
    mine = p.bt_json("domain", "create", "--description", "twin", "twin-b")
    theirs = p.os_json("domain", "create", "--description", "twin", "twin-o")
    for d in (mine, theirs):
        d["id"], d["name"] = "ID", "NAME"
    assert mine == theirs


# ---- writes checked through openstack ---------------------------------------------------------------
def test_role_add_and_remove_every_kind(world):
    p = world
    listing = ["role", "assignment", "list", "--names", "--role", "manager"]
    grants = [
        ["--user", "carol", "--project", "admin"],
        ["--user", "alice", "--user-domain", "dom1", "--domain", "dom1"],
        ["--user", "alice", "--user-domain", "dom1", "--project", "proj1", "--project-domain", "dom1", "--inherited"],
        ["--group", "ops", "--group-domain", "dom1", "--domain", "dom1", "--inherited"],
        ["--group", "ops", "--group-domain", "dom1", "--system", "all"],
        ["--user", "carol", "--system", "all"],
    ]
    for g in grants:
        p.bt("role", "add", *g, "manager")
    shown = p.os(*listing).stdout
    rows = [l for l in shown.splitlines() if l.startswith("| manager")]
    assert len(rows) == len(grants), shown
    p.same(*listing)
    for g in grants:
        p.bt("role", "remove", *g, "manager")
    assert p.os(*listing).stdout == "\n"


def test_user_set_and_deletes(world):
    p = world
    p.bt("user", "create", "--domain", "dom1", "--password", "Er1n-pw-9", "erin")
    p.bt("user", "set", "--domain", "dom1", "--email", "erin@example.org", "--description", "Erin", "--disable",
         "--name", "erin2", "erin")
    shown = p.os_json("user", "show", "--domain", "dom1", "erin2")
    assert (shown["email"], shown["description"], shown["enabled"]) == ("erin@example.org", "Erin", False)
    p.same("user", "show", "--domain", "dom1", "erin2")
    p.bt("user", "set", "--domain", "dom1", "--enable", "--project", "proj1", "--project-domain", "dom1", "erin2")
    shown = p.os_json("user", "show", "--domain", "dom1", "erin2")
    assert shown["enabled"] is True and shown["default_project_id"] == p.os_json(
        "project", "show", "--domain", "dom1", "proj1")["id"]
    # The new password works.
    p.bt("user", "set", "--domain", "dom1", "--password", "Er1n-new-pw", "erin2")
    p.bt("role", "add", "--user", "erin2", "--user-domain", "dom1", "--project", "proj1", "--project-domain", "dom1",
         "member")
    if p.target.name == "keystone":
        # Keystone revokes the user's tokens issued up to the password change, in whole seconds:
        # a token issued in the same second is born revoked there (Baton mints it in the next
        # second instead), so give Keystone a new second.
        time.sleep(1.1)
    env = {"OS_USERNAME": "erin2", "OS_PASSWORD": "Er1n-new-pw", "OS_USER_DOMAIN_NAME": "dom1",
           "OS_PROJECT_NAME": "proj1", "OS_PROJECT_DOMAIN_NAME": "dom1"}
    assert p.bt("token", "issue", "-f", "value", "-c", "user_id", env=env).stdout.strip() == shown["id"]
    p.bt("user", "delete", "--domain", "dom1", "erin2")
    assert p.os("user", "show", "--domain", "dom1", "erin2", check=False).returncode == 1
    p.bt("role", "create", "gone1")
    p.bt("role", "create", "--domain", "dom1", "gone2")
    p.bt("role", "delete", "gone1")
    p.bt("role", "delete", "--domain", "dom1", "gone2")
    assert p.os("role", "show", "gone1", check=False).returncode == 1
    r = p.bt("role", "delete", "nosuch-a", "nosuch-b", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "2 of 2 roles failed to delete." in r.stderr, r.stderr


# ---- tokens -----------------------------------------------------------------------------------------
def test_token_issue_and_revoke(world):
    p = world
    mine = p.bt_json("token", "issue")
    theirs = p.os_json("token", "issue")
    assert list(mine) == list(theirs) == ["expires", "id", "project_id", "user_id"]
    assert (mine["user_id"], mine["project_id"]) == (theirs["user_id"], theirs["project_id"])
    assert mine["expires"].endswith("+0000") and len(mine["expires"]) == len(theirs["expires"])
    caller = theirs["id"]
    assert validate_token(p.target.auth_url, caller, mine["id"]).status_code == 200
    # Domain- and system-scoped tokens show their scope the same way.
    for env in ({"OS_PROJECT_NAME": "", "OS_PROJECT_DOMAIN_NAME": "", "OS_DOMAIN_NAME": "Default"},
                {"OS_PROJECT_NAME": "", "OS_PROJECT_DOMAIN_NAME": "", "OS_SYSTEM_SCOPE": "all"}):
        a = json.loads(p.bt("token", "issue", "-f", "json", env=env).stdout)
        b = json.loads(p.os("token", "issue", "-f", "json", env=env).stdout)
        assert sorted(a) == sorted(b), (a, b)
        assert {k: v for k, v in a.items() if k not in ("id", "expires")} == \
               {k: v for k, v in b.items() if k not in ("id", "expires")}
    # baton revokes its own token and openstack's.
    p.bt("token", "revoke", mine["id"])
    assert validate_token(p.target.auth_url, caller, mine["id"]).status_code == 404
    other = p.os_json("token", "issue")["id"]
    p.bt("token", "revoke", other)
    assert validate_token(p.target.auth_url, caller, other).status_code == 404


# ---- errors -----------------------------------------------------------------------------------------
def test_errors_are_one_line_and_exit_1(world):
    p = world
    for args, want in [
        (["user", "show", "nosuch"], "No User found for nosuch"),
        (["project", "show", "--domain", "nodom", "proj1"], "No Domain found for nodom"),
        (["role", "add", "--user", "nosuch", "--project", "admin", "observer"], "No User found for nosuch"),
        (["role", "add", "--user", "alice", "--project", "admin", "nosuchrole"], "No Role found for nosuchrole"),
        (["role", "add", "observer"], "Role not added, incorrect set of arguments provided."),
        (["endpoint", "create", "--region", "NoRegion", "compute", "public", "http://x"], "No Region found for NoRegion"),
        (["endpoint", "create", "nosvc", "public", "http://x"], "No service with a type, name or ID of 'nosvc' exists."),
        (["user", "list", "-c", "Nope"], "No recognized column names in ['Nope']. Recognized columns are ['ID', 'Name']."),
        (["user", "create", "--domain", "dom1", "--password", "x", "alice"], "ConflictException: 409"),
    ]:
        r = p.bt(*args, check=False)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stdout == "", (args, r.stdout)
        assert r.stderr.count("\n") == 1 and want in r.stderr, (args, r.stderr)
        assert p.os(*args, check=False).returncode == 1, args
    # Wrong password, unreachable identity: one line, no secret.
    r = p.bt("token", "issue", env={"OS_PASSWORD": "Wr0ng-pw-x"}, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "401" in r.stderr, r.stderr
    assert "Wr0ng-pw-x" not in r.stderr
    r = p.bt("token", "issue", env={"OS_AUTH_URL": "http://127.0.0.1:9/v3"}, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot connect" in r.stderr, r.stderr
    r = p.bt("token", "issue", env={"OS_AUTH_URL": ""}, check=False)
    assert r.returncode == 1 and "Missing value auth-url" in r.stderr, r.stderr


# ---- application credentials and access rules --------------------------------------------------------
def test_application_credentials_like_openstack(world, tmp_path):
    p = world
    rules = '[{"service": "compute", "method": "GET", "path": "/v2.1/servers"}]'
    created = p.bt_json("application", "credential", "create", "--description", "by baton", "--role", "reader",
                        "--expiration", "2031-01-02T03:04:05", "--access-rules", rules, "cli-ac")
    secret = created.pop("Secret")
    assert secret and len(secret) > 20
    assert created == p.os_json("application", "credential", "show", created["ID"])
    # Both tools log in with it (--os-auth-type v3applicationcredential, from OS_* variables).
    env = {k: v for k, v in p.env.items() if not k.startswith(("OS_USER", "OS_PASSWORD", "OS_PROJECT"))}
    env.update(OS_AUTH_TYPE="v3applicationcredential", OS_APPLICATION_CREDENTIAL_ID=created["ID"],
               OS_APPLICATION_CREDENTIAL_SECRET=secret)
    issued = [json.loads(run(*"token issue -f json".split(), full_env=env).stdout) for run in (p.bt, p.os)]
    assert [(t["user_id"], t["project_id"]) for t in issued] == [(issued[1]["user_id"], created["Project ID"])] * 2
    # The rules from a file, the default role set, and the table form of create.
    (tmp_path / "rules.json").write_text(rules)
    table = p.bt("application", "credential", "create", "--unrestricted", "--access-rules",
                 str(tmp_path / "rules.json"), "cli-ac2").stdout
    shown = [line for line in table.splitlines() if not line.startswith("| Secret ")]
    assert "\n".join(shown) + "\n" == p.os("application", "credential", "show", "cli-ac2").stdout
    for cmd in (["application", "credential", "list"], ["application", "credential", "show", "cli-ac"],
                ["application", "credential", "list", "-f", "json"], ["access", "rule", "list"],
                ["application", "credential", "list", "--user", "admin", "-f", "value"]):
        p.same(*cmd)
    rule_id = created["Access Rules"][0]["id"]
    p.same("access", "rule", "show", rule_id)
    p.same("access", "rule", "show", rule_id, "-f", "json")
    # A rule in use cannot be deleted (the server's refusal, on one line).
    r = p.bt("access", "rule", "delete", rule_id, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "1 of 1 access rules failed to delete." in r.stderr, r.stderr
    assert p.os("access", "rule", "delete", rule_id, check=False).returncode == 1
    # Delete by name, then the rules the credentials held.
    p.bt("application", "credential", "delete", "cli-ac", "cli-ac2")
    r = p.os("application", "credential", "show", "cli-ac", check=False)
    assert r.returncode == 1
    r = p.bt("application", "credential", "show", "cli-ac", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "No ApplicationCredential found for cli-ac", r.stderr
    p.bt("access", "rule", "delete", rule_id)
    p.same("access", "rule", "list")
    r = p.bt("application", "credential", "delete", "nosuch", check=False)
    assert r.returncode == 1 and r.stderr.strip() == (
        "Failed to delete application credential with name or ID 'nosuch': No ApplicationCredential found for "
        "nosuch; 1 of 1 application credentials failed to delete."), r.stderr


# ---- clouds.yaml, secure.yaml, OS_CLOUD, --os-cloud, precedence ---------------------------------------
def _clouds(auth_url: str, project: str, password: Optional[str] = ADMIN_PASSWORD) -> str:
    auth = {"auth_url": auth_url, "username": "admin", "project_name": project,
            "user_domain_name": "Default", "project_domain_name": "Default"}
    if password:
        auth["password"] = password
    return json.dumps({"clouds": {"main": {"auth": auth, "region_name": "RegionOne", "interface": "public",
                                           "identity_api_version": 3}}})


def test_clouds_yaml_like_openstack(world, tmp_path):
    p = world
    p.bt("project", "create", "--domain", "default", "cloudproj")
    p.bt("role", "add", "--user", "admin", "--project", "cloudproj", "admin")
    cwd = tmp_path / "work"
    home = tmp_path / "home"
    (home / ".config" / "openstack").mkdir(parents=True)
    cwd.mkdir()
    # JSON is YAML: the same text serves both readers. The file in the working directory wins
    # over ~/.config/openstack; the password comes from secure.yaml there.
    (cwd / "clouds.yaml").write_text(_clouds(p.target.auth_url, "cloudproj", password=None))
    (cwd / "secure.yaml").write_text(json.dumps({"clouds": {"main": {"auth": {"password": ADMIN_PASSWORD}}}}))
    (home / ".config" / "openstack" / "clouds.yaml").write_text(_clouds(p.target.auth_url, "admin"))
    # No OS_* at all, as on an operator's machine (an empty variable still counts for openstack).
    base = {k: v for k, v in p.env.items() if not k.startswith("OS_")}
    base["HOME"] = str(home)

    def both(env: dict, *extra: str, where: Path = cwd) -> str:
        args = ["token", "issue", "-f", "value", "-c", "project_id", "-c", "user_id", *extra]
        want = p.os(*args, full_env=env, cwd=where)
        got = p.bt(*args, full_env=env, cwd=where)
        assert got.stdout == want.stdout, (env, extra, want.stdout, got.stdout, got.stderr)
        return got.stdout.split()[0]

    cloudproj = p.os_json("project", "show", "cloudproj")["id"]
    admin = p.os_json("project", "show", "admin")["id"]
    assert both({**base, "OS_CLOUD": "main"}) == cloudproj
    assert both(base, "--os-cloud", "main") == cloudproj
    assert both(base) == cloudproj, "the only cloud is the default"
    # ~/.config/openstack when the working directory has none.
    assert both({**base, "OS_CLOUD": "main"}, where=home) == admin
    # OS_* over clouds.yaml, the command line over OS_*.
    assert both({**base, "OS_CLOUD": "main", "OS_PROJECT_NAME": "admin"}) == admin
    assert both({**base, "OS_CLOUD": "main", "OS_PROJECT_NAME": "admin"}, "--os-project-name", "cloudproj") == cloudproj
    # A wrong password in the environment beats secure.yaml: both refuse.
    for tool in (p.os, p.bt):
        r = tool("token", "issue", full_env={**base, "OS_CLOUD": "main", "OS_PASSWORD": "nope"}, cwd=cwd, check=False)
        assert r.returncode == 1
    r = p.bt("token", "issue", full_env={**base, "OS_CLOUD": "nowhere"}, cwd=cwd, check=False)
    assert r.returncode == 1 and r.stderr.startswith("Cloud nowhere was not found"), r.stderr
    assert p.os("token", "issue", full_env={**base, "OS_CLOUD": "nowhere"}, cwd=cwd, check=False).returncode == 1
