"""Long-lived runs that declare a TLS health check: ready only after a 2xx over TLS."""
from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.request

import pytest

from apps.runtime.choices import RunStatus
from apps.runtime.models import Run
from apps.runtime.services import run_stop

from .conftest import events_of, submit, wait_for, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Serves HTTPS only on $PORT with a self-signed certificate; /health answers 503 until the file
# $HEALTHY exists, and every health request is recorded in $PROBES (one line each).
SERVER = """
import http.server, os, ssl
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.environ["PROBES"], "a") as probes:
            probes.write(self.path + "\\n")
        healthy = self.path == "/health" and os.path.exists(os.environ["HEALTHY"])
        self.send_response(200 if healthy else 503)
        self.end_headers()
        self.wfile.write(b"ok" if healthy else b"starting")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.environ["CERT"], os.environ["KEY"])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving TLS on", os.environ["PORT"], flush=True)
server.serve_forever()
"""


def _certificate(tmp_path):
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                           "-nodes", "-days", "1", "-subj", "/CN=atelier-test", "-keyout", str(tmp_path / "key.pem"),
                           "-out", str(tmp_path / "cert.pem")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


def test_a_tls_server_is_ready_only_after_its_health_path_answers_2xx_over_tls(
        engine_worker, owner, workspace, cpu_flavor, local_pool, tmp_path):
    cert, key = _certificate(tmp_path)
    probes, healthy = tmp_path / "probes.txt", tmp_path / "healthy"
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SERVER], long_lived=True,
                 health_path="/health", health_tls=True, job_type="inference",
                 env={"CERT": cert, "KEY": key, "PROBES": str(probes), "HEALTHY": str(healthy)})
    assert Run.objects.get(pk=run.pk).health_tls

    # The engine asks /health over TLS (a plain-HTTP request would fail the handshake and never
    # reach the handler) and a 503 keeps the run from being ready.
    wait_for(lambda: probes.exists() and probes.read_text().count("/health\n") >= 2, timeout=30,
             message="two TLS health probes")
    fresh = Run.objects.get(pk=run.pk)
    assert fresh.status == RunStatus.RUNNING and fresh.ready_at is None and not fresh.endpoint

    healthy.touch()
    fresh = wait_for(lambda: Run.objects.filter(pk=run.pk, ready_at__isnull=False).first(), timeout=30,
                     message="the TLS server to be ready")
    assert f"Ready at {fresh.endpoint}." in events_of(fresh)
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    with urllib.request.urlopen(f"https://{fresh.endpoint}/health", timeout=5, context=context) as response:
        assert response.read() == b"ok"

    run_stop(user=owner, run=fresh)
    wait_status(fresh, RunStatus.STOPPED, timeout=15)
