"""The console's ASGI handler (console/http_handler.py): one worker-thread hop per request.

Driven over the raw ASGI protocol, as uvicorn drives it: the request_started signal, the
middleware chain, the view and (for ordinary responses) request_finished all run in the same
worker thread; bodies arrive intact; streaming responses are sent in full before they close.
"""
from __future__ import annotations

import asyncio
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from console.http_handler import ConsoleASGIHandler

SEEN: dict[str, list] = {"threads": [], "closed": []}


@csrf_exempt
def echo(request):
    SEEN["threads"].append(("view", threading.get_ident()))
    return JsonResponse({"method": request.method, "body": request.body.decode()})


def stream(request):
    from django.contrib.auth import get_user_model

    get_user_model().objects.count()  # a connection opened in the pooled thread, closed before streaming

    class Body:
        def __iter__(self):
            yield from (b"part-%d;" % i for i in range(3))

        def close(self):
            SEEN["closed"].append("stream")

    return StreamingHttpResponse(Body(), content_type="text/plain")


def missing(request):
    return HttpResponse("gone", status=404)


urlpatterns = [path("_h/echo/", echo), path("_h/stream/", stream), path("_h/missing/", missing)]


def _scope(method: str, url: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": url, "raw_path": url.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver"), (b"content-type", b"text/plain")],
            "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}


# Requests run on an event loop of their own in one long-lived thread: the test process may
# already have a loop running in the main thread (Playwright's sync API does).
_loop_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-http-loop")


def _run(coroutine):
    return _loop_thread.submit(asyncio.run, coroutine).result(30)


async def _call(method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
    app = ApplicationCommunicator(ConsoleASGIHandler(), _scope(method, url))
    # The body in two chunks, as a client sending a larger request would.
    await app.send_input({"type": "http.request", "body": body[:3], "more_body": True})
    await app.send_input({"type": "http.request", "body": body[3:], "more_body": False})
    start = await app.receive_output(5)
    assert start["type"] == "http.response.start"
    chunks = SEEN["messages"] = []
    while True:
        message = await app.receive_output(5)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await app.wait(5)
    return start["status"], b"".join(chunks)


@pytest.fixture
def recorded(monkeypatch):
    SEEN["threads"].clear()
    SEEN["closed"].clear()
    SEEN["hops"] = 0
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):  # every loop → worker-thread crossing goes through here
        SEEN["hops"] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)

    def started(**kwargs):
        SEEN["threads"].append(("started", threading.get_ident()))

    def finished(**kwargs):
        SEEN["threads"].append(("finished", threading.get_ident()))

    signals.request_started.connect(started, weak=False)
    signals.request_finished.connect(finished, weak=False)
    yield SEEN
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


@pytest.mark.urls("tests.core.test_http_handler")
def test_signal_middleware_view_and_close_share_one_thread(recorded):
    status, body = _run(_call("POST", "/_h/echo/", b"hello world"))
    assert status == 200 and body == b'{"method": "POST", "body": "hello world"}'
    names = [name for name, _ in recorded["threads"]]
    assert names == ["started", "view", "finished"]
    threads = {ident for _, ident in recorded["threads"]}
    assert len(threads) == 1 and threading.get_ident() not in threads  # off the event loop
    assert recorded["hops"] == 1  # Django's stock handler makes five


@pytest.mark.urls("tests.core.test_http_handler")
def test_threads_are_reused_not_started_per_request(recorded, monkeypatch):
    _run(_call("POST", "/_h/echo/", b"warm-up"))  # the pool's first thread
    started = []
    original = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self.name) or original(self))
    for _ in range(3):
        assert _run(_call("POST", "/_h/echo/", b"again"))[0] == 200
    assert started == []  # Django's stock handler starts one per request (ThreadSensitiveContext)


@pytest.mark.urls("tests.core.test_http_handler")
@pytest.mark.django_db(transaction=True)
def test_streaming_is_sent_in_full_then_closed(recorded):
    status, body = _run(_call("GET", "/_h/stream/"))
    assert status == 200 and body == b"part-0;part-1;part-2;"
    assert recorded["closed"] == ["stream"]
    assert [name for name, _ in recorded["threads"]] == ["started", "finished"]


@pytest.mark.urls("tests.core.test_http_handler")
@pytest.mark.django_db(transaction=True)
def test_streams_are_sent_chunk_by_chunk_without_djangos_fallback(recorded):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, body = _run(_call("GET", "/_h/stream/"))
    assert status == 200 and body == b"part-0;part-1;part-2;"
    # Each part is its own message (Django's fallback read them all into a list first, and warned).
    assert recorded["messages"] == [b"part-0;", b"part-1;", b"part-2;", b""]
    assert not [w for w in caught if "synchronous iterators" in str(w.message)]


@pytest.mark.urls("tests.core.test_http_handler")
def test_error_statuses_pass_through(recorded):
    assert _run(_call("GET", "/_h/missing/")) == (404, b"gone")
    status, _ = _run(_call("GET", "/_h/nowhere/"))
    assert status == 404
