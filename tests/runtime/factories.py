"""Factories for run-engine rows that tests need without a real worker."""
from __future__ import annotations

from django.utils import timezone

from apps.runtime.models import WorkerNode


def make_worker(*, hostname="w1@test", pools=(), cpus=4, memory_mb=8192, gpus=0, slots=2, online=True,
                heartbeat=None) -> WorkerNode:
    """A registered worker row (no process behind it) serving `pools`."""
    now = timezone.now()
    node = WorkerNode.objects.create(
        hostname=hostname, host="127.0.0.1", cpus=cpus, memory_mb=memory_mb,
        gpus=[{"index": i, "name": "declared GPU", "memory_mb": 0} for i in range(gpus)], slots=slots,
        status="online" if online else "offline", started_at=now, last_heartbeat=heartbeat or now,
    )
    node.pools.set(list(pools))
    return node


def member(owner, workspace, username: str, role: str):
    """A user with `role` in the owner's workspace."""
    from apps.accounts.services import membership_set
    from tests.conftest import make_user

    user = make_user(username)
    membership_set(actor=owner, workspace=workspace, user=user, role=role)
    return user
