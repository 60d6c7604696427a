"""The console's HTTP handler: Django's ASGI handler with one thread hop per request.

Every middleware and every view of the console is synchronous. Django's stock async path
hops between the event loop and the request's worker thread five times per request: the
request_started signal, the middleware chain, back to the loop for its async inner handler,
the view, and response.close() (request_finished). Each hop is a thread handoff, cheap on an
idle machine but a scheduler wait when the cores are busy, which is what pushed the p95 of
the labeling save and the sample list past their targets. Here the whole synchronous part
(signal, request parsing, middleware, view, and for ordinary responses close) runs in one
hop; the event loop only reads the body and writes the answer.

That hop goes to a pool of reused threads. Django's ThreadSensitiveContext starts a new thread
for each request, and starting one blocks the event loop until the thread runs: 2–4 ms a
request on the loaded two-core machine, measured with cProfile on the loop. The context is
kept (Django's streaming path still uses it, and lazily: ordinary responses never start its
thread); the request's database connections are context-local, so pooled threads never share one.

What stays as Django does it: a client disconnect cancels the wait, streaming and file
responses are closed after they are sent, and an async view (none today) still works because
Django wraps it with async_to_sync inside the sync chain. What does not: Django reads a
synchronous stream to its end before sending any of it; here it is pulled chunk by chunk.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.http import FileResponse
from django.urls import set_script_prefix


# Synchronous requests served at once; more wait their turn. Bounded, unlike Django's thread per
# request, because each holds a database connection (on PostgreSQL from the pool,
# ATELIER_DB_POOL_SIZE, which requests beyond it wait for).
HTTP_THREADS = 32
_executor = ThreadPoolExecutor(max_workers=HTTP_THREADS, thread_name_prefix="atelier-http")


async def _chunks_off_loop(iterator):
    """A synchronous response iterator as an async one: each `next` runs off the event loop."""
    pull = sync_to_async(next)
    done = object()
    while (chunk := await pull(iterator, done)) is not done:
        yield chunk


class ConsoleASGIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        # The sync chain: Django builds it around _get_response, no async adapters inside.
        super().load_middleware(is_async=False)

    def _respond(self, scope, body_file):
        """Everything synchronous about one request, run in its worker thread."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # the ASGI server chunks further
        if not response.streaming:
            # The body is rendered: closing now sends request_finished (database
            # connections close) without another hop after sending.
            response.close()
        else:
            # The stream is sent, and closed, from the request's own thread (Django's path);
            # connections opened here belong to this pooled thread and must close in it. A
            # stream that reads the database opens its own there.
            connections.close_all()
        return response

    async def send_response(self, response, send):
        if response.streaming and not response.is_async:
            # Django would list() the whole iterator on a worker thread before sending a byte (and
            # warn); a large download then sat in memory and held the thread. Pull one chunk per
            # hop instead, in the same thread-sensitive context, and send each as it comes.
            response.streaming_content = _chunks_off_loop(response.streaming_content)
        await super().send_response(response, send)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))

        async def process_request():
            respond = sync_to_async(self._respond, thread_sensitive=False, executor=_executor)
            response = await respond(scope, body_file)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while we were sending
            return response

        # As Django does: a disconnect while the response is being produced cancels the wait.
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), asyncio.create_task(process_request())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if response.streaming:
                await sync_to_async(response.close)()
        body_file.close()
