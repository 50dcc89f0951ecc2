"""Security review 2026-12, findings #10 and #12, asked of Baton and the real Keystone 30.

#10 (existence oracle): the same requests, by the same personas, on existing and nonexistent
projects, domains and grant targets must get the same status from both servers; a caller whose
policy does not allow the request gets 403 whether or not the thing exists, and only a caller it
allows learns of a 404. Where Keystone itself answers 404 before policy (its plain and system
grant routes look up the role, actor and target first; its PATCH/DELETE of a domain look the
domain up first), Baton answers 403 instead: those cases are listed in KEYSTONE_LEAKS, and the
test asserts both answers, so a change on either side shows.

#12 (mass assignment): `id`, `domain_id`, `parent_id` and `is_domain` in the body of
`POST /v3/domains` (and `id` in `POST /v3/projects`) must not be stored or shown back; the
response keys and values are compared with Keystone's, generated ids aside.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Optional

import pytest
import requests

from interop_util import HTTP_TIMEOUT, PROJECT_SCOPE, SYSTEM_SCOPE, Target

PW = "Rev1ew-Persona-Pw-3302"
RAND = uuid.uuid4().hex  # an id nothing has, the same for both servers


@dataclass
class World:
    """One server, set up the same way as the other: personas, projects, domains, roles."""

    target: Target
    admin: str = ""
    ids: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)

    def req(self, method: str, path: str, token: str, body: Optional[dict] = None) -> requests.Response:
        headers = {"X-Auth-Token": token}
        return requests.request(method, self.target.auth_url + path, json=body, headers=headers,
                                timeout=HTTP_TIMEOUT)

    def ok(self, method: str, path: str, body: Optional[dict] = None, want: int = 201) -> dict:
        r = self.req(method, path, self.admin, body)
        assert r.status_code == want, f"{self.target}: {method} {path} -> {r.status_code} {r.text[:400]}"
        return r.json() if r.content else {}

    def token(self, username: str, scope: dict, domain: str = "default") -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": username, "domain": {"id": domain}, "password": PW}}}, "scope": scope}}
        r = requests.post(self.target.auth_url + "/auth/tokens", json=body, timeout=HTTP_TIMEOUT)
        assert r.status_code == 201, f"{self.target}: token for {username} -> {r.status_code} {r.text[:400]}"
        return r.headers["X-Subject-Token"]


def build_world(t: Target) -> World:
    w = World(t)
    w.admin, _ = t.issue(PROJECT_SCOPE)
    ids = w.ids
    for name in ("admin", "manager", "member", "reader"):
        roles = w.ok("GET", f"/roles?name={name}", want=200)["roles"]
        assert roles, f"{t}: no role {name}"
        ids[f"{name}_role"] = roles[0]["id"]
    ids["default"] = "default"
    ids["dx"] = w.ok("POST", "/domains", {"domain": {"name": "review-dx"}})["domain"]["id"]
    for key, name, dom in (("own", "review-own", "default"), ("other", "review-other", "default"),
                           ("dxp", "review-dxp", ids["dx"])):
        ids[key] = w.ok("POST", "/projects", {"project": {"name": name, "domain_id": dom}})["project"]["id"]
    for key, name, dom in (("alice", "review-alice", "default"), ("rita", "review-rita", "default"),
                           ("victim", "review-victim", "default"), ("dmgr", "review-dmgr", ids["dx"])):
        ids[key] = w.ok("POST", "/users", {"user": {"name": name, "domain_id": dom,
                                                    "password": PW}})["user"]["id"]
    w.ok("PUT", f"/projects/{ids['own']}/users/{ids['alice']}/roles/{ids['member_role']}", want=204)
    w.ok("PUT", f"/projects/{ids['own']}/users/{ids['rita']}/roles/{ids['reader_role']}", want=204)
    w.ok("PUT", f"/projects/{ids['other']}/users/{ids['victim']}/roles/{ids['member_role']}", want=204)
    w.ok("PUT", f"/domains/{ids['dx']}/users/{ids['dmgr']}/roles/{ids['manager_role']}", want=204)
    ids["rand"] = RAND
    w.tokens = {
        "sysadmin": t.issue(SYSTEM_SCOPE)[0],
        "member": w.token("review-alice", {"project": {"id": ids["own"]}}),
        "reader": w.token("review-rita", {"project": {"id": ids["own"]}}),
        "dmanager": w.token("review-dmgr", {"domain": {"id": ids["dx"]}}, domain=ids["dx"]),
    }
    return w


@pytest.fixture(scope="module")
def worlds(baton: Target, keystone: Target) -> dict[str, World]:
    return {"baton": build_world(baton), "keystone": build_world(keystone)}


# (persona, method, path template, body). Templates name the ids of build_world. Only requests
# that cannot change anything are sent by the personas policy allows (nonexistent targets, reads).
PERSONAS = ("sysadmin", "member", "reader", "dmanager")
DESC = {"project": {"description": "probe"}}
CASES: list[tuple[str, str, str, Optional[dict]]] = []
for who in PERSONAS:
    for p in ("own", "other", "dxp", "rand"):
        CASES.append((who, "GET", f"/projects/{{{p}}}", None))
        CASES.append((who, "GET", f"/projects/{{{p}}}/tags", None))
        CASES.append((who, "GET", f"/projects/{{{p}}}/tags/nosuchtag", None))
    CASES += [
        (who, "HEAD", "/projects/{rand}", None),
        (who, "PATCH", "/projects/{rand}", DESC),
        (who, "DELETE", "/projects/{rand}", None),
        (who, "PUT", "/projects/{rand}/tags", {"tags": ["a"]}),
        (who, "DELETE", "/projects/{rand}/tags", None),
        (who, "PUT", "/projects/{rand}/tags/t1", None),
        (who, "DELETE", "/projects/{rand}/tags/t1", None),
        (who, "PATCH", "/domains/{rand}", {"domain": {"description": "probe"}}),
        (who, "DELETE", "/domains/{rand}", None),
    ]
    for d in ("default", "dx", "rand"):
        CASES.append((who, "GET", f"/domains/{{{d}}}", None))
    # Grants: check, list, grant and revoke with each part missing in turn.
    for tmpl in (
        "/projects/{other}/users/{rand}/roles/{member_role}",
        "/projects/{other}/users/{victim}/roles/{member_role}",
        "/projects/{other}/users/{alice}/roles/{member_role}",
        "/projects/{own}/users/{alice}/roles/{member_role}",
        "/projects/{rand}/users/{alice}/roles/{member_role}",
        "/projects/{own}/users/{alice}/roles/{rand}",
        "/projects/{dxp}/users/{rand}/roles/{member_role}",
        "/projects/{dxp}/users/{dmgr}/roles/{member_role}",
        "/projects/{other}/groups/{rand}/roles/{member_role}",
        "/domains/{rand}/users/{alice}/roles/{member_role}",
        "/domains/{dx}/users/{rand}/roles/{member_role}",
        "/domains/{dx}/users/{dmgr}/roles/{reader_role}",
        "/system/users/{rand}/roles/{member_role}",
        "/system/users/{alice}/roles/{member_role}",
        "/system/users/{alice}/roles/{rand}",
        "/OS-INHERIT/projects/{rand}/users/{alice}/roles/{member_role}/inherited_to_projects",
        "/OS-INHERIT/domains/{rand}/users/{alice}/roles/{member_role}/inherited_to_projects",
    ):
        CASES.append((who, "GET", tmpl, None))
        CASES.append((who, "HEAD", tmpl, None))
    for tmpl in (
        "/projects/{other}/users/{rand}/roles",
        "/projects/{rand}/users/{alice}/roles",
        "/domains/{rand}/users/{alice}/roles",
        "/domains/{dx}/users/{rand}/roles",
        "/system/users/{rand}/roles",
    ):
        CASES.append((who, "GET", tmpl, None))
    # Writes only where something is missing (nothing can change).
    for tmpl in (
        "/projects/{other}/users/{rand}/roles/{member_role}",
        "/projects/{rand}/users/{alice}/roles/{member_role}",
        "/projects/{other}/users/{victim}/roles/{rand}",
        "/domains/{rand}/users/{alice}/roles/{member_role}",
        "/system/users/{rand}/roles/{member_role}",
    ):
        CASES.append((who, "PUT", tmpl, None))
        CASES.append((who, "DELETE", tmpl, None))
# Denied personas on existing targets (refused, so nothing changes either).
for who in ("member", "reader"):
    CASES += [
        (who, "PATCH", "/projects/{other}", DESC),
        (who, "DELETE", "/projects/{other}", None),
        (who, "PUT", "/projects/{other}/tags/t1", None),
        (who, "PATCH", "/domains/{dx}", {"domain": {"description": "probe"}}),
        (who, "PUT", "/projects/{other}/users/{alice}/roles/{member_role}", None),
        (who, "DELETE", "/projects/{other}/users/{victim}/roles/{member_role}", None),
    ]

# Where Keystone 30 answers 404 before asking policy (its plain and system grant routes look the
# role, actor and target up first; PATCH/DELETE /v3/domains/{id} look the domain up first). Every
# persona here but the system admin is refused by policy on all of these, so Baton answers 403.
# (The domain manager too, even in its own domain: policy cannot place a missing actor there.)
KEYSTONE_LEAKS = [
    ("PUT", "/projects/{other}/users/{rand}/roles/{member_role}"),
    ("PUT", "/projects/{rand}/users/{alice}/roles/{member_role}"),
    ("PUT", "/projects/{other}/users/{victim}/roles/{rand}"),
    ("DELETE", "/projects/{rand}/users/{alice}/roles/{member_role}"),
    ("DELETE", "/projects/{other}/users/{victim}/roles/{rand}"),
    ("GET", "/projects/{other}/users/{rand}/roles/{member_role}"),
    ("HEAD", "/projects/{other}/users/{rand}/roles/{member_role}"),
    ("GET", "/projects/{rand}/users/{alice}/roles/{member_role}"),
    ("HEAD", "/projects/{rand}/users/{alice}/roles/{member_role}"),
    ("GET", "/projects/{own}/users/{alice}/roles/{rand}"),
    ("HEAD", "/projects/{own}/users/{alice}/roles/{rand}"),
    ("GET", "/projects/{dxp}/users/{rand}/roles/{member_role}"),
    ("HEAD", "/projects/{dxp}/users/{rand}/roles/{member_role}"),
    ("GET", "/projects/{other}/groups/{rand}/roles/{member_role}"),
    ("HEAD", "/projects/{other}/groups/{rand}/roles/{member_role}"),
    ("GET", "/domains/{rand}/users/{alice}/roles/{member_role}"),
    ("HEAD", "/domains/{rand}/users/{alice}/roles/{member_role}"),
    ("PUT", "/domains/{rand}/users/{alice}/roles/{member_role}"),
    ("DELETE", "/domains/{rand}/users/{alice}/roles/{member_role}"),
    ("GET", "/domains/{dx}/users/{rand}/roles/{member_role}"),
    ("HEAD", "/domains/{dx}/users/{rand}/roles/{member_role}"),
    ("GET", "/projects/{other}/users/{rand}/roles"),
    ("GET", "/projects/{rand}/users/{alice}/roles"),
    ("GET", "/domains/{rand}/users/{alice}/roles"),
    ("GET", "/domains/{dx}/users/{rand}/roles"),
    ("GET", "/system/users/{rand}/roles/{member_role}"),
    ("HEAD", "/system/users/{rand}/roles/{member_role}"),
    ("PUT", "/system/users/{rand}/roles/{member_role}"),
    ("GET", "/system/users/{alice}/roles/{rand}"),
    ("HEAD", "/system/users/{alice}/roles/{rand}"),
    ("GET", "/system/users/{rand}/roles"),
    ("PATCH", "/domains/{rand}"),
    ("DELETE", "/domains/{rand}"),
]


def keystone_leaks(who: str, method: str, tmpl: str) -> bool:
    """The requests where Keystone answers 404 to a caller its policy refuses (every persona
    but the system admin is refused every one of them)."""
    return who != "sysadmin" and (method, tmpl) in KEYSTONE_LEAKS


def ask(w: World, who: str, method: str, tmpl: str, body: Optional[dict]) -> int:
    path = tmpl.format(**w.ids)
    return w.req(method, path, w.tokens[who], body).status_code


def test_policy_answers_before_existence(worlds: dict[str, World]) -> None:
    b, k = worlds["baton"], worlds["keystone"]
    wrong = []
    for who, method, tmpl, body in CASES:
        got_k = ask(k, who, method, tmpl, body)
        got_b = ask(b, who, method, tmpl, body)
        line = f"{who:9} {method:6} {tmpl}: keystone {got_k}, baton {got_b}"
        if keystone_leaks(who, method, tmpl):
            # Asserted on both sides, so that a change in Keystone shows here too.
            if (got_k, got_b) != (404, 403):
                wrong.append(f"{line} (want keystone 404 before policy, baton 403)")
        elif got_b != got_k:
            wrong.append(line)
    assert not wrong, "unexpected statuses:\n" + "\n".join(wrong)


def test_nonexistent_project_is_403_to_a_member_and_404_to_an_admin(worlds: dict[str, World]) -> None:
    """The review's reproduction, spelled out."""
    for w in worlds.values():
        assert ask(w, "member", "GET", "/projects/{other}", None) == 403, w.target
        assert ask(w, "member", "GET", "/projects/{rand}", None) == 403, w.target
        assert ask(w, "sysadmin", "GET", "/projects/{rand}", None) == 404, w.target
        assert ask(w, "reader", "GET", "/domains/{rand}", None) == 403, w.target
    b = worlds["baton"]
    assert ask(b, "member", "GET", "/projects/{other}/users/{rand}/roles/{member_role}", None) == 403
    assert ask(b, "member", "GET", "/projects/{other}/users/{alice}/roles/{member_role}", None) == 403


