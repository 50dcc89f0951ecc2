"""Secrets at rest: what `baton quickstart` creates (database, key repositories, keystone.conf,
clouds.yaml with the admin password) is its owner's alone, whatever the umask, and a generated
file that was loosened is private again when it is written next."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from baton_process import baton_bin
from conftest import require_baton


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def quickstart(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(baton_bin()), "quickstart", "--no-serve", "--data-dir", str(data_dir)],
                          env={**os.environ, "BATON_LOG": "error", **env}, capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: os.umask(0o022))


def test_quickstart_creates_everything_private(tmp_path: Path) -> None:
    require_baton()
    d = tmp_path / "qs"
    r = quickstart(d)
    assert r.returncode == 0, r.stderr
    assert mode(d) == 0o700
    for name in ("keystone.conf", "clouds.yaml", "keystone.db"):
        assert mode(d / name) == 0o600, name
    for repo in ("fernet-keys", "credential-keys"):
        assert mode(d / repo) == 0o700, repo
        keys = list((d / repo).iterdir())
        assert keys and all(mode(k) == 0o600 for k in keys), repo

    # A loosened clouds.yaml is written private again (a new admin password is saved in it).
    (d / "clouds.yaml").chmod(0o644)
    r = quickstart(d, BATON_ADMIN_PASSWORD="Qu1ckstart-Again-pw")
    assert r.returncode == 0, r.stderr
    assert mode(d / "clouds.yaml") == 0o600
    assert "Qu1ckstart-Again-pw" in (d / "clouds.yaml").read_text()
    assert not [p.name for p in d.iterdir() if p.name.endswith(".tmp")]
