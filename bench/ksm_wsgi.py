"""The REAL keystonemiddleware auth_token in front of a trivial WSGI app (200 "ok"), for
scripts/bench-authtoken.sh under gunicorn:

    BENCH_KSM_CONF='{"auth_url": ...}' gunicorn --workers 2 --chdir bench ksm_wsgi:application

BENCH_KSM_CONF is the paste-style option dict of ``auth_token.AuthProtocol`` (JSON), as in
tests/interop/ksm_app.py. Each gunicorn worker builds its own middleware (and so its own
in-process token cache) when it imports this module.
"""

import json
import os
import sys

sys.argv = sys.argv[:1]  # oslo.config must not see gunicorn's flags

from keystonemiddleware import auth_token  # noqa: E402


def app(environ, start_response):
    ok = environ.get("HTTP_X_IDENTITY_STATUS") == "Confirmed"
    body = b"ok" if ok else b"no identity"
    start_response("200 OK" if ok else "500 Internal Server Error",
                   [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = auth_token.AuthProtocol(app, json.loads(os.environ["BENCH_KSM_CONF"]))
