"""Core services: audit entries and realtime publishing."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import async_to_sync
from channels.layers import channel_layers

from apps.core.choices import AuditResult
from apps.core.models import AuditEntry
from apps.core.services import audit_record, publish


def off_loop(fn, *args):
    """Run `fn` in a fresh thread: once the session's browser is up, this thread runs an event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result(timeout=15)


# A layer of the tests' own: the in-process ASGI server of other tests keeps the shared
# layer's receive state bound to its (stopped) event loop.
LAYER = channel_layers.make_backend("default")


def subscribe(group: str) -> str:
    def join():
        layer = LAYER
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(group, channel)
        return channel

    return off_loop(join)


def receive(channel: str) -> dict:
    async def wait():
        return await asyncio.wait_for(LAYER.receive(channel), timeout=5)

    return off_loop(async_to_sync(wait))


def test_publish_delivers_to_the_group():
    channel = subscribe("tests.thing.1")
    publish("tests.thing.1", {"kind": "event", "message": "hello"})
    assert receive(channel) == {"type": "publish", "payload": {"kind": "event", "message": "hello"}}


def test_publish_works_from_a_thread_running_an_event_loop():
    # Async callers (and Playwright's sync API in browser tests) run a loop in this thread,
    # where async_to_sync refuses; publish must still deliver.
    channel = subscribe("tests.thing.2")

    async def caller():
        publish("tests.thing.2", {"kind": "activity"})

    off_loop(asyncio.run, caller())
    assert receive(channel) == {"type": "publish", "payload": {"kind": "activity"}}


def test_publish_returns_at_once_and_keeps_call_order():
    channel = subscribe("tests.thing.3")
    for n in range(50):
        publish("tests.thing.3", {"n": n})
    assert [receive(channel)["payload"]["n"] for _ in range(50)] == list(range(50))


def test_audit_record_signals_the_workspace_only_after_commit(owner, workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        entry = audit_record(actor=owner, action="bucket:create", workspace=workspace, object_repr="raw-images",
                             detail={"quota_gb": 50})
    assert len(callbacks) == 1
    channel = subscribe(f"accounts.workspace.{workspace.pk}")
    callbacks[0]()
    assert receive(channel)["payload"] == {"kind": "activity"}
    assert (entry.actor, entry.actor_name, entry.workspace, entry.result, entry.detail) == (
        owner, "alice", workspace, AuditResult.SUCCESS, {"quota_gb": 50})


def test_platform_entries_signal_no_workspace(owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        audit_record(actor=owner, action="token:create", object_repr="laptop")
    assert callbacks == []
    assert AuditEntry.objects.filter(action="token:create", workspace=None).count() == 1


def test_system_entries_have_no_actor(workspace):
    entry = audit_record(actor=None, action="run:lost", workspace=workspace, object_repr="run 7",
                         result=AuditResult.FAILURE)
    assert (entry.actor, entry.actor_name, str(entry)) == (None, "", "system run:lost run 7 (failure)")
