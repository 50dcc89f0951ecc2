"""Request limits: the same hostile requests to Keystone 30 (under gunicorn) and to Baton, one
database between them, compared by status and error shape.

Matched: the body size limit (413, ``[oslo_middleware] max_request_body_size``), name and id
lengths (Keystone's column sizes: 255 for user and role names, 64 for project, domain and group
names and for ids), project tags (at most 80, each at most 255 characters), malformed JSON (a raw
NUL, invalid UTF-8: 400), control characters other than NUL inside JSON strings (data to Keystone: stored and shown
back), NUL in paths and queries, header fields over 8190 bytes and more than 100
of them (431, the limits of Keystone's WSGI server; Keystone sets none itself).

Deliberate differences, asserted as such: Baton's 413 and 431 bodies are Keystone's JSON error
(Keystone's come from oslo.middleware and gunicorn as HTML pages), and Baton refuses JSON nested
deeper than 128 levels with 400, where Keystone accepts ~1000 levels and answers 500 beyond;
Baton refuses a NUL inside any string of a body with 400 on every database, where Keystone stores
it on SQLite and MariaDB (201, and 401 for a login) and answers 500 on PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from conftest import Pair, start_pair
from interop_util import Target, issue_token

HTTP_TIMEOUT = 60


@pytest.fixture(scope="module")
def limits_pair(tmp_path_factory) -> Iterator[Pair]:
    p = start_pair(Path(tmp_path_factory.mktemp("limits")), "keystone")
    for t in p.both():
        t.admin = issue_token(t.auth_url)[0]  # type: ignore[attr-defined]
    yield p
    p.stop()


def send(t: Target, method: str, path: str, raw=None, headers=None) -> requests.Response:
    h = {"X-Auth-Token": t.admin, "Content-Type": "application/json"}  # type: ignore[attr-defined]
    h.update(headers or {})
    if isinstance(raw, str):
        raw = raw.replace("UNIQUE", uuid.uuid4().hex[:10]).encode()
    return requests.request(method, f"{t.auth_url}/{path}", data=raw, headers=h, timeout=HTTP_TIMEOUT)


def both(p: Pair, method: str, path: str, raw=None, headers=None) -> tuple[requests.Response, requests.Response]:
    return send(p.keystone, method, path, raw, headers), send(p.baton, method, path, raw, headers)


def json_error(r: requests.Response) -> dict:
    body = r.json()
    err = body["error"]
    assert err["code"] == r.status_code, body
    assert isinstance(err["message"], str) and err["message"], body
    assert isinstance(err["title"], str) and err["title"], body
    return err


def same(p: Pair, method: str, path: str, raw=None, headers=None) -> int:
    """Both answer with one status; errors in Keystone's JSON shape on both. Returns it."""
    k, b = both(p, method, path, raw, headers)
    assert k.status_code == b.status_code, f"{method} {path}: keystone {k.status_code} {k.text[:300]} / baton {b.status_code} {b.text[:300]}"
    if k.status_code >= 400:
        json_error(k)
        json_error(b)
    return k.status_code


def obj(member: str, **fields) -> str:
    return json.dumps({member: fields})


def nested(depth: int) -> str:
    return "[" * depth + '"x"' + "]" * depth


def test_body_size(limits_pair):
    big = obj("user", name="big-UNIQUE", description="d" * 120_000)
    k, b = both(limits_pair, "POST", "users", big)
    assert k.status_code == b.status_code == 413
    assert "Request is too large" in k.text  # oslo.middleware's HTML page
    assert json_error(b)["message"] == "Request is too large."
    assert same(limits_pair, "POST", "users", obj("user", name="fits-UNIQUE", description="d" * 100_000)) == 201


def test_json_depth(limits_pair):
    shallow = '{"project": {"name": "shallow-UNIQUE", "x": %s}}' % nested(100)
    assert same(limits_pair, "POST", "projects", shallow) == 201
    # Baton is stricter on purpose: 128 levels at most (400), bounded stack and time.
    k, b = both(limits_pair, "POST", "projects", '{"project": {"name": "deep-UNIQUE", "x": %s}}' % nested(200))
    assert (k.status_code, b.status_code) == (201, 400)
    assert json_error(b)["message"].startswith("Malformed request body")
    k, b = both(limits_pair, "POST", "projects", '{"project": {"name": "deeper-UNIQUE", "x": %s}}' % nested(5000))
    assert (k.status_code, b.status_code) == (500, 400)
    k, b = both(limits_pair, "POST", "auth/tokens", '{"auth": %s}' % nested(3000))
    assert (k.status_code, b.status_code) == (500, 400)


