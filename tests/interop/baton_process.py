"""Drive the `baton` binary (manage + serve) for the interop tests.

CLI contract (see the task brief / crates/baton-cli):
    baton manage --config FILE db_sync | fernet_setup | fernet_rotate
    baton manage --config FILE bootstrap --bootstrap-password P [--bootstrap-username ...] ...
    baton serve --config FILE --bind 127.0.0.1:PORT
The config FILE is a keystone.conf subset written by :meth:`Baton.write_config`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional

from keystone_oracle import REPO_ROOT, OracleError, _kill_group, free_port, port_is_free, sqlite_url, tail, \
    wait_http_ok
from log_scan import log_level

DEFAULT_BATON_BIN = REPO_ROOT / "target" / "debug" / "baton"


def baton_bin() -> Path:
    return Path(os.environ.get("BATON_BIN", DEFAULT_BATON_BIN))


def baton_missing_reason() -> Optional[str]:
    """None if the baton binary is usable, otherwise a human-readable reason to skip."""
    b = baton_bin()
    if not b.exists():
        return (f"baton binary not built: {b} does not exist "
                "(run `cargo build -p baton-cli` or set BATON_BIN=/path/to/baton)")
    if not os.access(b, os.X_OK):
        return f"baton binary {b} is not executable"
    return None


class Baton:
    def __init__(self, workdir: os.PathLike | str, port: Optional[int] = None, *,
                 sqlite_path: Optional[os.PathLike | str] = None,
                 connection: Optional[str] = None,
                 key_repository: Optional[os.PathLike | str] = None,
                 expiration: int = 3600,
                 allow_expired_window: Optional[int] = None,
                 public_endpoint: Optional[str] = None,
                 binary: Optional[os.PathLike | str] = None,
                 extra_conf: Optional[dict] = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port if port is not None else free_port()
        self.sqlite_path = Path(sqlite_path).resolve() if sqlite_path else self.workdir / "baton.db"
        self.connection = connection or sqlite_url(self.sqlite_path)
        self.key_repository = Path(key_repository).resolve() if key_repository else self.workdir / "fernet-keys"
        self.expiration = expiration
        self.allow_expired_window = allow_expired_window
        self.public_endpoint = public_endpoint or f"http://127.0.0.1:{self.port}"
        self.binary = Path(binary) if binary else baton_bin()
        self.extra_conf = extra_conf or {}
        self.proc: Optional[subprocess.Popen] = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "baton.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "baton.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.url + "/v3"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        sections: dict[str, dict[str, object]] = {
            "DEFAULT": {"public_endpoint": self.public_endpoint},
            "database": {"connection": self.connection},
            "token": {"provider": "fernet", "expiration": self.expiration},
            "fernet_tokens": {"key_repository": self.key_repository, "max_active_keys": 3},
        }
        if self.allow_expired_window is not None:
            sections["token"]["allow_expired_window"] = self.allow_expired_window
        for sec, opts in self.extra_conf.items():
            sections.setdefault(sec, {}).update(opts)
        lines = ["# written by tests/interop/baton_process.py"]
        for sec, opts in sections.items():
            lines.append(f"\n[{sec}]")
            lines.extend(f"{k} = {v}" for k, v in opts.items())
        self.conf_path.write_text("\n".join(lines) + "\n")
        return self.conf_path

    def logs_tail(self, lines: int = 40) -> str:
        return f"----- {self.log_path} (tail) -----\n{tail(self.log_path, lines)}"

    def manage(self, *args: str, timeout: float = 120) -> str:
        if not self.conf_path.exists():
            self.write_config()
        cmd = [str(self.binary), "manage", "--config", str(self.conf_path), *args]
        try:
            r = subprocess.run(cmd, cwd=self.workdir, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise OracleError(f"`baton manage {args[0]}` timed out after {timeout}s")
        with open(self.log_path, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}\n[rc={r.returncode}]\n")
        if r.returncode != 0:
            raise OracleError(f"`baton manage {' '.join(args)}` failed rc={r.returncode}\n"
                              f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}")
        return r.stdout

    def db_sync(self) -> None:
        self.manage("db_sync")

    def fernet_setup(self) -> None:
        self.manage("fernet_setup")

    def fernet_rotate(self) -> None:
        self.manage("fernet_rotate")

    def bootstrap(self, password: str = "adminpass", *, username: str = "admin",
                  project_name: str = "admin", role_name: str = "admin",
                  service_name: str = "keystone", region_id: str = "RegionOne",
                  public_url: Optional[str] = None, internal_url: Optional[str] = None) -> None:
        args = ["bootstrap", "--bootstrap-password", password, "--bootstrap-username", username,
                "--bootstrap-project-name", project_name, "--bootstrap-role-name", role_name,
                "--bootstrap-service-name", service_name, "--bootstrap-region-id", region_id,
                "--bootstrap-public-url", public_url or self.auth_url]
        if internal_url:
            args += ["--bootstrap-internal-url", internal_url]
        self.manage(*args)

    def start(self, timeout: float = 30) -> "Baton":
        if self.proc is not None and self.proc.poll() is None:
            return self
        if not port_is_free(self.port):
            raise OracleError(f"127.0.0.1:{self.port} is already in use")
        self.write_config()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env["BATON_LOG"] = log_level()  # scanned for secrets at the end (log_scan.py)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--config", str(self.conf_path), "--bind", f"127.0.0.1:{self.port}"],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        try:
            wait_http_ok(self.auth_url, timeout, self.proc, what="baton serve")
        except OracleError as e:
            self.stop()
            raise OracleError(f"{e}\n{self.logs_tail()}")
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None:
            return
        _kill_group(self.proc.pid, timeout, self.proc)
        self.proc = None

    def __enter__(self) -> "Baton":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