# ----- #12: body fields that are columns ------------------------------------------------------------

SPOOF = {"is_domain": False, "domain_id": "default", "parent_id": "x", "id": "chosen" + "0" * 26}


def _shape(v: dict, ids: set) -> dict:
    """A rendered project or domain with generated ids replaced by a marker."""
    out = {}
    for key, val in v.items():
        if key == "links":
            continue
        out[key] = "<generated>" if isinstance(val, str) and val in ids else val
    return out


def test_domain_create_ignores_column_fields_in_the_body(worlds: dict[str, World]) -> None:
    shapes = {}
    for name, w in worlds.items():
        r = w.req("POST", "/domains", w.admin, {"domain": {"name": "dspoof", "ticket": "OPS-1", **SPOOF}})
        assert r.status_code == 201, f"{w.target}: {r.status_code} {r.text[:400]}"
        d = r.json()["domain"]
        assert d["id"] != SPOOF["id"], w.target
        shown = w.req("GET", f"/domains/{d['id']}", w.admin).json()["domain"]
        assert shown == d, f"{w.target}: GET differs from POST: {shown} vs {d}"
        listed = [x for x in w.req("GET", "/domains?name=dspoof", w.admin).json()["domains"]]
        assert listed == [d], f"{w.target}: {listed}"
        as_project = w.req("GET", f"/projects?is_domain=true&name=dspoof", w.admin).json()["projects"]
        shapes[name] = (_shape(d, {d["id"]}), [_shape(p, {d["id"]}) for p in as_project])
    assert shapes["baton"] == shapes["keystone"]


