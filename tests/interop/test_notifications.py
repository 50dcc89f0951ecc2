"""Keystone's notifications (`[oslo_messaging_notifications] driver = messagingv2` over the
machine's RabbitMQ), received by the real oslo.messaging notification listener from Baton and
from the real Keystone 30 for the same requests, and compared field by field: the same event
types in the same order, and the same payloads once the ids each server made up are replaced by
what they name (the user, the project, the identity service...) and times by a placeholder;
in both `notification_format`s, `cadf` and `basic`.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from conftest import start_configured_pair
from interop_util import HTTP_TIMEOUT, PROJECT_SCOPE, Target

oslo_config = pytest.importorskip("oslo_config.cfg")
oslo_messaging = pytest.importorskip("oslo_messaging")

RABBIT = "rabbit://guest:guest@127.0.0.1:5672/"
AGENT = "interop-notifications/1"
UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000$")
REQUEST_ID = re.compile(r"^req-[0-9a-f-]{36}$")


class Collector:
    """An oslo.messaging notification endpoint keeping what it is given."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.events.append({"publisher_id": publisher_id, "event_type": event_type, "payload": payload})


def listen(topic: str):
    conf = oslo_config.ConfigOpts()
    conf([], project="interop-notifications")
    transport = oslo_messaging.get_notification_transport(conf, url=RABBIT)
    collector = Collector()
    listener = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(exchange="keystone", topic=topic)], [collector],
        executor="threading")
    listener.start()
    return listener, transport, collector


@pytest.fixture(scope="module", params=["cadf", "basic"])
def servers(request, tmp_path_factory, keystone_template) -> Iterator[tuple]:
    run = uuid.uuid4().hex[:8]
    topics = {"keystone": f"interop-keystone-{run}", "baton": f"interop-baton-{run}"}
    listeners = {name: listen(topic) for name, topic in topics.items()}
    conf = {"DEFAULT": {"transport_url": RABBIT, "notification_opt_out": "",
                        "notification_format": request.param},
            "oslo_messaging_notifications": {"driver": "messagingv2"},
            # A wrong password's failure carries its partial hash, equal on both servers.
            "security_compliance": {"report_invalid_password_hash": "event",
                                    "invalid_password_hash_secret_key": "interop-secret-key",
                                    "invalid_password_hash_max_chars": "12"}}
    pair = start_configured_pair(
        tmp_path_factory.mktemp("notifications"), keystone_template, conf,
        keystone_conf={"DEFAULT": {"default_publisher_id": "oracle"},
                       "oslo_messaging_notifications": {"topics": topics["keystone"]}},
        baton_conf={"DEFAULT": {"default_publisher_id": "baton"},
                    "oslo_messaging_notifications": {"topics": topics["baton"]}})
    yield pair, {name: l[2] for name, l in listeners.items()}, request.param
    for t in pair:
        t.server.stop()
    for listener, transport, _ in listeners.values():
        listener.stop()
        listener.wait()
        transport.cleanup()


def send(t: Target, method: str, path: str, token: str | None = None, body=None) -> requests.Response:
    # A caller's own request id becomes the events' global_request_id.
    headers = {"User-Agent": AGENT, "X-OpenStack-Request-ID": f"req-{uuid.uuid4()}"}
    if token:
        headers["X-Auth-Token"] = token
    return requests.request(method, t.auth_url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT)


