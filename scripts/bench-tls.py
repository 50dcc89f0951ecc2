"""Rough figures for TLS on `baton serve`: GET /v3 over TLS and plain HTTP (one keep-alive
connection, and a new connection per request), one request at a time from Python's http.client,
and how long a replaced certificate pair takes to reach new connections (bounded by the
once-a-second look at the files).

    V=$(bash scripts/python-env.sh); BATON_VENV=$V BATON_BIN=target/debug/baton N=300 \
        $V/bin/python scripts/bench-tls.py

Uses tests/interop/test_tls.py's CA (the openssl CLI) and servers; works in /tmp/baton-bench-tls.
"""
import http.client
import os
import shutil
import ssl
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))
from test_tls import TlsBaton, make_ca, openssl  # noqa
from baton_process import Baton
from interop_util import ADMIN_PASSWORD

d = Path("/tmp/baton-bench-tls"); shutil.rmtree(d, ignore_errors=True); d.mkdir(parents=True)
ca = make_ca(d / "ca")
ctx = ssl.create_default_context(cafile=str(ca))
tb = TlsBaton(d / "tls", d / "ca"); tb.write_config(); tb.db_sync(); tb.fernet_setup(); tb.bootstrap(ADMIN_PASSWORD, public_url=tb.auth_url); tb.start()
pb = Baton(d / "plain"); pb.write_config(); pb.db_sync(); pb.fernet_setup(); pb.bootstrap(ADMIN_PASSWORD, public_url=pb.auth_url); pb.start()
N = int(os.environ.get("N", "300"))

def conn(tls, port):
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx) if tls else http.client.HTTPConnection("127.0.0.1", port)

def run(tls, port, keep):
    times = []
    c = conn(tls, port)
    for _ in range(N):
        if not keep:
            c = conn(tls, port)
        t = time.perf_counter(); c.request("GET", "/v3"); r = c.getresponse(); r.read(); times.append((time.perf_counter() - t) * 1000)
        assert r.status == 200
        if not keep:
            c.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]

try:
    for keep in (True, False):
        for tls, port in ((False, pb.port), (True, tb.port)):
            p50, p99 = run(tls, port, keep)
            print(f"{'TLS  ' if tls else 'plain'} {'keep-alive     ' if keep else 'new connection '} GET /v3 x{N}: p50 {p50:.2f} ms p99 {p99:.2f} ms")
    # reload: a new leaf in place; time until a new connection presents it.
    cd = d / "ca"
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "new.key", "-out", "new.csr", "-subj", "/CN=renewed", cwd=cd)
    openssl("x509", "-req", "-in", "new.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "new.crt", "-days", "2", "-extfile", "leaf.ext", cwd=cd)
    lat = []
    for i in range(5):
        time.sleep(1.2)
        if i == 0:
            shutil.copy(cd / "server.crt", cd / "orig.crt"); shutil.copy(cd / "server.key", cd / "orig.key")
        pair = ("new.crt", "new.key") if i % 2 == 0 else ("orig.crt", "orig.key")
        want = (cd / pair[0]).read_text()
        shutil.copy(cd / pair[0], cd / "tmp.crt"); shutil.copy(cd / pair[1], cd / "tmp.key")
        t = time.perf_counter()
        os.rename(cd / "tmp.key", cd / "server.key"); os.rename(cd / "tmp.crt", cd / "server.crt")
        while True:
            c = conn(True, tb.port); c.connect()
            der = c.sock.getpeercert(binary_form=True); c.close()
            if ssl.DER_cert_to_PEM_cert(der).split() == want.split():
                break
            time.sleep(0.01)
        lat.append((time.perf_counter() - t) * 1000)
    print("replaced pair reaches new connections after (ms):", " ".join(f"{x:.0f}" for x in lat))
finally:
    tb.stop(); pb.stop()
