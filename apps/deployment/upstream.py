"""A small HTTP/1.1 client for the gateway's hop to instances: pooled keep-alive connections,
streamed bodies, per-read timeouts.

Why not httpx: on the console's hot path a general client's per-request machinery costs several
milliseconds on a small machine, while the gateway's budget for its whole hop is about one
(anchors-mlops §5: KServe's proxy adds 2–3 ms). This client does only what the hop needs:
one request per connection at a time, `Content-Length` request bodies (the gateway has read the
whole body already), responses framed by Content-Length, chunked encoding or connection close.

A request on a reused connection that fails before any response byte arrived is retried once on
a new connection: the instance closed an idle keep-alive connection just as it was picked up,
so it never saw the request.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

# Bytes read at a time while streaming a body; a read returns as soon as data is there (SSE).
READ_SIZE = 65536
# Longest response head accepted (status line and headers).
MAX_HEAD = 65536


class UpstreamError(Exception):
    """Connecting or talking to the instance failed (refused, reset, malformed answer)."""


class UpstreamTimeout(UpstreamError):
    """The instance did not answer within the time limit."""


class UpstreamProtocolMismatch(UpstreamError):
    """The instance speaks the other protocol than its AI application declares (HTTP vs HTTPS).

    A configuration error, not a failing instance: every call fails the same way until the
    application's protocol (or the image) is fixed, so the gateway answers it at once with the
    ModelArts message (seed-06 §5.6, ModelArts.4503) instead of counting it against the instance.
    """

    def __init__(self, *, declared: str, endpoint: str, detail: str = ""):
        self.declared = declared
        if declared == "https":
            message = ("Failed to find backend service because SSL error in the backend service, please check the "
                       "service is https")
        else:
            message = ("Failed to find backend service because the backend service answered with TLS (HTTPS) while "
                       "its AI application declares HTTP, please check the service is http")
        super().__init__(message)
        self.detail = f"{endpoint}: {detail}" if detail else endpoint


# Longest wait for the one TLS handshake that tells whether a silent instance speaks TLS: on the
# worker's network a handshake takes milliseconds, and a plain server may sit on it until its timeout.
TLS_PROBE_SECONDS = 1.0
# How TLS records start: content type 0x15 (alert) or 0x16 (handshake), then major version 3.
TLS_RECORD_STARTS = (b"\x15\x03", b"\x16\x03")


@dataclass
class Connection:
    key: tuple[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = False
    idle_since: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # closing a broken transport must not raise into the caller
            pass


def _insecure_context() -> ssl.SSLContext:
    # Instances of custom images may serve HTTPS with self-signed certificates (seed-06 §9.5).
    # Verifying them would buy nothing: the instance is on the worker's loopback or private
    # network and its address comes from the run engine, not from the caller; TLS here only
    # honours the protocol the image declares.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def instance_tls_context() -> ssl.SSLContext:
    """The TLS context for instances that declare HTTPS (WebSocket relays use it too)."""
    global _TLS
    if _TLS is None:
        _TLS = _insecure_context()
    return _TLS


_TLS: ssl.SSLContext | None = None


class Pool:
    """Idle keep-alive connections per (scheme, host:port); one event loop only."""

    def __init__(self, *, max_idle: int = 64, idle_seconds: float = 30.0):
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        self.idle: dict[tuple[str, str], deque[Connection]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def acquire(self, scheme: str, endpoint: str, connect_timeout: float) -> Connection:
        key = (scheme, endpoint)
        queue = self.idle.get(key)
        now = time.monotonic()
        while queue:
            conn = queue.pop()
            if now - conn.idle_since < self.idle_seconds and not conn.reader.at_eof() \
                    and not conn.writer.is_closing():
                conn.reused = True
                return conn
            conn.close()
        host, _, port = endpoint.rpartition(":")
        if scheme == "https" and self._ssl is None:
            self._ssl = _insecure_context()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port), ssl=self._ssl if scheme == "https" else None, limit=MAX_HEAD),
                connect_timeout)
        except asyncio.TimeoutError:
            raise UpstreamError(f"connection to {endpoint} timed out") from None
        except ssl.SSLError as exc:
            # The port answers, but not with TLS: the image serves plain HTTP (a refused
            # connection is an OSError, not an SSLError).
            raise UpstreamProtocolMismatch(declared="https", endpoint=endpoint, detail=str(exc)) from None
        except (OSError, ValueError) as exc:
            raise UpstreamError(f"connection refused by {endpoint}: {exc}") from None
        return Connection(key, reader, writer)

    def release(self, conn: Connection) -> None:
        queue = self.idle.setdefault(conn.key, deque())
        if len(queue) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        queue.append(conn)

    def forget(self, endpoint: str) -> None:
        """Drop idle connections to an instance (it left the routing table)."""
        for key in [k for k in self.idle if k[1] == endpoint]:
            for conn in self.idle.pop(key):
                conn.close()


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: AsyncIterator[bytes]


def _head(method: str, target: str, endpoint: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {endpoint}\r\ncontent-length: {len(body)}\r\n".encode("latin-1")]
    for name, value in headers:
        lines.append(name + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _parse_head(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise UpstreamError(f"malformed status line from the instance: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise UpstreamError("malformed header line from the instance")
        headers.append((name.strip().lower(), value.strip()))
    return int(parts[1]), headers


async def request(pool: Pool, *, scheme: str, endpoint: str, method: str, target: str,
                  headers: list[tuple[bytes, bytes]], body: bytes, timeout: float,
                  connect_timeout: float = 5.0) -> Response:
    """Send one request; returns once the response head arrived (the body streams from `body`).

    Raises UpstreamTimeout when no head arrives within `timeout`, UpstreamError when the instance
    cannot be reached or answers garbage. The connection goes back to the pool once the body has
    been read to its end, and is closed if the reader stops early.
    """
    payload = _head(method, target, endpoint, headers, body) + body
    for attempt in (1, 2):
        conn = await pool.acquire(scheme, endpoint, connect_timeout)
        try:
            conn.writer.write(payload)
            await conn.writer.drain()
            async with asyncio.timeout(timeout):
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            break
        except TimeoutError:
            conn.close()
            raise UpstreamTimeout(f"no answer within {timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            conn.close()
            partial = getattr(exc, "partial", b"")
            if conn.reused and attempt == 1 and not partial:
                continue  # the instance had closed this idle connection; it never saw the request
            if scheme == "http" and await _answers_tls(endpoint, partial, min(connect_timeout, TLS_PROBE_SECONDS)):
                raise UpstreamProtocolMismatch(declared="http", endpoint=endpoint, detail=str(exc)) from None
            raise UpstreamError(f"the instance closed the connection: {exc}") from None
        except asyncio.LimitOverrunError:
            conn.close()
            raise UpstreamError("the instance's response head is too large") from None
    if scheme == "http" and raw.startswith(TLS_RECORD_STARTS):  # a TLS alert where a status line belongs
        conn.close()
        raise UpstreamProtocolMismatch(declared="http", endpoint=endpoint, detail="answered with a TLS record")
    status, response_headers = _parse_head(raw[:-4])
    values = dict(response_headers)
    keep_alive = values.get(b"connection", b"").lower() != b"close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pool.release(conn) if keep_alive else conn.close()
        return Response(status, response_headers, _empty())
    if b"chunked" in values.get(b"transfer-encoding", b"").lower():
        stream = _chunked(pool, conn, timeout, keep_alive)
    elif b"content-length" in values:
        stream = _sized(pool, conn, int(values[b"content-length"]), timeout, keep_alive)
    else:
        stream = _until_close(conn, timeout)
    return Response(status, response_headers, stream)


async def _answers_tls(endpoint: str, partial: bytes, timeout: float) -> bool:
    """Whether a plain-HTTP instance that answered `partial` and closed really speaks TLS.

    A TLS server meeting a plain request either sends an alert record (recognised from its first
    bytes) or just resets the connection; in that second case one TLS handshake tells. It runs
    only on this failure path, so a healthy instance never pays for it.
    """
    if partial.startswith(TLS_RECORD_STARTS):
        return True
    if partial:
        return False
    host, _, port = endpoint.rpartition(":")
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(host, int(port), ssl=_insecure_context())
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    return True


async def _empty():
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _read(conn: Connection, size: int, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):  # cheaper than wait_for: no task per read
            return await conn.reader.read(size)
    except TimeoutError:
        raise UpstreamTimeout(f"no data within {timeout:g} s") from None


async def _sized(pool: Pool, conn: Connection, length: int, timeout: float, keep_alive: bool):
    remaining = length
    done = False
    try:
        while remaining > 0:
            chunk = await _read(conn, min(READ_SIZE, remaining), timeout)
            if not chunk:
                raise UpstreamError("the instance closed the connection mid-body")
            remaining -= len(chunk)
            yield chunk
        done = True
    finally:
        if done and keep_alive:
            pool.release(conn)
        else:
            conn.close()


async def _chunked(pool: Pool, conn: Connection, timeout: float, keep_alive: bool):
    done = False
    try:
        while True:
            try:
                line = await asyncio.wait_for(conn.reader.readuntil(b"\r\n"), timeout)
            except asyncio.TimeoutError:
                raise UpstreamTimeout(f"no data within {timeout:g} s") from None
            except asyncio.IncompleteReadError:
                raise UpstreamError("the instance closed the connection mid-body") from None
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await asyncio.wait_for(conn.reader.readuntil(b"\r\n"), timeout)) != b"\r\n":
                    pass  # trailers are dropped
                done = True
                return
            remaining = size
            while remaining > 0:
                chunk = await _read(conn, min(READ_SIZE, remaining), timeout)
                if not chunk:
                    raise UpstreamError("the instance closed the connection mid-body")
                remaining -= len(chunk)
                yield chunk
            await asyncio.wait_for(conn.reader.readexactly(2), timeout)
    finally:
        if done and keep_alive:
            pool.release(conn)
        else:
            conn.close()


async def _until_close(conn: Connection, timeout: float):
    try:
        while chunk := await _read(conn, READ_SIZE, timeout):
            yield chunk
    finally:
        conn.close()
