"""The log scan: no token, password or key in any line Baton logged during the suite.

Every Baton process the suite starts (`baton serve`, fleet nodes, `baton authproxy`) logs at
trace level (BATON_TEST_LOG, default `trace`) into a file under pytest's temporary directory.
At the end of the session each worker reads its files and looks for
- any Fernet token (`gAAAAA...`, the version byte and a timestamp's high bytes),
- every password and secret the test modules define (module-level names with PASSWORD, _PW,
  SECRET, RIGHT or WRONG in them),
- every Fernet or credential key in the key repositories the tests made.
Lines the harness itself wrote (`$ command`, the command line it ran) are not Baton's and are
skipped; so are the logs of Keystone, gunicorn and HAProxy.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]{80,}")
SECRET_NAME = re.compile(r"PASSWORD|_PW$|^PW$|SECRET|^RIGHT$|^WRONG$")
NOT_BATON = {"keystone.log", "gunicorn.log", "gunicorn.out", "manage.log", "haproxy.log"}
KEY_DIRS = {"fernet-keys", "credential-keys"}


def log_level() -> str:
    """What Baton processes started by the suite log at (BATON_LOG for them)."""
    return os.environ.get("BATON_TEST_LOG", "trace")


def known_secrets(modules: Iterable[ModuleType]) -> set[str]:
    found: set[str] = set()
    for m in modules:
        name = getattr(m, "__name__", "")
        if not (name.startswith("test_") or name in {"interop_util", "conftest", "fleet"}):
            continue
        for attr, value in vars(m).items():
            if isinstance(value, str) and len(value) >= 6 and SECRET_NAME.search(attr):
                found.add(value)
    return found


def key_material(root: Path) -> set[str]:
    keys: set[str] = set()
    for d in root.rglob("*"):
        if d.is_dir() and d.name in KEY_DIRS:
            for f in d.iterdir():
                try:
                    text = f.read_text().strip()
                except (OSError, UnicodeDecodeError):
                    continue
                if len(text) >= 32:
                    keys.add(text)
    return keys


def baton_logs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".log", ".out"}
                  and p.name not in NOT_BATON and "keystone" not in p.parent.name)


def scan(root: Path, secrets: set[str]) -> list[str]:
    """One line per finding: file, line number and what was found (never the secret itself)."""
    needles = secrets | key_material(root)
    findings: list[str] = []
    for path in baton_logs(root):
        with open(path, errors="replace") as f:
            for n, line in enumerate(f, 1):
                if line.startswith("$ "):
                    continue
                what = "a Fernet token" if TOKEN.search(line) else None
                if what is None and any(s in line for s in needles):
                    what = "a password, secret or key"
                if what:
                    findings.append(f"{path}:{n}: {what}")
    return findings


def check_session(root: Path) -> list[str]:
    return scan(root, known_secrets(list(sys.modules.values())))
