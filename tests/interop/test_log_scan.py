"""The log scan itself (log_scan.py): it finds what it must, and only in Baton's lines."""

from __future__ import annotations

import tempfile
from pathlib import Path

import log_scan

TOKEN = "gAAAAAB" + "pQ3x_-" * 20
KEY = "Xk3l9Qm2Vt7bN1cR5yZ8wE4uH6sJ0aD2fG7hK9lP3oI="


def test_the_scan_finds_tokens_passwords_and_keys() -> None:
    # Outside pytest's temporary directory, which the session's own scan reads.
    with tempfile.TemporaryDirectory() as d:
        scan_a_planted_log(Path(d))


def scan_a_planted_log(tmp_path: Path) -> None:
    (tmp_path / "node" / "fernet-keys").mkdir(parents=True)
    (tmp_path / "node" / "fernet-keys" / "0").write_text(KEY)
    (tmp_path / "node" / "baton.log").write_text(
        "$ baton manage bootstrap --bootstrap-password S3cret-Pass-word\n"  # the harness's own line
        "INFO request method=GET path=/v3 status=200\n"
        f"DEBUG header x-auth-token={TOKEN}\n"
        "DEBUG login password=S3cret-Pass-word\n"
        f"TRACE loaded key {KEY}\n")
    (tmp_path / "keystone0").mkdir()
    (tmp_path / "keystone0" / "keystone.log").write_text(f"not Baton's: {TOKEN}\n")
    findings = log_scan.scan(tmp_path, {"S3cret-Pass-word"})
    assert [f.rsplit(":", 2)[1:] for f in findings] == [
        ["3", " a Fernet token"], ["4", " a password, secret or key"], ["5", " a password, secret or key"]]
    assert all("S3cret" not in f and TOKEN not in f for f in findings)


def test_the_suite_registers_its_passwords() -> None:
    import interop_util
    assert interop_util.ADMIN_PASSWORD in log_scan.known_secrets([interop_util])
