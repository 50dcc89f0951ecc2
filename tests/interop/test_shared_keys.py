"""Keys shared through the database (`[fernet_tokens] key_distribution = database`) with the real
Keystone in the fleet.

Baton creates the schema and the shared key set (`baton manage db_sync`, `fernet_setup`), serves
from an empty key repository (it loads the set from the database and mirrors it there), and
`baton manage fernet_export DIR` writes Keystone's on-disk layout, from which the real Keystone
30 (on the same database) validates Baton's tokens, before and after a `fernet_rotate` run on
the database. Keystone's own `keystone-manage db_sync --check` is not disturbed by Baton's
tables.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from baton_process import Baton
from conftest import KEYSTONE_HASH_ROUNDS, require_baton, require_venv
from interop_util import ADMIN_PASSWORD, issue_token, validate_token
from keystone_oracle import KeystoneOracle, OracleError, free_port


def key_files(d: Path) -> dict[str, str]:
    """The key files of a repository. A node mirroring a new set writes `.N.mirror.tmp` and
    renames it into place; such a file, seen mid-write (or gone a moment later), is not a key."""
    out = {}
    for p in sorted(d.iterdir()):
        if p.name.startswith("."):
            continue
        assert (p.stat().st_mode & 0o777) == 0o600, p
        out[p.name] = p.read_text()
    return out


def test_keystone_validates_baton_tokens_from_fernet_export(tmp_path):
    require_venv()
    require_baton()
    db = tmp_path / "shared.db"
    kek = tmp_path / "kek"
    kek.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
    kek.chmod(0o600)
    mirror = tmp_path / "baton-keys"
    exported = tmp_path / "fernet-keys"
    bt = Baton(tmp_path / "baton", sqlite_path=db, key_repository=mirror, extra_conf={
        "fernet_tokens": {"key_distribution": "database", "key_encryption_key_file": kek}})
    ks = KeystoneOracle(tmp_path / "keystone", free_port(), sqlite_path=db, key_repository=exported,
                        password_hash_rounds=KEYSTONE_HASH_ROUNDS)
    bt.write_config()
    ks.write_config()
    try:
        bt.db_sync()
        out = bt.manage("fernet_setup")
        assert "stored in the database" in out, out
        bt.bootstrap(ADMIN_PASSWORD, public_url=bt.auth_url)
        # Baton's tables beside Keystone's schema leave Keystone's own check content.
        ks.manage("db_sync", "--check")
        bt.manage("fernet_export", str(exported))
        assert sorted(key_files(exported)) == ["0", "1"]
        bt.start()
        ks.start()
        assert key_files(mirror) == key_files(exported), "the node mirrors what fernet_export writes"

        token, _ = issue_token(bt.auth_url)
        caller, _ = issue_token(ks.auth_url)
        r = validate_token(ks.auth_url, caller, token)
        assert r.status_code == 200, r.text[:300]

        out = bt.manage("fernet_rotate")
        assert "version 2" in out, out
        # The node loads version 2 within a tick or two and mirrors it.
        deadline = time.monotonic() + 10
        while "2" not in key_files(mirror) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sorted(key_files(mirror)) == ["0", "1", "2"]
        bt.manage("fernet_export", str(exported))
        assert key_files(mirror) == key_files(exported)
        fresh, _ = issue_token(bt.auth_url)
        for subject in (token, fresh):
            r = validate_token(ks.auth_url, caller, subject)
            assert r.status_code == 200, r.text[:300]
        # And Baton validates Keystone's token minted with the exported keys.
        ks_token, _ = issue_token(ks.auth_url)
        baton_caller, _ = issue_token(bt.auth_url)
        assert validate_token(bt.auth_url, baton_caller, ks_token).status_code == 200
    except OracleError as e:
        pytest.fail(f"{e}\n{bt.logs_tail()}", pytrace=False)
    finally:
        bt.stop()
        ks.stop()
