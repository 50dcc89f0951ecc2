"""Keystone's inexact list filters (``name__contains``, ``__startswith``, ``__endswith`` and the
case-insensitive ``__icontains``, ``__istartswith``, ``__iendswith``) on Baton and the real
Keystone 30, sharing one database (fixture ``pair``): every query lists the same projects,
users, groups, domains, roles and services on both. Keystone runs the case-insensitive ones as SQL ``ILIKE`` (``%`` and
``_`` in the value are wildcards) and the case-sensitive ones as substring tests in Python;
unknown comparators are ignored; every value of a repeated key applies (``name=a&name=b`` lists
nothing on Keystone). A service's name lives in ``extra``, so Keystone filters it in Python, the
case-insensitive comparators too (``%`` is a character there).
"""

from __future__ import annotations

import pytest
import requests

HTTP_TIMEOUT = 30
NAMES = ["Alpha-One", "alpha_two", "BETA-one", "gamma", "Gamma-Alpha"]
QUERIES = [
    "name__contains=lpha",
    "name__contains=LPHA",
    "name__icontains=LPHA",
    "name__startswith=alpha",
    "name__istartswith=alpha",
    "name__endswith=One",
    "name__iendswith=one",
    "name__icontains=a_t",
    "name__contains=a_t",
    "name__icontains=%25",
    "name__like=zzz",
    "name__icontains=alpha&name__endswith=One",
    "name__contains=a&name__contains=zzz",
    "name__contains=mm&name__contains=al",
    "name=gamma&name=admin",
    "name=gamma&name__contains=mm",
]


def api(auth_url: str, method: str, path: str, token: str, body=None) -> requests.Response:
    return requests.request(method, f"{auth_url}/{path}", headers={"X-Auth-Token": token}, json=body,
                            timeout=HTTP_TIMEOUT)


@pytest.fixture(scope="module")
def named(pair):
    """Each name made once as a project, a user and a group (on Baton; the pair's database is
    this module's own)."""
    admin, _ = pair.baton.issue()
    for name in NAMES:
        for kind, body in (("projects", {"project": {"name": name, "domain_id": "default"}}),
                           ("users", {"user": {"name": name, "domain_id": "default"}}),
                           ("groups", {"group": {"name": name, "domain_id": "default"}}),
                           ("domains", {"domain": {"name": name}}),
                           ("roles", {"role": {"name": name}}),
                           ("services", {"service": {"name": name, "type": name.lower()}})):
            r = api(pair.baton.auth_url, "POST", kind, admin, body)
            assert r.status_code == 201, r.text


@pytest.mark.parametrize("kind", ["projects", "users", "groups", "domains", "roles", "services"])
def test_inexact_filters_list_the_same_on_both(pair, named, kind):
    tokens = {t.name: t.issue()[0] for t in pair.both()}
    for query in QUERIES:
        seen = {}
        for t in pair.both():
            token = tokens[t.name]
            r = api(t.auth_url, "GET", f"{kind}?{query}", token)
            assert r.status_code == 200, (t.name, query, r.text)
            seen[t.name] = sorted(e["name"] for e in r.json()[kind])
        assert seen["baton"] == seen["keystone"], (kind, query, seen)
    # The cases are not all empty or all full.
    counts = set()
    for query in QUERIES:
        r = api(pair.baton.auth_url, "GET", f"{kind}?{query}", tokens["baton"])
        counts.add(len([e for e in r.json()[kind] if e["name"] in NAMES]))
    assert len(counts) >= 3, counts