def login(t: Target, name: str, password: str) -> requests.Response:
    return send(t, "POST", "/auth/tokens", body={"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "domain": {"id": "default"}, "password": password}}}, "scope": PROJECT_SCOPE}})


def scenario(t: Target) -> dict[str, str]:
    """The same requests on either server; returns what each id names there."""
    r = login(t, "admin", "adminpass")
    assert r.status_code == 201, r.text
    admin = r.headers["X-Subject-Token"]
    body = r.json()["token"]
    names = {body["user"]["id"]: "<admin>", body["project"]["id"]: "<admin-project>"}
    assert login(t, "admin", "not-the-password").status_code == 401
    assert login(t, "nobody-here", "not-the-password").status_code == 401

    def created(path: str, key: str, doc: dict, label: str) -> str:
        r = send(t, "POST", path, admin, {key: doc})
        assert r.status_code == 201, r.text
        names[r.json()[key]["id"]] = label
        return r.json()[key]["id"]

    project = created("/projects", "project", {"name": "notified"}, "<project>")
    assert send(t, "PATCH", f"/projects/{project}", admin, {"project": {"description": "x"}}).status_code == 200
    user = created("/users", "user", {"name": "notified-user", "password": "Notified-Pw-1"}, "<user>")
    group = created("/groups", "group", {"name": "notified-group"}, "<group>")
    assert send(t, "PUT", f"/groups/{group}/users/{user}", admin).status_code == 204
    assert send(t, "DELETE", f"/groups/{group}/users/{user}", admin).status_code == 204
    role = created("/roles", "role", {"name": "notified-role"}, "<role>")
    assert send(t, "PUT", f"/projects/{project}/users/{user}/roles/{role}", admin).status_code == 204
    assert send(t, "DELETE", f"/projects/{project}/users/{user}/roles/{role}", admin).status_code == 204
    assert send(t, "PATCH", f"/users/{user}", admin, {"user": {"description": "y"}}).status_code == 200
    assert send(t, "DELETE", f"/projects/{project}", admin).status_code == 204
    assert send(t, "DELETE", f"/groups/{group}", admin).status_code == 204
    assert send(t, "DELETE", f"/users/{user}", admin).status_code == 204
    assert send(t, "DELETE", f"/roles/{role}", admin).status_code == 204
    services = send(t, "GET", "/services?type=identity", admin).json()["services"]
    names[services[0]["id"]] = "<identity-service>"
    return names


def shape(v, names: dict[str, str]):
    """`v` with ids replaced by what they name, made-up ids and times by placeholders."""
    if isinstance(v, dict):
        return {k: shape(x, names) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x, names) for x in v]
    if isinstance(v, str):
        if v in names:
            return names[v]
        if UUID.match(v):
            return "<made-up id>"
        if TIME.match(v):
            return "<time>"
        if REQUEST_ID.match(v):
            return "<request id>"
    return v


def received(collector: Collector, want: int) -> list[dict]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with collector.lock:
            if len(collector.events) >= want:
                break
        time.sleep(0.2)
    time.sleep(0.5)  # anything beyond what is expected arrives too, and is compared
    with collector.lock:
        return list(collector.events)


def test_notifications_match_keystone(servers) -> None:
    (keystone, baton), collectors, notification_format = servers
    names = {"keystone": scenario(keystone), "baton": scenario(baton)}
    want = received(collectors["keystone"], 17)
    got = received(collectors["baton"], len(want))
    assert [e["event_type"] for e in got] == [e["event_type"] for e in want]
    assert {e["publisher_id"] for e in want} == {"identity.oracle"}
    assert {e["publisher_id"] for e in got} == {"identity.baton"}
    diffs = []
    for w, g in zip(want, got):
        ws, gs = shape(w["payload"], names["keystone"]), shape(g["payload"], names["baton"])
        if ws != gs:
            diffs.append(f"{w['event_type']}:\n  keystone {ws}\n  baton    {gs}")
    assert not diffs, "\n".join(diffs)
    if notification_format == "basic":
        # Only the resource id, except for logins and role assignments (CADF in either format).
        updated = next(e for e in got if e["event_type"] == "identity.group.updated")["payload"]
        assert shape(updated, names["baton"]) == {
            "resource_info": "<group>", "actor_id": "<user>", "actor_type": "user", "actor_operation": "added",
            "request_id": "<request id>", "global_request_id": "<request id>"}
        return
    kinds = {e["event_type"] for e in want}
    assert {"identity.authenticate", "identity.project.created", "identity.role_assignment.created",
            "identity.group.updated", "identity.user.deleted"} <= kinds
    # The wrong password's failure carries Keystone's partial hash (compared above: equal).
    failures = [e["payload"] for e in got if e["event_type"] == "identity.authenticate"
                and e["payload"]["outcome"] == "failure"]
    assert [f.get("attachments") for f in failures] == [
        [{"typeURI": "mime:text/plain", "content": "pY6ztK75KNPK", "name": "partial_password_hash"}], None]
    # The initiator of a write is the caller, from where it called.
    created = next(e for e in got if e["event_type"] == "identity.project.created")["payload"]
    assert created["initiator"]["host"] == {"address": "127.0.0.1", "agent": AGENT}
    assert shape(created["initiator"]["user_id"], names["baton"]) == "<admin>"
