"""python-openstackclient (`openstack token issue|revoke`) against the target server."""

from __future__ import annotations

import json
import re

from interop_util import issue_token, parse_ts, validate_token

TOKEN_FIELDS = {"expires", "id", "project_id", "user_id"}


def check_against_server(target, fields: dict) -> None:
    """The token that OSC printed must validate on the server with the same values."""
    r = validate_token(target.auth_url, fields["id"], fields["id"])  # token_subject: a token may inspect itself
    assert r.status_code == 200, r.text
    t = r.json()["token"]
    assert t["project"]["id"] == fields["project_id"]
    assert t["user"]["id"] == fields["user_id"]
    assert t["project"]["name"] == "admin" and t["user"]["name"] == "admin"
    # OSC prints expires as 2026-11-22T11:33:43+0000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", fields["expires"]), fields["expires"]
    assert parse_ts(fields["expires"]) == parse_ts(t["expires_at"])
    assert r.headers.get("X-Subject-Token") == fields["id"]


def test_token_issue_json(target, openstack):
    r = openstack.run("token", "issue", "-f", "json")
    fields = json.loads(r.stdout)
    assert set(fields) == TOKEN_FIELDS, fields
    assert fields["id"].startswith("gAAAAA")
    check_against_server(target, fields)


def test_token_issue_table(target, openstack):
    r = openstack.run("token", "issue")
    # +------------+-----------------+
    # | Field      | Value           |
    # +------------+-----------------+
    # | expires    | 2026-...+0000   |
    rows = {}
    for line in r.stdout.splitlines():
        m = re.fullmatch(r"\|\s*(\S+)\s*\|\s*(.*?)\s*\|", line.strip())
        if m and m.group(1) != "Field":
            rows[m.group(1)] = m.group(2)
    assert set(rows) == TOKEN_FIELDS, r.stdout
    check_against_server(target, rows)


def test_token_revoke(target, openstack):
    fields = json.loads(openstack.run("token", "issue", "-f", "json").stdout)
    victim = fields["id"]
    caller, _ = issue_token(target.auth_url)
    assert validate_token(target.auth_url, caller, victim).status_code == 200
    r = openstack.run("token", "revoke", victim)
    assert r.stdout.strip() == ""
    gone = validate_token(target.auth_url, caller, victim)
    assert gone.status_code == 404, gone.text
    assert gone.json()["error"]["code"] == 404
    # the caller's own token is unaffected
    assert validate_token(target.auth_url, caller, caller).status_code == 200
