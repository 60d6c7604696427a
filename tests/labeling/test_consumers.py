"""The presence consumer over a real ASGI server running `console.asgi.application` (session
cookie, Origin check, routing): members of the job's workspace see each other join and leave
and receive saves; an outsider, an anonymous socket and a sample of another job are refused
with the same close code.

(channels.testing's WebsocketCommunicator needs daphne, which the console does not ship; the
socket here goes through the same server the browser uses, as tests/core/test_consumers.py does.)
"""
from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from apps.core.consumers import DENIED_CLOSE_CODE
from apps.datasets.choices import LabelType

pytestmark = pytest.mark.django_db(transaction=True)


def open_socket(server, path: str, user=None):
    headers = {}
    if user is not None:
        client = Client()
        client.force_login(user)
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return connect(server.url.replace("http", "ws") + path, origin=server.url, additional_headers=headers,
                   open_timeout=5)


def receive(ws) -> dict:
    return json.loads(ws.recv(timeout=5))


def close_code(server, path: str, user=None) -> int:
    with open_socket(server, path, user) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    return closed.value.rcvd.code


def test_members_see_each_other_join_and_leave(asgi_server, owner, teammate, make_job, add_sample):
    job = make_job(LabelType.OBJECT_DETECTION)
    sample = add_sample(job.dataset)
    path = f"/ws/labeling/presence/{job.pk}/{sample.pk}/"
    with open_socket(asgi_server, path, owner) as alice:
        me = receive(alice)
        assert (me["kind"], me["event"], me["user"]) == ("presence", "self", "alice")
        with open_socket(asgi_server, path, teammate) as bob:
            bob_self = receive(bob)
            assert (bob_self["event"], bob_self["user"]) == ("self", "bob")
            assert receive(alice) == {"kind": "presence", "event": "join", "id": bob_self["id"], "user": "bob"}
            # Whoever is already there answers the newcomer directly.
            assert receive(bob) == {"kind": "presence", "event": "here", "id": me["id"], "user": "alice"}
        assert receive(alice) == {"kind": "presence", "event": "leave", "id": bob_self["id"], "user": "bob"}


def test_a_save_reaches_the_open_workbench(asgi_server, owner, make_job, add_sample):
    from apps.labeling.services import annotations_save

    job = make_job(LabelType.OBJECT_DETECTION)
    sample = add_sample(job.dataset)
    with open_socket(asgi_server, f"/ws/labeling/presence/{job.pk}/{sample.pk}/", owner) as ws:
        receive(ws)  # self
        with transaction.atomic():
            annotations_save(user=owner, job=job, sample=sample, version=0, annotations=[
                {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}}])
        assert receive(ws) == {"kind": "saved", "version": 1, "by": "alice", "status": "labeled"}


def test_outsider_anonymous_and_foreign_sample_are_refused(asgi_server, owner, outsider, make_job, add_sample):
    job, other = make_job(LabelType.OBJECT_DETECTION), make_job(LabelType.OBJECT_DETECTION)
    sample, foreign = add_sample(job.dataset), add_sample(other.dataset)
    path = f"/ws/labeling/presence/{job.pk}/{sample.pk}/"
    assert close_code(asgi_server, path, outsider) == DENIED_CLOSE_CODE == 4404
    assert close_code(asgi_server, path) == DENIED_CLOSE_CODE
    assert close_code(asgi_server, f"/ws/labeling/presence/{job.pk}/{foreign.pk}/", owner) == DENIED_CLOSE_CODE
    assert close_code(asgi_server, f"/ws/labeling/presence/{other.pk}/{sample.pk}/", owner) == DENIED_CLOSE_CODE
    assert close_code(asgi_server, f"/ws/labeling/presence/999999/{sample.pk}/", owner) == DENIED_CLOSE_CODE
    # The outsider never shows up to the people on the sample.
    with open_socket(asgi_server, path, owner) as alice:
        receive(alice)
        assert close_code(asgi_server, path, outsider) == DENIED_CLOSE_CODE
        with pytest.raises(TimeoutError):
            alice.recv(timeout=1)
