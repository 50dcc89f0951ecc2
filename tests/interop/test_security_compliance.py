"""`[security_compliance] lockout_failure_attempts` / `lockout_duration`, `password_regex` /
`password_regex_description`, `password_expires_days`, `change_password_upon_first_use`,
`unique_last_password_count`, `minimum_password_age` and `disable_user_account_days_inactive`,
asked of Baton and the
real Keystone 30 with the same options and the same requests: the statuses and error messages
of every step must match (failures counted, a success resetting the count, the lockout refusing
the right password with the generic 401, its end after `lockout_duration`, re-enabling the user
and `ignore_lockout_failure_attempts` lifting it).
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests

from conftest import start_configured_pair
from interop_util import HTTP_TIMEOUT, PROJECT_SCOPE, Target

LOCKOUT_DURATION = 3  # seconds
RIGHT = "R1ght-Passw0rd-lk"
WRONG = "Wr0ng-Passw0rd-lk"


LOCKOUT_AND_REGEX = {"security_compliance": {
    "lockout_failure_attempts": "2",
    "lockout_duration": str(LOCKOUT_DURATION),
    "password_regex": r"^(?=.*\d)(?=.*[a-zA-Z]).{7,}$",
    "password_regex_description": "seven or more characters, a digit and a letter"}}
EXPIRY = {"security_compliance": {"password_expires_days": "1", "change_password_upon_first_use": "true"}}
INACTIVITY = {"security_compliance": {"disable_user_account_days_inactive": "30"}}
HISTORY = {"security_compliance": {"unique_last_password_count": "3", "minimum_password_age": "1"}}


def configured_pair(tmp_path_factory, template: Path, name: str, conf: dict) -> Iterator[tuple[Target, Target]]:
    pair = start_configured_pair(tmp_path_factory.mktemp(name), template, conf)
    yield pair
    for t in pair:
        t.server.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, keystone_template) -> Iterator[tuple[Target, Target]]:
    yield from configured_pair(tmp_path_factory, keystone_template, "lockout", LOCKOUT_AND_REGEX)


@pytest.fixture(scope="module")
def history_servers(tmp_path_factory, keystone_template) -> Iterator[tuple[Target, Target]]:
    yield from configured_pair(tmp_path_factory, keystone_template, "history", HISTORY)


@pytest.fixture(scope="module")
def expiry_servers(tmp_path_factory, keystone_template) -> Iterator[tuple[Target, Target]]:
    yield from configured_pair(tmp_path_factory, keystone_template, "expiry", EXPIRY)


@pytest.fixture(scope="module")
def inactivity_servers(tmp_path_factory, keystone_template) -> Iterator[tuple[Target, Target]]:
    yield from configured_pair(tmp_path_factory, keystone_template, "inactivity", INACTIVITY)


def call(t: Target, method: str, path: str, token: Optional[str], body: Optional[dict] = None) -> tuple:
    headers = {"X-Auth-Token": token} if token else {}
    r = requests.request(method, t.auth_url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT)
    message = r.json()["error"]["message"] if r.status_code >= 400 and r.content else None
    return r.status_code, message, (r.json() if r.status_code < 300 and r.content else None)


def login(t: Target, name: str, password: str) -> tuple:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": password}}}}}
    status, message, _ = call(t, "POST", "/auth/tokens", None, body)
    return status, message


def scenario(t: Target) -> list:
    admin, _ = t.issue(PROJECT_SCOPE)
    out: list = []
    status, _, body = call(t, "POST", "/users", admin, {"user": {"name": "lk-user", "password": RIGHT}})
    assert status == 201, status
    uid = body["user"]["id"]
    out.append(("wrong once", login(t, "lk-user", WRONG)))
    out.append(("right resets", login(t, "lk-user", RIGHT)))
    out.append(("wrong 1", login(t, "lk-user", WRONG)))
    out.append(("wrong 2", login(t, "lk-user", WRONG)))
    out.append(("right while locked", login(t, "lk-user", RIGHT)))
    out.append(("wrong while locked", login(t, "lk-user", WRONG)))
    time.sleep(LOCKOUT_DURATION + 1.2)
    out.append(("right after the lockout", login(t, "lk-user", RIGHT)))
    login(t, "lk-user", WRONG)
    login(t, "lk-user", WRONG)
    out.append(("locked again", login(t, "lk-user", RIGHT)))
    for enabled in (False, True):
        out.append((f"enabled={enabled}", call(t, "PATCH", f"/users/{uid}", admin,
                                               {"user": {"enabled": enabled}})[:2]))
    out.append(("right after re-enabling", login(t, "lk-user", RIGHT)))
    out.append(("exempt", call(t, "PATCH", f"/users/{uid}", admin,
                               {"user": {"options": {"ignore_lockout_failure_attempts": True}}})[:2]))
    for _ in range(3):
        login(t, "lk-user", WRONG)
    out.append(("right when exempt", login(t, "lk-user", RIGHT)))
    out.append(("unknown user", login(t, "lk-nobody", WRONG)))
    return out


def test_lockout_matches_keystone(servers) -> None:
    keystone, baton = servers
    want = scenario(keystone)
    got = scenario(baton)
    diff = [f"{w}  !=  {g}" for w, g in zip(want, got) if w != g]
    assert not diff and len(want) == len(got), "keystone != baton:\n" + "\n".join(diff)
    assert ("right while locked", (401, "The request you have made requires authentication.")) in want
    assert ("right after the lockout", (201, None)) in want


def regex_scenario(t: Target) -> list:
    admin, _ = t.issue(PROJECT_SCOPE)
    out: list = []
    for label, pw in (("no digit", "abcdefgh"), ("too short", "ab1"), ("good", "abcdefg1")):
        out.append((f"create {label}", call(t, "POST", "/users", admin,
                                            {"user": {"name": f"rx-{label}", "password": pw}})[:2]))
    status, _, body = call(t, "POST", "/users", admin, {"user": {"name": "rx-paths", "password": "start-pw1"}})
    uid = body["user"]["id"]
    out.append(("update weak", call(t, "PATCH", f"/users/{uid}", admin, {"user": {"password": "weakweak"}})[:2]))
    out.append(("update good", call(t, "PATCH", f"/users/{uid}", admin, {"user": {"password": "better-pw2"}})[:2]))
    out.append(("change weak", call(t, "POST", f"/users/{uid}/password", None,
                                    {"user": {"original_password": "better-pw2", "password": "weakweak"}})[:2]))
    out.append(("change good", call(t, "POST", f"/users/{uid}/password", None,
                                    {"user": {"original_password": "better-pw2", "password": "best-pw33"}})[:2]))
    out.append(("user without password", call(t, "POST", "/users", admin, {"user": {"name": "rx-none"}})[:2]))
    return out


def test_password_regex_matches_keystone(servers) -> None:
    keystone, baton = servers
    want = regex_scenario(keystone)
    got = regex_scenario(baton)
    diff = [f"{w}  !=  {g}" for w, g in zip(want, got) if w != g]
    assert not diff and len(want) == len(got), "keystone != baton:\n" + "\n".join(diff)
    assert ("create no digit", (400, "The password does not match the requirements: seven or more "
                                      "characters, a digit and a letter.")) in want


def expiry_scenario(t: Target) -> list:
    """User ids differ between the servers: messages are compared with the id replaced."""
    admin, _ = t.issue(PROJECT_SCOPE)
    out: list = []

    def masked(result: tuple, uid: str) -> tuple:
        status, message = result[0], result[1]
        return status, message.replace(uid, "<id>") if message else message

    status, _, body = call(t, "POST", "/users", admin, {"user": {"name": "ex-user", "password": RIGHT}})
    uid = body["user"]["id"]
    out.append(("created expired", body["user"]["password_expires_at"] is not None))
    out.append(("first login", masked(login(t, "ex-user", RIGHT), uid)))
    out.append(("change", call(t, "POST", f"/users/{uid}/password", None,
                               {"user": {"original_password": RIGHT, "password": WRONG}})[:2]))
    out.append(("login after change", login(t, "ex-user", WRONG)))
    expires = call(t, "GET", f"/users/{uid}", admin)[2]["user"]["password_expires_at"]
    out.append(("expires in whole seconds", expires.endswith(".000000")))
    out.append(("admin resets", call(t, "PATCH", f"/users/{uid}", admin, {"user": {"password": RIGHT}})[0]))
    out.append(("login after reset", masked(login(t, "ex-user", RIGHT), uid)))
    out.append(("exempt from expiry", call(t, "PATCH", f"/users/{uid}", admin,
                                           {"user": {"options": {"ignore_password_expiry": True}}})[0]))
    out.append(("expired but exempt", login(t, "ex-user", RIGHT)))
    status, _, body = call(t, "POST", "/users", admin, {"user": {
        "name": "ex-exempt", "password": RIGHT, "options": {"ignore_change_password_upon_first_use": True}}})
    out.append(("exempt create", status, body["user"]["password_expires_at"] is not None))
    out.append(("exempt first login", masked(login(t, "ex-exempt", RIGHT), body["user"]["id"])))
    return out


def test_password_expiry_matches_keystone(expiry_servers) -> None:
    keystone, baton = expiry_servers
    want = expiry_scenario(keystone)
    got = expiry_scenario(baton)
    # One deliberate difference: Keystone checks `ignore_change_password_upon_first_use` before
    # it stores the options of a user being created, so the option given at creation does not
    # exempt the first login there (it does once stored, e.g. for a later reset). Baton honours
    # it as documented.
    assert want[-1] == ("exempt first login", (401, "The password is expired and needs to be changed for user: <id>."))
    assert got[-1] == ("exempt first login", (201, None))
    want, got = want[:-1], got[:-1]
    diff = [f"{w}  !=  {g}" for w, g in zip(want, got) if w != g]
    assert not diff and len(want) == len(got), "keystone != baton:\n" + "\n".join(diff)
    assert ("first login", (401, "The password is expired and needs to be changed for user: <id>.")) in want


def history_scenario(t: Target) -> list:
    admin, _ = t.issue(PROJECT_SCOPE)
    pws = ["Hist0ry-One-aa", "Hist0ry-Two-bb", "Hist0ry-Three-cc", "Hist0ry-Four-dd"]
    status, _, body = call(t, "POST", "/users", admin, {"user": {"name": "hi-user", "password": pws[0]}})
    uid = body["user"]["id"]

    def change(old: str, new: str) -> tuple:
        return call(t, "POST", f"/users/{uid}/password", None,
                    {"user": {"original_password": old, "password": new}})[:2]

    out: list = [("change an admin-set password", change(pws[0], pws[1]))]
    out.append(("change within the minimum age", change(pws[1], pws[2])))
    out.append(("admin reset", call(t, "PATCH", f"/users/{uid}", admin, {"user": {"password": pws[2]}})[0]))
    out.append(("reuse the first", change(pws[2], pws[0])))
    out.append(("reuse the current", change(pws[2], pws[2])))
    out.append(("a new one", change(pws[2], pws[3])))
    return out


def test_password_history_and_age_match_keystone(history_servers) -> None:
    keystone, baton = history_servers
    want = history_scenario(keystone)
    got = history_scenario(baton)
    diff = [f"{w}  !=  {g}" for w, g in zip(want, got) if w != g]
    assert not diff and len(want) == len(got), "keystone != baton:\n" + "\n".join(diff)
    assert want[1][1][0] == 400 and want[3][1][0] == 400, want


def inactivity_scenario(t: Target) -> list:
    """The database is written behind the server's back, as days passing would: the rule is read
    from `last_active_at` (or `created_at`) at every request, by both implementations."""
    admin, _ = t.issue(PROJECT_SCOPE)
    today = datetime.datetime.now(datetime.timezone.utc).date()

    def sql(statement: str, *args) -> list:
        con = sqlite3.connect(t.db_path, timeout=10)
        try:
            rows = con.execute(statement, args).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def days_ago(uid: str, days: int, column: str = "last_active_at") -> None:
        value = today - datetime.timedelta(days=days)
        if column == "created_at":
            sql('UPDATE "user" SET created_at = ?, last_active_at = NULL WHERE id = ?', f"{value} 00:00:00", uid)
        else:
            sql('UPDATE "user" SET last_active_at = ? WHERE id = ?', value.isoformat(), uid)

    def enabled(uid: str) -> object:
        return call(t, "GET", f"/users/{uid}", admin)[2]["user"]["enabled"]

    def masked(result: tuple, uid: str) -> tuple:
        status, message = result[0], result[1]
        return status, message.replace(uid, "<id>") if message else message

    status, _, body = call(t, "POST", "/users", admin, {"user": {"name": "in-user", "password": RIGHT}})
    uid = body["user"]["id"]
    out: list = [("created, last_active_at", sql('SELECT last_active_at FROM "user" WHERE id = ?', uid)
                  == [(today.isoformat(),)])]
    days_ago(uid, 3)
    out.append(("login", login(t, "in-user", RIGHT)))
    out.append(("login records the day", sql('SELECT last_active_at FROM "user" WHERE id = ?', uid)
                == [(today.isoformat(),)]))
    days_ago(uid, 29)
    out.append(("29 days", login(t, "in-user", RIGHT)))
    days_ago(uid, 30)
    out.append(("30 days", masked(login(t, "in-user", RIGHT), uid), enabled(uid)))
    out.append(("the column stays", sql('SELECT enabled FROM "user" WHERE id = ?', uid)))
    out.append(("listed as", [u["enabled"] for u in call(t, "GET", "/users?name=in-user", admin)[2]["users"]]))
    # Keystone writes the shown `enabled` back on a PATCH: the option does not revive the user.
    out.append(("exempted while inactive", call(t, "PATCH", f"/users/{uid}", admin,
                                                {"user": {"options": {"ignore_user_inactivity": True}}})[0],
                enabled(uid), login(t, "in-user", RIGHT)))
    out.append(("re-enabled", call(t, "PATCH", f"/users/{uid}", admin, {"user": {"enabled": True}})[0],
                enabled(uid), login(t, "in-user", RIGHT)))
    days_ago(uid, 90)
    out.append(("exempt, 90 days", enabled(uid), login(t, "in-user", RIGHT)))
    call(t, "PATCH", f"/users/{uid}", admin, {"user": {"options": {"ignore_user_inactivity": None}}})
    days_ago(uid, 90)
    out.append(("not exempt any more", enabled(uid)))
    call(t, "PATCH", f"/users/{uid}", admin, {"user": {"enabled": True}})
    days_ago(uid, 40, column="created_at")
    out.append(("never logged in, created 40 days ago", enabled(uid), login(t, "in-user", RIGHT)[0]))
    return out


def test_inactive_users_match_keystone(inactivity_servers) -> None:
    keystone, baton = inactivity_servers
    want = inactivity_scenario(keystone)
    got = inactivity_scenario(baton)
    diff = [f"{w}  !=  {g}" for w, g in zip(want, got) if w != g]
    assert not diff and len(want) == len(got), "keystone != baton:\n" + "\n".join(diff)
    assert want[4][2] is False and want[0][1] is True, want
