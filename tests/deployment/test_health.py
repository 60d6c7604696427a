"""Health checks of a version applied to its instances: the EXEC wrapper on its own (fast), how
instance commands are wrapped, and a real instance on a worker whose EXEC check fails and
recovers."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from apps.deployment import services
from apps.deployment.choices import ServiceStatus
from apps.deployment.models import AiAppVersion
from apps.deployment.serving import MODELSERVER_DIR, instance_command, service_create, service_stop
from apps.runtime.logstream import log_read
from apps.runtime.models import Run
from tests.deployment.conftest import service_events, wait_for

HEALTHEXEC = str(MODELSERVER_DIR / "atelier_modelserver" / "healthexec.py")


def _wrapper(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, HEALTHEXEC, *args], capture_output=True, text=True, timeout=30)


def test_a_failing_exec_check_stops_the_child_after_the_threshold():
    started = time.monotonic()
    done = _wrapper("--command", "echo not ready >&2; exit 3", "--period", "1", "--failures", "2", "--",
                    sys.executable, "-c", "import time; time.sleep(60)")
    assert done.returncode == 70
    assert time.monotonic() - started < 15  # the 60 s child was stopped, not waited for
    lines = done.stdout.splitlines()
    assert lines[0] == "[health] Health check failed (1/2): echo not ready >&2; exit 3: exit code 3: not ready."
    assert lines[-1] == ("[health] Health check failed 2 times in a row during startup: echo not ready >&2; exit 3: "
                         "exit code 3: not ready. Stopping the instance so that it is restarted.")


def test_a_passing_exec_check_sees_the_instance_environment_and_keeps_the_exit_code():
    done = subprocess.run([sys.executable, HEALTHEXEC, "--command", "test \"$CHECK_ME\" = yes", "--period", "1",
                           "--failures", "1", "--", sys.executable, "-c", "import time, sys; time.sleep(1.5); sys.exit(4)"],
                          capture_output=True, text=True, timeout=30, env={"CHECK_ME": "yes", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 4
    assert done.stdout.splitlines() == ['[health] Health check passed (test "$CHECK_ME" = yes).']


def test_the_delay_postpones_the_first_check():
    done = _wrapper("--command", "exit 1", "--delay", "30", "--failures", "1", "--",
                    sys.executable, "-c", "import time; time.sleep(1)")
    assert done.returncode == 0 and done.stdout == ""


@pytest.mark.django_db
def test_instance_commands_are_wrapped_for_exec_checks_only(owner, workspace):
    version = services.ai_app_create(
        user=owner, workspace=workspace, name="custom", source_type="command", command=["server", "--port", "$PORT"],
        health={"check_method": "EXEC", "command": "test -f /tmp/ok", "period_seconds": 7, "initial_delay_seconds": 4,
                "failure_threshold": 2})
    argv, health_path, _inputs, _env = instance_command(version)
    assert argv == ["python", HEALTHEXEC, "--command", "test -f /tmp/ok", "--period", "7", "--delay", "4",
                    "--failures", "2", "--timeout", "5", "--", "server", "--port", "$PORT"]
    assert health_path == ""  # ready when the port answers; the wrapper checks from then on
    image = services.ai_app_create(
        user=owner, workspace=workspace, name="boxed", source_type="image", image="registry.local/srv:1",
        health={"check_method": "EXEC", "command": "cat /tmp/ok", "period_seconds": 5, "failure_threshold": 3})
    argv = instance_command(image)[0]
    assert argv[argv.index("--") - 1] == "--container"
    assert argv[argv.index("--") + 1:][:4] == ["python", "-m", "atelier_modelserver.container", "--image"]
    http = services.ai_app_create(
        user=owner, workspace=workspace, name="plain", source_type="command", command=["server"],
        health={"check_method": "HTTP", "url": "/ping", "period_seconds": 5, "failure_threshold": 3})
    assert instance_command(http)[:2] == (["server"], "/ping")


# A server that answers every GET with 200 on $PORT.
SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_exec_check_restarts_a_real_instance_until_it_is_healthy_again(deploy_worker, owner, workspace,
                                                                          cpu_flavor, local_pool, tmp_path,
                                                                          settings):
    settings.ATELIER_DEPLOYMENT_INSTANCE_RESTARTS = 3
    deploy_worker(concurrency=2)
    flag = tmp_path / "healthy"
    flag.write_text("yes")
    version = services.ai_app_create(
        user=owner, workspace=workspace, name="probed", source_type="command", command=[sys.executable, "-c", SERVER],
        health={"check_method": "EXEC", "command": 'test -f "$FLAG"', "period_seconds": 1,
                "failure_threshold": 2})
    services.ai_app_version_import(version_id=version.pk)
    version = AiAppVersion.objects.get(pk=version.pk)
    service = service_create(user=owner, workspace=workspace, name="probed-svc", versions=[
        {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool,
         "env": {"FLAG": str(flag)}}])
    run = Run.objects.get(service_instance__service=service)
    wait_for(lambda: service.__class__.objects.get(pk=service.pk).status == ServiceStatus.RUNNING, timeout=60,
             message="the service to run")
    wait_for(lambda: any("[health] Health check passed" in line for line in log_read(run, limit=200).lines),
             timeout=30, message="a passing check in the instance log")

    flag.unlink()  # the instance turns unhealthy: the wrapper stops it, the engine restarts it
    wait_for(lambda: Run.objects.get(pk=run.pk).auto_restarts >= 1, timeout=60, message="a restart")
    lines = log_read(run, limit=500).lines
    assert any(line.startswith(f'[health] Health check failed 2 times in a row after it was healthy: test -f "$FLAG": '
                               "exit code 1.") for line in lines), lines
    flag.write_text("yes")
    wait_for(lambda: (Run.objects.get(pk=run.pk).ready_at is not None
                      and service.__class__.objects.get(pk=service.pk).status == ServiceStatus.RUNNING),
             timeout=60, message="the restarted instance to serve again")
    service_stop(user=owner, service=service)
    wait_for(lambda: service.__class__.objects.get(pk=service.pk).status == ServiceStatus.STOPPED, timeout=60,
             message="the service to stop")
    assert "Service stopped." in service_events(service)
