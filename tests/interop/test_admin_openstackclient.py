"""python-openstackclient drives the identity admin API through the service-token seed procedure.

The same scenario runs against the real Keystone (proving the test itself) and against Baton on
SQLite, PostgreSQL and MariaDB (those scripts/test-all.sh names, else 127.0.0.1:5432 and :3306): create the `service` role if
missing, a `service` project, service users nova and cinder holding `service` there, then read it
all back the way operators do (`role assignment list --names`, `role show`), plus the project,
user, group, endpoint and catalog commands deployment tools use. Outputs are checked as printed.
"""

from __future__ import annotations

import json
import re
import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from baton_process import Baton
from conftest import OpenStackCLI, require_baton, start_keystone
from interop_util import ADMIN_PASSWORD, Target, issue_token
from keystone_oracle import OracleError

NOVA_PASSWORD = "N0va-Seed-Pw-4471"
CINDER_PASSWORD = "C1nder-Seed-Pw-9035"


def _server(kind: str) -> tuple[str, int, str]:
    """Host, port and user of the database server the Rust tests use too: the one
    scripts/test-all.sh named in BATON_TEST_POSTGRES_URL / BATON_TEST_MYSQL_URL, else the
    machine's on its standard port."""
    import urllib.parse

    env, default = (("BATON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432") if kind == "postgres"
                    else ("BATON_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"))
    u = urllib.parse.urlsplit(os.environ.get(env, default))
    return u.hostname or "127.0.0.1", u.port or (5432 if kind == "postgres" else 3306), u.username or "root"


