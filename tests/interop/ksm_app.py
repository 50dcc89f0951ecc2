"""The REAL keystonemiddleware auth_token in front of a tiny WSGI app, served by wsgiref on
127.0.0.1 (used by test_authtoken_interop.py; runs as its own process so that oslo.config's
global state stays out of pytest).

    python ksm_app.py PORT CONF_JSON

CONF_JSON is the paste-style option dict for ``auth_token.AuthProtocol``. The app answers 200
with every ``HTTP_X_*`` environ key as JSON (header names lower-cased with dashes).
"""

from __future__ import annotations

import json
import logging
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from keystonemiddleware import auth_token


def app(environ, start_response):
    seen = {k[5:].lower().replace("_", "-"): v for k, v in environ.items()
            if k.startswith("HTTP_X_") or k == "HTTP_OPENSTACK_SYSTEM_SCOPE"}
    body = json.dumps({"headers": seen}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # keep stderr for the middleware's own log
        pass


class Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    port = int(sys.argv[1])
    conf = json.loads(sys.argv[2])
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    wrapped = auth_token.AuthProtocol(app, conf)
    server = make_server("127.0.0.1", port, wrapped, server_class=Threading, handler_class=Quiet)
    print(f"ksm_app listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