def test_domain_update_ignores_column_fields_in_the_body(worlds: dict[str, World]) -> None:
    shapes = {}
    for name, w in worlds.items():
        d = w.ok("POST", "/domains", {"domain": {"name": "dspoof-upd"}})["domain"]
        body = {"domain": {k: v for k, v in SPOOF.items() if k != "id"}}
        r = w.req("PATCH", f"/domains/{d['id']}", w.admin, body)
        shown = w.req("GET", f"/domains/{d['id']}", w.admin).json()["domain"]
        shapes[name] = (r.status_code, _shape(r.json().get("domain", r.json()), {d["id"]}),
                        _shape(shown, {d["id"]}))
    assert shapes["baton"] == shapes["keystone"]


def test_project_create_ignores_a_body_id(worlds: dict[str, World]) -> None:
    shapes = {}
    for name, w in worlds.items():
        r = w.req("POST", "/projects", w.admin, {"project": {"name": "pspoof", "id": SPOOF["id"]}})
        assert r.status_code == 201, f"{w.target}: {r.status_code} {r.text[:400]}"
        p = r.json()["project"]
        assert p["id"] != SPOOF["id"], w.target
        shown = w.req("GET", f"/projects/{p['id']}", w.admin).json()["project"]
        shapes[name] = (_shape(p, {p["id"]}), _shape(shown, {p["id"]}))
    assert shapes["baton"] == shapes["keystone"]