@pytest.mark.parametrize("path,member,longest", [
    ("users", "user", 255), ("roles", "role", 255),
    ("projects", "project", 64), ("domains", "domain", 64), ("groups", "group", 64),
])
def test_name_lengths(limits_pair, path, member, longest):
    # Unique names of exactly `longest` characters on each server (one database).
    k_name = ("k" + uuid.uuid4().hex).ljust(longest, "n")
    b_name = ("b" + uuid.uuid4().hex).ljust(longest, "n")
    k = send(limits_pair.keystone, "POST", path, obj(member, name=k_name))
    b = send(limits_pair.baton, "POST", path, obj(member, name=b_name))
    assert k.status_code == b.status_code == 201, (k.text[:300], b.text[:300])
    assert same(limits_pair, "POST", path, obj(member, name="x" * (longest + 1))) == 400


def test_id_length(limits_pair):
    assert same(limits_pair, "POST", "users", obj("user", name="u-UNIQUE", domain_id="d" * 64)) == 404
    assert same(limits_pair, "POST", "users", obj("user", name="u-UNIQUE", domain_id="d" * 65)) == 400


def test_tags(limits_pair):
    assert same(limits_pair, "POST", "projects", obj("project", name="t-UNIQUE", tags=[f"t{i}" for i in range(80)])) == 201
    assert same(limits_pair, "POST", "projects", obj("project", name="t-UNIQUE", tags=[f"t{i}" for i in range(81)])) == 400
    assert same(limits_pair, "POST", "projects", obj("project", name="t-UNIQUE", tags=["t" * 255])) == 201
    assert same(limits_pair, "POST", "projects", obj("project", name="t-UNIQUE", tags=["t" * 256])) == 400


def nul_refused(p: Pair, path: str, raw: str, keystone_status: int) -> None:
    k, b = both(p, "POST", path, raw)
    assert (k.status_code, b.status_code) == (keystone_status, 400), (k.text[:200], b.text[:200])
    assert "NUL" in json_error(b)["message"]


def test_nul_and_control_characters(limits_pair):
    for name in ["a\u0001b\u001f-UNIQUE", "a\nb-UNIQUE", "tab\there-UNIQUE"]:
        assert same(limits_pair, "POST", "users", obj("user", name=name, description=name)) == 201
    # Stricter on purpose: Keystone stores a NUL on SQLite (here) and answers 500 on PostgreSQL.
    nul_refused(limits_pair, "users", obj("user", name="a\u0000b-UNIQUE"), 201)
    nul_refused(limits_pair, "projects", obj("project", name="p-UNIQUE", tags=["a\u0000b"]), 201)
    nul_refused(limits_pair, "roles", obj("role", name="r\u0000-UNIQUE"), 201)
    # Not JSON: a raw NUL inside a string, invalid UTF-8.
    assert same(limits_pair, "POST", "users", b'{"user": {"name": "raw\x00nul"}}') == 400
    assert same(limits_pair, "POST", "users", b'{"user": {"name": "\xff\xfe"}}') == 400
    assert same(limits_pair, "GET", "users/%00") == 404
    assert same(limits_pair, "GET", "projects/abc%00def") == 404
    assert same(limits_pair, "GET", "users?name=%00") == 200
    assert same(limits_pair, "GET", "users?name=a%01b") == 200
    for password in ["admin\u0000pass", "adminpass\u0000"]:
        auth = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "admin", "domain": {"id": "default"}, "password": password}}}}}
        nul_refused(limits_pair, "auth/tokens", json.dumps(auth), 401)


def test_header_fields(limits_pair):
    def validate(t: Target, extra: dict) -> requests.Response:
        h = {"X-Subject-Token": t.admin, **extra}  # type: ignore[attr-defined]
        return send(t, "GET", "auth/tokens", headers=h)

    def compare(extra: dict) -> tuple[requests.Response, requests.Response]:
        return validate(limits_pair.keystone, extra), validate(limits_pair.baton, extra)

    k, b = compare({"X-Big": "a" * 8000})
    assert k.status_code == b.status_code == 200
    for extra in ({"X-Big": "a" * 9000}, {"X-Subject-Token": "a" * 20000},
                  {f"X-H{i}": "v" for i in range(120)}):
        k, b = compare(extra)
        assert k.status_code == b.status_code == 431, (k.text[:200], b.text[:200])
    k, b = compare({"X-Big": "a" * 9000})
    assert "Request Header Fields Too Large" in k.text  # gunicorn's HTML page
    assert "8190" in json_error(b)["message"]