def _create_server_db(kind: str) -> tuple[str, callable]:
    """A fresh database on the test PostgreSQL/MariaDB; returns its URL and a dropper."""
    name = "baton_osc_" + uuid.uuid4().hex[:10]
    host, port, user = _server(kind)
    if kind == "postgres":
        import psycopg2

        def run(sql: str) -> None:
            c = psycopg2.connect(host=host, port=port, user=user, dbname="postgres")
            c.autocommit = True
            c.cursor().execute(sql)
            c.close()

        run(f"CREATE DATABASE {name}")
        return f"postgresql://{user}@{host}:{port}/{name}", lambda: run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    import pymysql

    def run(sql: str) -> None:
        c = pymysql.connect(host=host, port=port, user=user, autocommit=True)
        c.cursor().execute(sql)
        c.close()

    run(f"CREATE DATABASE {name}")
    return f"mysql+pymysql://{user}@{host}:{port}/{name}", lambda: run(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module", params=["keystone", "baton-sqlite", "baton-postgres", "baton-mariadb"])
def admin_target(request, tmp_path_factory) -> Iterator[Target]:
    kind = request.param
    workdir = tmp_path_factory.mktemp(kind)
    if kind == "keystone":
        t = start_keystone(workdir, template=request.getfixturevalue("keystone_template"))
        yield t
        t.server.stop()
        return
    require_baton()
    drop = None
    connection = None
    if kind != "baton-sqlite":
        connection, drop = _create_server_db(kind.split("-")[1])
    b = Baton(workdir, connection=connection)
    try:
        b.write_config()
        b.db_sync()
        b.fernet_setup()
        b.bootstrap(ADMIN_PASSWORD, public_url=b.auth_url)
        b.start()
    except OracleError as e:
        b.stop()
        if drop:
            drop()
        pytest.fail(f"could not start baton on {kind}: {e}", pytrace=False)
    yield Target(kind, b.auth_url, b.sqlite_path, server=b)
    b.stop()
    if drop:
        drop()


@pytest.fixture
def osc(admin_target, venv_bin, tmp_path) -> OpenStackCLI:
    return OpenStackCLI(venv_bin / "openstack", admin_target, tmp_path)


def js(osc: OpenStackCLI, *args: str):
    return json.loads(osc.run(*args, "-f", "json").stdout)


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of an OSC table, header row included."""
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_seed_procedure(osc: OpenStackCLI, admin_target: Target):
    # 1. The `service` role: show it, create it when missing (bootstrap makes it on both).
    r = osc.run("role", "show", "service", "-f", "json", check=False)
    if r.returncode != 0:
        assert "No role with a name or ID of 'service' exists" in r.stderr, r.stderr
        osc.run("role", "create", "service")
        r = osc.run("role", "show", "service", "-f", "json")
    role = json.loads(r.stdout)
    assert role["name"] == "service" and re.fullmatch(r"[0-9a-f]{32}", role["id"]), role
    assert role["domain_id"] is None

    # 2. The service project and the service users.
    project = js(osc, "project", "create", "--domain", "default", "--description", "Service Project", "service")
    assert project["name"] == "service" and project["domain_id"] == "default", project
    assert project["enabled"] is True and project["is_domain"] is False
    assert project["description"] == "Service Project"
    users = {}
    for name, pw in (("nova", NOVA_PASSWORD), ("cinder", CINDER_PASSWORD)):
        u = js(osc, "user", "create", "--domain", "default", "--password", pw, "--project", "service", name)
        assert u["name"] == name and u["domain_id"] == "default" and u["enabled"] is True, u
        assert u["default_project_id"] == project["id"], u
        assert "password" not in u
        users[name] = u
    dup = osc.run("user", "create", "--domain", "default", "--password", "x", "nova", check=False)
    assert dup.returncode != 0 and "409" in dup.stderr, dup.stderr

    # 3. Grants, as the install guides write them.
    for name in ("nova", "cinder"):
        r = osc.run("role", "add", "--user", name, "--project", "service", "service")
        assert r.stdout.strip() == ""
        osc.run("role", "add", "--user", name, "--user-domain", "default", "--project", "service",
                "--project-domain", "default", "admin")

    # 4. Read back with names, table and JSON.
    r = osc.run("role", "assignment", "list", "--user", "cinder", "--project", "service", "--names")
    rows = table_rows(r.stdout)
    assert rows[0][:4] == ["Role", "User", "Group", "Project"], rows
    got = sorted((row[0], row[1], row[2], row[3]) for row in rows[1:])
    assert got == [("admin", "cinder@Default", "", "service@Default"),
                   ("service", "cinder@Default", "", "service@Default")], r.stdout
    listed = js(osc, "role", "assignment", "list", "--user", "nova", "--project", "service")
    assert sorted(a["Role"] for a in listed) == sorted([role["id"], js(osc, "role", "show", "admin")["id"]])
    assert {a["User"] for a in listed} == {users["nova"]["id"]}
    assert {a["Project"] for a in listed} == {project["id"]}
    r = osc.run("role", "assignment", "list", "--role", "service", "--names", "-f", "json")
    by_user = {a["User"] for a in json.loads(r.stdout)}
    assert {"nova@Default", "cinder@Default"} <= by_user, r.stdout

    # 5. The service users can now get tokens on the service project, holding `service`.
    tok, body = issue_token(admin_target.auth_url, {"project": {"name": "service", "domain": {"name": "Default"}}},
                            username="nova", password=NOVA_PASSWORD)
    assert {r["name"] for r in body["token"]["roles"]} >= {"service", "admin", "member", "reader"}

    # 6. Removing the role shows immediately.
    osc.run("role", "remove", "--user", "cinder", "--project", "service", "admin")
    rows = table_rows(osc.run("role", "assignment", "list", "--user", "cinder", "--project", "service",
                              "--names").stdout)
    assert [r[0] for r in rows[1:]] == ["service"], rows


def test_projects_users_groups(osc: OpenStackCLI):
    p = js(osc, "project", "create", "--description", "tenant A", "--tag", "gold", "tenant-a")
    listed = js(osc, "project", "list")
    assert {"ID": p["id"], "Name": "tenant-a"} in listed, listed
    shown = js(osc, "project", "show", "tenant-a")
    assert shown["tags"] == ["gold"] and shown["description"] == "tenant A", shown

    u = js(osc, "user", "create", "--password", "Us3r-Pw-1", "--email", "ops@example.com", "alice")
    assert u["email"] == "ops@example.com"
    osc.run("user", "set", "--email", "alice@example.com", "--description", "on call", "alice")
    shown = js(osc, "user", "show", "alice")
    assert shown["email"] == "alice@example.com" and shown["description"] == "on call", shown
    osc.run("user", "set", "--disable", "alice")
    assert js(osc, "user", "show", "alice")["enabled"] is False
    names = [x["Name"] for x in js(osc, "user", "list")]
    assert "alice" in names and "admin" in names

    g = js(osc, "group", "create", "--description", "operators", "ops")
    assert g["name"] == "ops"
    r = osc.run("group", "add", "user", "ops", "alice")
    assert r.stdout.strip() == "" or "added" in r.stdout
    members = [x["Name"] for x in js(osc, "user", "list", "--group", "ops")]
    assert members == ["alice"], members
    r = osc.run("group", "contains", "user", "ops", "alice")
    assert "alice in group ops" in r.stdout, r.stdout

    osc.run("user", "delete", "alice")
    r = osc.run("user", "show", "alice", check=False)
    assert r.returncode != 0
    osc.run("project", "delete", "tenant-a")
    assert "tenant-a" not in [x["Name"] for x in js(osc, "project", "list")]


def test_endpoints_and_catalog(osc: OpenStackCLI, admin_target: Target):
    svc = js(osc, "service", "create", "--name", "cinderv3", "--description", "Block Storage", "volumev3")
    assert svc["type"] == "volumev3" and svc["name"] == "cinderv3" and svc["enabled"] is True, svc
    url = "http://127.0.0.1:8776/v3/%(project_id)s"
    for interface in ("public", "internal"):
        ep = js(osc, "endpoint", "create", "--region", "RegionOne", "volumev3", interface, url)
        assert ep["interface"] == interface and ep["url"] == url and ep["region"] == "RegionOne", ep
        assert ep["service_id"] == svc["id"] and ep["service_type"] == "volumev3", ep
    eps = js(osc, "endpoint", "list", "--service", "volumev3")
    assert sorted(e["Interface"] for e in eps) == ["internal", "public"], eps
    assert all(e["Service Name"] == "cinderv3" and e["URL"] == url for e in eps)

    catalog = js(osc, "catalog", "list")
    by_name = {c["Name"]: c for c in catalog}
    assert {"keystone", "cinderv3"} <= set(by_name), catalog
    assert by_name["cinderv3"]["Type"] == "volumev3"
    ids = [e["url"] for e in by_name["cinderv3"]["Endpoints"]]
    project_id = js(osc, "project", "show", "admin")["id"]
    assert ids == [f"http://127.0.0.1:8776/v3/{project_id}"] * 2, by_name["cinderv3"]
    shown = js(osc, "catalog", "show", "volumev3")
    assert shown["type"] == "volumev3"

    osc.run("service", "delete", "cinderv3")
    assert js(osc, "endpoint", "list", "--service", "keystone")  # the identity endpoints stay
    assert not [e for e in js(osc, "endpoint", "list") if e["Service Type"] == "volumev3"]
