"""`limit` and `marker` on the listings Keystone 30 pages (users, groups, projects, domains) and
`[resource]`/`[role]` `list_limit`, against Keystone 30 on one database.

Keystone pages those four listings in SQL from the marker's row: an unknown marker is a 404 with
its message on both. A known marker lists the ids after it on both. Keystone flags a full page
as `truncated` even when nothing follows (its code says it only assumes); Baton flags it only
when more entries exist, so the test compares pages where more entries do exist.
"""

from __future__ import annotations

import uuid

import pytest

from interop_util import api


@pytest.mark.parametrize("kind", ["users", "groups", "projects", "domains"])
def test_unknown_marker_is_keystones_404(pair, kind):
    seen = {}
    for t in pair.both():
        admin, _ = t.issue()
        r = api(t, "GET", f"{kind}?marker=no-such-{kind}", admin)
        seen[t.name] = (r.status_code, r.json().get("error", {}).get("message"))
    assert seen["baton"] == seen["keystone"] == (404, f"Marker no-such-{kind} could not be found."), seen


def test_known_marker_pages_alike(pair):
    admin, _ = pair.baton.issue()
    for i in range(3):
        r = api(pair.baton, "POST", "projects", admin,
                {"project": {"name": f"mk-{i}-{uuid.uuid4().hex[:6]}", "domain_id": "default"}})
        assert r.status_code == 201, r.text
    pages = {}
    for t in pair.both():
        token, _ = t.issue()
        ids = sorted(p["id"] for p in api(t, "GET", "projects", token).json()["projects"])
        r = api(t, "GET", f"projects?marker={ids[0]}&limit=2", token)
        assert r.status_code == 200, r.text
        body = r.json()
        pages[t.name] = ([p["id"] for p in body["projects"]], body.get("truncated"),
                         body["links"]["next"] is not None)
        assert pages[t.name][0] == ids[1:3], (t.name, pages[t.name], ids)
    assert pages["baton"] == pages["keystone"], pages


def test_resource_and_role_list_limit(tmp_path, keystone_template):
    """`[resource] list_limit` cuts projects and domains, `[role] list_limit` roles, on both."""
    from conftest import start_configured_pair

    k, b = start_configured_pair(tmp_path, keystone_template,
                                 {"resource": {"list_limit": "1"}, "role": {"list_limit": "2"}})
    try:
        seen = {}
        for t in (k, b):
            admin, _ = t.issue()
            api(t, "POST", "domains", admin, {"domain": {"name": f"ll-{uuid.uuid4().hex[:6]}"}})
            api(t, "POST", "projects", admin, {"project": {"name": f"ll-{uuid.uuid4().hex[:6]}"}})
            got = []
            for kind in ("projects", "domains", "roles"):
                body = api(t, "GET", kind, admin).json()
                got.append((kind, len(body[kind]), body.get("truncated")))
            seen[t.name] = got
        assert seen[k.name] == seen[b.name] == [("projects", 1, True), ("domains", 1, True), ("roles", 2, True)], seen
    finally:
        b.server.stop()
        k.server.stop()
