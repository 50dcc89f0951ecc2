"""Credentials and EC2 credentials with Keystone 30 and Baton on one database, one token key
repository and one credential key repository.

A credential created on either server decrypts on both (same blob, same ``key_hash``); an EC2
credential made on either signs requests (botocore's SigV4, python-keystoneclient's Ec2Signer
v2 with and without the host's port) that ``POST /v3/ec2tokens`` accepts on both, and the
tokens it mints validate on both; the same bad requests get the same statuses and messages;
python-openstackclient's ``credential create`` and ``ec2 credentials create`` work on Baton.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from conftest import (KEYSTONE_HASH_ROUNDS, TOKEN_EXPIRATION, OpenStackCLI, Pair, require_baton,
                      require_venv)
from baton_process import Baton
from interop_util import ADMIN_PASSWORD, Target, grant_admin_on_default_domain
from keystone_oracle import KeystoneOracle, OracleError, free_port

HTTP_TIMEOUT = 30
USER_PW = "Creds-User-Pw-5521"


def start_cred_pair(workdir: Path, initialized_by: str) -> Pair:
    """Keystone and Baton on one sqlite db, one token key repository and one credential key
    repository (set up by the initializing side's credential_setup)."""
    require_venv()
    require_baton()
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "shared.db"
    keys = workdir / "fernet-keys"
    creds = workdir / "credential-keys"
    shared = {"credential": {"key_repository": creds}}
    ks = KeystoneOracle(workdir / "keystone", free_port(), sqlite_path=db, key_repository=keys,
                        expiration=TOKEN_EXPIRATION, password_hash_rounds=KEYSTONE_HASH_ROUNDS,
                        extra_conf=shared)
    bt = Baton(workdir / "baton", sqlite_path=db, key_repository=keys, expiration=TOKEN_EXPIRATION,
               extra_conf=shared)
    ks.write_config()
    bt.write_config()
    try:
        if initialized_by == "keystone":
            ks.db_sync()
            ks.fernet_setup()  # and credential_setup
            ks.bootstrap(ADMIN_PASSWORD, public_url=ks.auth_url)
        else:
            bt.db_sync()
            bt.fernet_setup()
            bt.manage("credential_setup")
            bt.bootstrap(ADMIN_PASSWORD, public_url=bt.auth_url)
        grant_admin_on_default_domain(db)
        ks.start()
        bt.start()
    except OracleError as e:
        bt.stop()
        ks.stop()
        pytest.fail(f"could not start the pair: {e}", pytrace=False)
    return Pair(Target("keystone", ks.auth_url, db, server=ks), Target("baton", bt.auth_url, db, server=bt),
                initialized_by)


@pytest.fixture(scope="module", params=["keystone", "baton"], ids=["keystone-inits", "baton-inits"])
def cpair(request, tmp_path_factory) -> Iterator[Pair]:
    p = start_cred_pair(tmp_path_factory.mktemp(f"cred-pair-{request.param}"), request.param)
    yield p
    p.stop()


def api(t: Target, method: str, path: str, token: str | None, body=None, raw: bytes | None = None):
    headers = {"X-Auth-Token": token} if token else {}
    if raw is not None:
        return requests.request(method, f"{t.auth_url}/{path}", headers=headers, data=raw,
                                timeout=HTTP_TIMEOUT)
    return requests.request(method, f"{t.auth_url}/{path}", headers=headers, json=body, timeout=HTTP_TIMEOUT)


def admin_ids(t: Target) -> tuple[str, str, str]:
    """(token, user id, project id) of the admin, project-scoped."""
    token, body = t.issue()
    return token, body["token"]["user"]["id"], body["token"]["project"]["id"]


def stored_row(pair: Pair, cred_id: str) -> tuple:
    con = sqlite3.connect(pair.keystone.db_path)
    try:
        return con.execute("SELECT key_hash, encrypted_blob, type FROM credential WHERE id = ?",
                           (cred_id,)).fetchone()
    finally:
        con.close()


# ---- /v3/credentials ---------------------------------------------------------------------------
@pytest.mark.parametrize("creator", ["keystone", "baton"])
def test_credentials_decrypt_on_both(cpair, creator):
    src = getattr(cpair, creator)
    token, uid, pid = admin_ids(src)
    blob = f"cert-{uuid.uuid4().hex}"
    r = api(src, "POST", "credentials", token, {"credential": {"type": "cert", "user_id": uid, "blob": blob,
                                                               "note": "extra"}})
    assert r.status_code == 201, r.text
    cert = r.json()["credential"]
    access = uuid.uuid4().hex
    ec2_blob = json.dumps({"access": access, "secret": "s-" + access})
    r = api(src, "POST", "credentials", token, {"credential": {"type": "ec2", "user_id": uid, "project_id": pid,
                                                               "blob": ec2_blob}})
    assert r.status_code == 201, r.text
    ec2 = r.json()["credential"]
    assert ec2["id"] == hashlib.sha256(access.encode()).hexdigest()
    hashes = set()
    for t in cpair.both():
        tok, _, _ = admin_ids(t)
        for c in (cert, ec2):
            r = api(t, "GET", f"credentials/{c['id']}", tok)
            assert r.status_code == 200, f"{t}: {r.text}"
            got = r.json()["credential"]
            assert got["blob"] == c["blob"], t
            assert {k: v for k, v in got.items() if k != "links"} == \
                   {k: v for k, v in c.items() if k != "links"}, t
            hashes.add(stored_row(cpair, c["id"])[0])
        r = api(t, "GET", "credentials?type=ec2", tok)
        assert r.status_code == 200
        assert ec2["id"] in [c["id"] for c in r.json()["credentials"]], t
    assert len(hashes) == 1  # both encrypt with the same primary key
    # An update on the other side reads back on both.
    other = cpair.baton if creator == "keystone" else cpair.keystone
    tok, _, _ = admin_ids(other)
    r = api(other, "PATCH", f"credentials/{cert['id']}", tok, {"credential": {"blob": "updated"}})
    assert r.status_code == 200, r.text
    for t in cpair.both():
        tok, _, _ = admin_ids(t)
        r = api(t, "GET", f"credentials/{cert['id']}", tok)
        assert r.status_code == 200, f"{t}: {r.status_code} {r.text}"
        assert r.json()["credential"]["blob"] == "updated"


# ---- EC2 ---------------------------------------------------------------------------------------
def v2_signed(access: str, secret: str, host: str, signed_host: str | None = None) -> dict:
    from keystoneclient.contrib.ec2.utils import Ec2Signer
    import datetime as dt
    params = {"Action": "DescribeInstances", "AWSAccessKeyId": access, "SignatureMethod": "HmacSHA256",
              "SignatureVersion": "2", "Version": "2013-10-15",
              "Timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    creds = {"access": access, "host": signed_host or host, "verb": "GET", "path": "/services/Cloud/",
             "params": params}
    creds["signature"] = Ec2Signer(secret).generate(copy.deepcopy(creds))
    creds["host"] = host
    return creds


def v4_signed(access: str, secret: str) -> dict:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    body = "Action=DescribeRegions&Version=2013-10-15"
    req = AWSRequest(method="POST", url="http://ec2.example.com:8773/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(access, secret), "ec2", "RegionOne").add_auth(req)
    headers = dict(req.headers.items())
    headers["Host"] = "ec2.example.com:8773"
    signature = headers["Authorization"].split("Signature=")[1]
    return {"access": access, "signature": signature, "host": "ec2.example.com:8773", "verb": "POST",
            "path": "/", "params": {}, "headers": headers,
            "body_hash": hashlib.sha256(body.encode()).hexdigest()}


def ec2tokens(t: Target, token: str | None, creds: dict) -> requests.Response:
    return api(t, "POST", "ec2tokens", token, {"credentials": creds})


@pytest.mark.parametrize("creator", ["keystone", "baton"])
def test_ec2_signatures_validate_on_both(cpair, creator):
    src = getattr(cpair, creator)
    token, uid, pid = admin_ids(src)
    r = api(src, "POST", f"users/{uid}/credentials/OS-EC2", token, {"tenant_id": pid})
    assert r.status_code == 201, r.text
    cred = r.json()["credential"]
    assert set(cred) == {"user_id", "tenant_id", "access", "secret", "trust_id", "links"}
    access, secret = cred["access"], cred["secret"]
    signed = {
        "v2": v2_signed(access, secret, "ec2.example.com:8773"),
        "v2-no-port": v2_signed(access, secret, "ec2.example.com:8773", "ec2.example.com"),
        "v4": v4_signed(access, secret),
    }
    minted = {}
    for t in cpair.both():
        tok, _, _ = admin_ids(t)
        for name, creds in signed.items():
            r = ec2tokens(t, tok, creds)
            assert r.status_code == 200, f"{t} {name}: {r.text}"
            body = r.json()["token"]
            assert body["methods"] == ["ec2credential"], t
            assert (body["user"]["id"], body["project"]["id"]) == (uid, pid), t
            assert r.headers.get("X-Subject-Token"), t
            minted[(t.name, name)] = r.headers["X-Subject-Token"]
        bad = dict(signed["v2"], signature="AAAA" + signed["v2"]["signature"][4:])
        assert ec2tokens(t, tok, bad).status_code == 401, t
    # A token minted on either validates on both, with the same method.
    for (origin, name), subject in minted.items():
        for t in cpair.both():
            r = t.validate(subject)
            assert r.status_code == 200, f"{origin}/{name} on {t}: {r.text}"
            assert r.json()["token"]["methods"] == ["ec2credential"]
    # An EC2 token authorizes no API call on either (Keystone's auth_context refuses it) and is
    # never exchanged for another token: same statuses and messages on both.
    subject = minted[(src.name, "v4")]
    seen = {}
    for t in cpair.both():
        seen[t.name] = [
            (r.status_code, r.json()["error"]["message"]) for r in (
                api(t, "GET", "credentials", subject),
                api(t, "POST", f"users/{uid}/application_credentials", subject,
                    {"application_credential": {"name": f"ec2-{uuid.uuid4().hex[:6]}"}}),
                api(t, "GET", f"users/{uid}/credentials/OS-EC2", subject),
                api(t, "POST", "auth/tokens", None,
                    {"auth": {"identity": {"methods": ["token"], "token": {"id": subject}}}}),
            )
        ]
        assert all(code == 403 for code, _ in seen[t.name]), (t, seen[t.name])
    assert seen["baton"] == seen["keystone"]
    # Listed and shown alike on both.
    for t in cpair.both():
        tok, _, _ = admin_ids(t)
        r = api(t, "GET", f"users/{uid}/credentials/OS-EC2/{access}", tok)
        assert r.status_code == 200, r.text
        assert {k: v for k, v in r.json()["credential"].items() if k != "links"} == \
               {k: v for k, v in cred.items() if k != "links"}
    r = api(src, "DELETE", f"users/{uid}/credentials/OS-EC2/{access}", token)
    assert r.status_code == 204
    for t in cpair.both():
        tok, _, _ = admin_ids(t)
        assert ec2tokens(t, tok, signed["v4"]).status_code == 404, t


def member_token(t: Target, admin: str, pid: str) -> tuple[str, str]:
    name = f"cm-{uuid.uuid4().hex[:8]}"
    r = api(t, "POST", "users", admin, {"user": {"name": name, "password": USER_PW, "domain_id": "default"}})
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    role = api(t, "GET", "roles?name=member", admin).json()["roles"][0]["id"]
    assert api(t, "PUT", f"projects/{pid}/users/{uid}/roles/{role}", admin).status_code == 204
    tok, _ = t.issue({"project": {"id": pid}}, username=name, password=USER_PW)
    return tok, uid


def test_errors_match(cpair):
    results = {}
    for t in cpair.both():
        admin, uid, pid = admin_ids(t)
        member, muid = member_token(t, admin, pid)
        cases = {
            "no-credential": ("POST", "credentials", admin, {}),
            "no-blob": ("POST", "credentials", admin, {"credential": {"type": "cert", "user_id": uid}}),
            "ec2-no-project": ("POST", "credentials", admin,
                               {"credential": {"blob": "{}", "type": "ec2", "user_id": uid}}),
            "blob-int": ("POST", "credentials", admin, {"credential": {"blob": 1, "type": "cert", "user_id": uid}}),
            "bad-ec2-blob": ("POST", "credentials", admin,
                             {"credential": {"blob": "x", "project_id": pid, "type": "ec2", "user_id": uid}}),
            "no-access": ("POST", "credentials", admin,
                          {"credential": {"blob": "{\"a\": 1}", "project_id": pid, "type": "ec2", "user_id": uid}}),
            "other-user": ("POST", "credentials", member, {"credential": {"blob": "x", "type": "c", "user_id": uid}}),
            "missing-admin": ("GET", "credentials/nope", admin, None),
            "missing-member": ("GET", "credentials/nope", member, None),
            "patch-extra": ("PATCH", "credentials/nope", admin, {"credential": {"blob": "x", "type": "y"}}),
            "ec2-unknown": ("GET", f"users/{uid}/credentials/OS-EC2/nope", admin, None),
            "ec2-no-tenant": ("POST", f"users/{uid}/credentials/OS-EC2", admin, {}),
            "ec2-other-user": ("POST", f"users/{uid}/credentials/OS-EC2", member, {"tenant_id": pid}),
            "ec2-list-other": ("GET", f"users/{uid}/credentials/OS-EC2", member, None),
            "tokens-unknown": ("POST", "ec2tokens", admin, {"credentials": {"access": "nope", "signature": "x"}}),
            "tokens-no-access": ("POST", "ec2tokens", admin, {"credentials": {}}),
            "tokens-member": ("POST", "ec2tokens", member, {"credentials": {"access": "nope"}}),
            "tokens-anonymous": ("POST", "ec2tokens", None, {"credentials": {"access": "nope"}}),
        }
        out = {}
        for name, (method, path, tok, body) in cases.items():
            r = api(t, method, path, tok, body)
            msg = r.json()["error"]["message"] if r.content and r.status_code >= 400 else None
            out[name] = (r.status_code, msg)
        # Member listing sees only its own.
        r = api(t, "POST", "credentials", member, {"credential": {"blob": "m", "type": "cert", "user_id": muid}})
        assert r.status_code == 201, r.text
        listed = api(t, "GET", "credentials", member).json()["credentials"]
        assert {c["user_id"] for c in listed} == {muid}, t
        results[t.name] = out
    for name in results["keystone"]:
        assert results["baton"][name] == results["keystone"][name], name


def test_openstack_cli(cpair, venv_bin, tmp_path):
    if cpair.initialized_by != "baton":
        pytest.skip("the catalog of this pair points at Keystone")
    cli = OpenStackCLI(venv_bin / "openstack", cpair.baton, tmp_path)
    r = cli.run("credential", "create", "admin", "cli-blob", "--type", "cert", "-f", "json")
    made = json.loads(r.stdout)
    assert made["blob"] == "cli-blob" and made["type"] == "cert"
    shown = json.loads(cli.run("credential", "show", made["id"], "-f", "json").stdout)
    assert shown["blob"] == "cli-blob"
    r = cli.run("ec2", "credentials", "create", "-f", "json")
    ec2 = json.loads(r.stdout)
    assert len(ec2["access"]) == 32 and len(ec2["secret"]) == 32
    listed = json.loads(cli.run("ec2", "credentials", "list", "-f", "json").stdout)
    assert ec2["access"] in [c["Access"] for c in listed]
    # The credential made through Baton is readable through Keystone.
    tok, _, _ = admin_ids(cpair.keystone)
    r = api(cpair.keystone, "GET", f"credentials/{made['id']}", tok)
    assert r.status_code == 200 and r.json()["credential"]["blob"] == "cli-blob"
    cli.run("ec2", "credentials", "delete", ec2["access"])
    cli.run("credential", "delete", made["id"])


def test_baton_cli_prints_what_openstack_prints(cpair, venv_bin, tmp_path):
    """`baton credential ...` and `baton ec2 credentials ...` against Baton, output compared with
    python-openstackclient's on the same server."""
    if cpair.initialized_by != "baton":
        pytest.skip("the catalog of this pair points at Keystone")
    from test_baton_cli import Pair as CliPair
    cli = CliPair(cpair.baton, venv_bin, tmp_path)
    made = cli.bt_json("credential", "create", "admin", "baton-cli-blob", "--type", "totp")
    assert made == cli.os_json("credential", "show", made["id"])
    ec2 = cli.bt_json("ec2", "credentials", "create")
    assert ec2 == cli.os_json("ec2", "credentials", "show", ec2["access"])
    for args in (["credential", "show", made["id"]], ["credential", "list"], ["credential", "list", "--type", "totp"],
                 ["credential", "list", "--user", "admin"], ["ec2", "credentials", "list"],
                 ["ec2", "credentials", "show", ec2["access"]]):
        for fmt in ([], ["-f", "json"], ["-f", "value"]):
            cli.same(*args, *fmt)
    bad = cli.bt("credential", "delete", "nope", check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    cli.bt("ec2", "credentials", "delete", ec2["access"])
    cli.bt("credential", "delete", made["id"])
    assert made["id"] not in cli.bt("credential", "list", "-f", "value", "-c", "ID").stdout


def test_manage_rotate_and_migrate_agree(cpair):
    """`baton manage credential_rotate` / `credential_migrate` and keystone-manage's on one
    repository: rotation is refused while a row is not on the primary key (by both tools),
    migration re-encrypts, and every row still reads on both servers. (Last in the module: it
    rotates the shared credential keys.)"""
    tok, uid, _ = admin_ids(cpair.keystone)
    r = api(cpair.keystone, "POST", "credentials", tok, {"credential": {"type": "cert", "user_id": uid,
                                                                         "blob": "rotated"}})
    assert r.status_code == 201, r.text
    cid = r.json()["credential"]["id"]
    import grp
    import os
    import pwd
    owner = ("--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
             "--keystone-group", grp.getgrgid(os.getgid()).gr_name)

    class Tool:
        """keystone-manage requires the owner flags of these verbs; Baton accepts them."""

        def __init__(self, server):
            self.server = server

        def manage(self, verb: str):
            return self.server.manage(verb, *owner)

    ks, bt = Tool(cpair.keystone.server), Tool(cpair.baton.server)
    bt.manage("credential_rotate")  # every row is on the primary key
    for tool in (bt, ks):
        with pytest.raises(OracleError):
            tool.manage("credential_rotate")  # not any more
    bt.manage("credential_migrate")
    ks.manage("credential_rotate")  # Keystone agrees every row is on the primary now
    ks.manage("credential_migrate")  # and Baton agrees with Keystone's migration
    bt.manage("credential_rotate")
    bt.manage("credential_migrate")
    for t in cpair.both():
        tok, _, _ = admin_ids(t)
        r = api(t, "GET", "credentials", tok)
        assert r.status_code == 200, f"{t}: {r.text}"
        blobs = {c["id"]: c["blob"] for c in r.json()["credentials"]}
        assert blobs[cid] == "rotated", t
