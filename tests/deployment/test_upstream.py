"""The gateway's HTTP/1.1 client against small asyncio servers: body framings, keep-alive reuse,
the retry of a request that met a connection the server had just closed, timeouts, refusals."""
from __future__ import annotations

import asyncio
import threading

import pytest

from apps.deployment import upstream


def run(coroutine_function) -> None:
    """Run in a thread with its own event loop (Playwright's sync API may hold this thread's loop)."""
    errors = []

    def target():
        try:
            asyncio.run(coroutine_function())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    if errors:
        raise errors[0]


async def serve(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def read_request(reader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length")), 0)
    return head + await reader.readexactly(length)


async def body_of(response) -> bytes:
    return b"".join([chunk async for chunk in response.body])


def test_framings_and_keep_alive_reuse():
    async def main():
        connections = []

        async def handler(reader, writer):
            connections.append(writer)
            while True:
                try:
                    request = await read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                if b"/chunked" in request:
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 4\r\nx-a: 1\r\n\r\nbody")
                await writer.drain()

        server, endpoint = await serve(handler)
        pool = upstream.Pool()
        try:
            first = await upstream.request(pool, scheme="http", endpoint=endpoint, method="POST", target="/sized",
                                           headers=[(b"x-b", b"2")], body=b"{}", timeout=5)
            assert (first.status, dict(first.headers)[b"x-a"], await body_of(first)) == (201, b"1", b"body")
            second = await upstream.request(pool, scheme="http", endpoint=endpoint, method="GET", target="/chunked",
                                            headers=[], body=b"", timeout=5)
            assert (second.status, await body_of(second)) == (200, b"hello world")
            assert len(connections) == 1  # both requests used one keep-alive connection
        finally:
            server.close()

    run(main)


def test_a_request_on_a_connection_the_server_closed_is_retried_once():
    async def main():
        served = []

        async def handler(reader, writer):
            request = await read_request(reader)
            served.append(request)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()  # no keep-alive, but without saying so: the pooled connection is stale

        server, endpoint = await serve(handler)
        pool = upstream.Pool()
        try:
            for _ in range(2):
                response = await upstream.request(pool, scheme="http", endpoint=endpoint, method="POST", target="/",
                                                  headers=[], body=b"x", timeout=5)
                assert await body_of(response) == b"ok"
            await asyncio.sleep(0.05)
            third = await upstream.request(pool, scheme="http", endpoint=endpoint, method="POST", target="/",
                                           headers=[], body=b"x", timeout=5)
            assert await body_of(third) == b"ok"
            assert len(served) == 3
        finally:
            server.close()

    run(main)


def test_timeout_and_refusal():
    async def main():
        async def silent(reader, writer):
            await read_request(reader)
            await asyncio.sleep(5)

        server, endpoint = await serve(silent)
        pool = upstream.Pool()
        try:
            with pytest.raises(upstream.UpstreamTimeout, match="no answer within 0.2 s"):
                await upstream.request(pool, scheme="http", endpoint=endpoint, method="POST", target="/", headers=[],
                                       body=b"", timeout=0.2)
        finally:
            server.close()
        from tests.harness import free_port

        with pytest.raises(upstream.UpstreamError, match="connection refused"):
            await upstream.request(pool, scheme="http", endpoint=f"127.0.0.1:{free_port()}", method="GET",
                                   target="/", headers=[], body=b"", timeout=1)

    run(main)
