#!/usr/bin/env python3
"""A stand-in for the `baton` binary that implements Baton's CLI contract with the REAL Keystone.

Purpose: self-test of the interop suite while Baton is not built (or to bisect a failure):

    BATON_BIN=tests/interop/fake_baton.py .venv/bin/pytest tests/interop

then every "baton" test runs Keystone-vs-Keystone, which must pass; if a test fails under the
fake, the test (not Baton) is wrong.

    fake_baton.py manage --config FILE db_sync|fernet_setup|fernet_rotate|bootstrap ARGS...
    fake_baton.py serve --config FILE --bind 127.0.0.1:PORT
"""

import argparse
import configparser
import grp
import os
import pwd
import sys
from pathlib import Path

VENV = Path(os.environ.get("BATON_VENV", Path(__file__).resolve().parents[2] / ".venv"))
SHIM = "import sys\nsys.argv = sys.argv[:1]\nfrom keystone.wsgi.api import application  # noqa\n"


def keystone_conf(baton_conf: Path) -> str:
    """Baton's config plus what keystone needs to start ([fernet_receipts] key repository)."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(baton_conf)
    if not cp.has_section("fernet_receipts") and cp.has_option("fernet_tokens", "key_repository"):
        cp.add_section("fernet_receipts")
        cp.set("fernet_receipts", "key_repository", cp.get("fernet_tokens", "key_repository"))
    d = baton_conf.parent / "fake-baton"
    d.mkdir(exist_ok=True)
    out = d / "keystone.conf"
    with open(out, "w") as f:
        cp.write(f)
    return str(out)


def main() -> int:
    p = argparse.ArgumentParser(prog="fake-baton")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manage")
    m.add_argument("--config", "--config-file", dest="config", required=True)
    m.add_argument("action")
    s = sub.add_parser("serve")
    s.add_argument("--config", "--config-file", dest="config", required=True)
    s.add_argument("--bind", required=True)
    a, rest = p.parse_known_args()
    conf = keystone_conf(Path(a.config).resolve())
    if a.cmd == "manage":
        args = [a.action, *rest]
        if a.action in ("fernet_setup", "fernet_rotate"):
            args += ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
                     "--keystone-group", grp.getgrgid(os.getgid()).gr_name]
        exe = str(VENV / "bin" / "keystone-manage")
        os.execv(exe, [exe, "--config-file", conf, *args])
    shim_dir = Path(conf).parent
    (shim_dir / "fake_baton_wsgi.py").write_text(SHIM)
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = conf
    exe = str(VENV / "bin" / "gunicorn")
    os.execv(exe, [exe, "--workers", "1", "--bind", a.bind, "--timeout", "120", "--graceful-timeout", "5",
                   "--chdir", str(shim_dir), "--no-control-socket", "fake_baton_wsgi:application"])
    return 1


if __name__ == "__main__":
    sys.exit(main())
