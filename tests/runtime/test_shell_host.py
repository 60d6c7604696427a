"""The worker side of the shell on its own (no Celery, no console): the Redis protocol, the
fallback environment when the run's process cannot be read, and backpressure on output floods."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from apps.runtime import shell
from apps.runtime.launch import scrubbed_environ


@pytest.fixture
def host(tmp_path, settings):
    settings.ATELIER_RUNTIME_SHELL_IDLE_SECONDS = 600
    run = SimpleNamespace(pk=900_000 + int(time.time() * 1000) % 100_000, attempt=1)
    env = {**scrubbed_environ(), "ATELIER_RUN_ID": str(run.pk), "FROM_FALLBACK": "yes"}
    host = shell.ShellHost(run=run, run_dir=tmp_path, cwd=tmp_path, env=env, run_as=None, pid=None).start()
    client = shell.redis_client()
    yield host, client
    host.stop()
    client.close()


def command(client, host, **message):
    client.rpush(shell.in_key(host.run_id), json.dumps(message))


def frames(client, sid, timeout=10.0):
    """Pop frames until one is available, then everything queued behind it."""
    item = client.blpop([shell.out_key(sid)], timeout=timeout)
    assert item is not None, "no frame from the shell host"
    return [item[1], *(client.lpop(shell.out_key(sid), 1000) or [])]


def test_flood_pauses_reading_until_the_console_catches_up(host, tmp_path):
    host, client = host
    assert client.get(shell.host_key(host.run_id)) == b"1"
    client.set(shell.alive_key("s1"), "1", ex=60)
    command(client, host, sid="s1", op="open", cols=80, rows=24, user="alice")
    ready = json.loads(frames(client, "s1")[0][1:])
    assert ready["event"] == "ready" and ready["cwd"] == str(tmp_path)
    command(client, host, sid="s1", op="input", data="echo from=$FROM_FALLBACK; head -c 4000000 /dev/zero; "
                                                          "echo; echo flood-done\r")
    time.sleep(1.5)  # the console reads nothing meanwhile
    waiting = client.llen(shell.out_key("s1"))
    assert shell.PAUSE_FRAMES < waiting <= shell.PAUSE_FRAMES + 2  # paused, not 4 MB in Redis
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while b"\nflood-done" not in b"".join(chunks[-3:]).replace(b"\r", b""):
        assert time.monotonic() < deadline, "the flood did not finish once read"
        chunks += [frame[1:] for frame in frames(client, "s1") if frame[:1] == b"o"]
    received = b"".join(chunks)
    assert b"from=yes" in received  # no readable process: the launch environment is used
    assert received.count(b"\0") == 4_000_000

    command(client, host, sid="s1", op="close", reason="test")
    deadline = time.monotonic() + 10
    while host.sessions:
        assert time.monotonic() < deadline, "the session did not close"
        time.sleep(0.05)


def test_stop_ends_open_shells_at_once_and_withdraws_the_offer(host):
    host, client = host
    client.set(shell.alive_key("s2"), "1", ex=60)
    command(client, host, sid="s2", op="open", cols=80, rows=24, user="alice")
    ready = json.loads(frames(client, "s2")[0][1:])
    started = time.monotonic()
    host.stop()
    assert time.monotonic() - started < 0.8  # no waiting out the command thread's one-second pop
    events = [json.loads(frame[1:]) for frame in frames(client, "s2") if frame[:1] == b"e"]
    assert events[-1] == {"event": "exit", "reason": "run-ended", "message": "The run ended.", "code": None}
    assert client.get(shell.host_key(host.run_id)) is None
    import psutil

    assert not psutil.pid_exists(ready["pid"]) or psutil.Process(ready["pid"]).status() == psutil.STATUS_ZOMBIE
