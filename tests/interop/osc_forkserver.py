"""A fork server for python-openstackclient: the tests run `openstack` a few hundred times, and
most of each run is Python importing openstackclient, keystoneauth and the SDK (about 0.7 s of
1.2 s). This process imports them once; each command then runs in a forked child with its own
environment, working directory, stdin (/dev/null), stdout and stderr (files), exactly as a fresh
`openstack` process would, and exits with its status.

Protocol (the client is `run_openstack` in conftest.py): one JSON object per line on stdin,
{"argv", "env", "cwd", "stdout", "stderr"}; one line per command on stdout, {"pid"} when the
child started and {"rc"} when it ended.

The SDK's config loader computes its search path (the working directory, $HOME/.config) when
imported; the child reloads it after taking the command's environment.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

# What every command needs, imported once (the identity commands are loaded by cliff on use).
import keystoneauth1.session  # noqa: F401
import keystoneclient.v3.client  # noqa: F401
import openstack.config.loader
import openstackclient.identity.v3.project  # noqa: F401
import openstackclient.shell


def child(req: dict) -> int:
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    importlib.reload(openstack.config.loader)
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = ["openstack", *req["argv"]]
    try:
        rc = openstackclient.shell.main(req["argv"])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # what an uncaught error does to a process: a traceback and 1
        traceback.print_exc()
        rc = 1
    return rc or 0


def main() -> None:
    # Replies go to the original stdout; anything else printed here goes to stderr.
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            rc = 1
            try:
                replies.close()
                rc = child(req)
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(rc)
        replies.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    main()