def test_project_as_domain_create(worlds: dict[str, World]) -> None:
    """POST /v3/projects with is_domain: a body id is ignored; a parent or domain is refused."""
    shapes = {}
    for name, w in worlds.items():
        r = w.req("POST", "/projects", w.admin,
                  {"project": {"name": "pdspoof", "is_domain": True, "id": SPOOF["id"], "ticket": "T-2"}})
        assert r.status_code == 201, f"{w.target}: {r.status_code} {r.text[:400]}"
        p = r.json()["project"]
        assert p["id"] != SPOOF["id"], w.target
        shown = w.req("GET", f"/domains/{p['id']}", w.admin).json()["domain"]
        listed = w.req("GET", "/projects?is_domain=true&name=pdspoof", w.admin).json()["projects"]
        got = [201, _shape(p, {p["id"]}), _shape(shown, {p["id"]}), [_shape(x, {p["id"]}) for x in listed]]
        for extra in ({"parent_id": "default"}, {"domain_id": "default"}, {"parent_id": "x", "domain_id": "y"},
                      {"parent_id": None, "domain_id": None}):
            body = {"project": {"name": "pdspoof2-" + "-".join(extra), "is_domain": True, **extra}}
            r = w.req("POST", "/projects", w.admin, body)
            got.append((extra, r.status_code, r.json()["error"]["message"] if r.status_code >= 400
                        else sorted(r.json()["project"])))
        shapes[name] = got
    assert shapes["baton"] == shapes["keystone"]


def test_domain_create_with_explicit_domain_id(worlds: dict[str, World]) -> None:
    """Keystone's `explicit_domain_id` chooses the id and is not shown back as an attribute."""
    chosen = uuid.uuid4().hex
    bads = (chosen.upper(), str(uuid.uuid4()), "not-a-uuid")
    shapes = {}
    for name, w in worlds.items():
        r = w.req("POST", "/domains", w.admin, {"domain": {"name": "dexplicit", "explicit_domain_id": chosen}})
        got = [r.status_code, r.json()]
        for bad in bads:
            r = w.req("POST", "/domains", w.admin,
                      {"domain": {"name": "dexplicit-bad", "explicit_domain_id": bad}})
            got.append((bad, r.status_code, r.json()["error"]["message"]))
        r = w.req("POST", "/domains", w.admin, {"domain": {"name": "dexplicit-again", "explicit_domain_id": chosen}})
        got.append(("again", r.status_code))
        got[1] = _shape(got[1]["domain"], set())
        shapes[name] = got
    assert shapes["baton"] == shapes["keystone"]
    assert shapes["baton"][1]["id"] == chosen
