"""LiveConsumer over a real ASGI server: who may subscribe, and that published payloads arrive.

The browser's path is exercised end to end: session cookie, Origin check, URL routing.
"""
import json

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from apps.core.consumers import DENIED_CLOSE_CODE
from apps.core.services import audit_record, event_add, publish


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def open_socket(server, path: str, user=None):
    headers = {"Cookie": session_cookie(user)} if user is not None else {}
    return connect(server.url.replace("http", "ws") + path, origin=server.url, additional_headers=headers,
                   open_timeout=5)


def close_code(server, path: str, user=None) -> int:
    """Open the socket and wait for the server to close it; returns the close code."""
    with open_socket(server, path, user) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    return closed.value.rcvd.code


def test_member_receives_what_is_published_to_the_workspace(asgi_server, teammate, workspace):
    with open_socket(asgi_server, f"/ws/live/accounts.workspace/{workspace.pk}/", teammate) as ws:
        publish(f"accounts.workspace.{workspace.pk}", {"kind": "activity"})
        assert json.loads(ws.recv(timeout=5)) == {"kind": "activity"}


def test_audit_entries_signal_the_workspace_after_commit(asgi_server, owner, workspace):
    with open_socket(asgi_server, f"/ws/live/accounts.workspace/{workspace.pk}/", owner) as ws:
        with transaction.atomic():
            audit_record(actor=owner, action="bucket:create", workspace=workspace, object_repr="raw")
        assert json.loads(ws.recv(timeout=5)) == {"kind": "activity"}


def test_events_reach_the_objects_timeline(asgi_server, owner, workspace):
    with open_socket(asgi_server, f"/ws/live/accounts.workspace/{workspace.pk}/", owner) as ws:
        with transaction.atomic():
            event = event_add(obj=workspace, message="quota raised to 50 GB", level="warning")
        assert json.loads(ws.recv(timeout=5)) == {
            "kind": "event", "level": "warning", "message": "quota raised to 50 GB", "at": event.created_at.isoformat(),
        }


def test_outsider_anonymous_and_unknown_sources_are_refused_alike(asgi_server, outsider, workspace):
    path = f"/ws/live/accounts.workspace/{workspace.pk}/"
    assert close_code(asgi_server, path, outsider) == DENIED_CLOSE_CODE == 4404
    assert close_code(asgi_server, path) == DENIED_CLOSE_CODE
    assert close_code(asgi_server, "/ws/live/accounts.workspace/999999/", outsider) == DENIED_CLOSE_CODE
    assert close_code(asgi_server, "/ws/live/no.such/1/", outsider) == DENIED_CLOSE_CODE
    assert close_code(asgi_server, "/ws/live/accounts.workspace/not-a-number/", outsider) == DENIED_CLOSE_CODE


def test_refused_socket_receives_nothing_published(asgi_server, outsider, workspace):
    with open_socket(asgi_server, f"/ws/live/accounts.workspace/{workspace.pk}/", outsider) as ws:
        publish(f"accounts.workspace.{workspace.pk}", {"kind": "activity"})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == DENIED_CLOSE_CODE
