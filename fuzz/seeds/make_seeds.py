#!/usr/bin/env python3
"""Writes the starting corpus of each fuzz target into fuzz/corpus/<target>/ (run from the
repository root). The fuzzer grows these; `cargo fuzz cmin` keeps them small."""
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.environ.get("FUZZ_SEED_DIR", os.path.join(ROOT, "fuzz", "corpus"))


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


tokens = json.load(open(os.path.join(ROOT, "crates/baton-token/tests/fixtures/keystone_tokens.json")))
for t in tokens["tokens"]:
    put("token_payload", bytes.fromhex(t["plaintext_hex"]))
    put("fernet_envelope", t["token"])
put("fernet_envelope", b"\x00\x00\x00\x00\x65\x00\x00\x00\x07hello")
put("fernet_envelope", b"")

for name in ["keystone.conf", "nova.conf", "override.conf"]:
    put("ini", open(os.path.join(ROOT, "crates/baton-config/tests/fixtures", name), "rb").read())
put("ini", "[DEFAULT]\nkey = value\n  continued\n[token]\nexpiration = 3600\n"
           "[baton]\nvalidation_cache_ttl = 10s\n")

put("policy_file", '"identity:get_user": "role:admin or (role:reader and user_id:%(target.user.id)s)"\n'
                   '"admin_required": "role:admin or is_admin:1"\n"identity:list_users": "rule:admin_required"\n')
put("policy_file", json.dumps({"identity:get_project": "not role:reader and project_id:%(target.project.id)s",
                               "a": "rule:b", "b": "@", "c": "!", "d": "True:%(user_id)s"}))
put("policy_file", "identity:create_user: 'system_scope:all and role:admin'\n")

routes = [
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "s"}}},
              "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}},
    {"user": {"name": "alice", "domain_id": "default", "password": "x", "enabled": True,
              "options": {"ignore_lockout_failure_attempts": True}, "email": "a@b"}},
    {"user": {"name": "bob", "default_project_id": None, "description": "d"}},
    {"project": {"name": "p", "domain_id": "default", "parent_id": None, "tags": ["a", "b"], "is_domain": False}},
    {"project": {"name": "p2", "enabled": False, "tags": []}},
    {"domain": {"name": "d", "description": "x", "explicit_domain_id": "abc"}},
    {"role": {"name": "reader2", "domain_id": None, "options": {"immutable": True}}},
    {"role": {"description": "new"}},
    {"group": {"name": "g", "domain_id": "default"}},
    {"trust": {"trustor_user_id": "a", "trustee_user_id": "b", "impersonation": False, "project_id": "p",
               "roles": [{"name": "member"}], "remaining_uses": 2, "expires_at": "2030-01-01T00:00:00Z"}},
    {"application_credential": {"name": "ac", "roles": [{"id": "r"}], "expires_at": "2030-01-01T00:00:00",
                                "access_rules": [{"path": "/v2.1/servers/**", "method": "GET", "service": "compute"}]}},
    {"credential": {"blob": "{\"access\": \"a\", \"secret\": \"s\"}", "type": "ec2", "user_id": "u", "project_id": "p"}},
    {"credential": {"blob": "x"}},
    {"service": {"type": "compute", "name": "nova", "enabled": True}},
    {"endpoint": {"interface": "public", "service_id": "s", "url": "http://x:8774/v2.1/$(project_id)s", "region_id": "RegionOne"}},
    {"region": {"id": "RegionTwo", "description": "", "parent_region_id": None}},
    {"credentials": {"access": "a", "signature": "s", "host": "h", "verb": "GET", "path": "/", "params": {}}},
]
for i, body in enumerate(routes):
    put("request_body", bytes([i]) + json.dumps(body).encode())
put("request_body", b"\x00" + b"[" * 200 + b"]" * 200)

put("clouds_yaml", """clouds:
  devstack:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: demo
      password: secret
      project_name: demo
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  other:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example/v3
      application_credential_id: abc
      application_credential_secret: s
    regions:
      - name: R1
        values:
          interface: internal
      - R2
""")
put("clouds_yaml", json.dumps({"clouds": {"x": {"auth": {"auth_url": "http://k/v3", "token": "t"}, "auth_type": "v3token"}}}))

put("authtoken_headers", "X-Auth-Token: gAAAAAB\nX-Service-Token:  abc \nX_Roles: admin\nx-service-catalog: []\n"
                         "OpenStack-System-Scope: all\nX-Service-Roles: service\nAccept: */*\n")
put("authtoken_headers", "/v2.1/servers/abc\n/v2.1/servers/{server_id}\nX-Storage-Token: t\n")
