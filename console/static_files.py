"""Static files served on the event loop, in front of Django in the ASGI app (console/asgi.py).

WhiteNoise's Django middleware answers with a FileResponse over a synchronous file iterator.
Django's ASGI handler cannot iterate that asynchronously: it warns ("StreamingHttpResponse must
consume synchronous iterators") and reads the whole file into a list on a worker thread before
sending a byte, so a 4.6 MB plotly.min.js held a thread and its size in memory per download.

Here the same WhiteNoise file index answers instead: the same URLs (STATIC_ROOT and, with
WHITENOISE_USE_FINDERS, the finders), the same headers (Cache-Control with WHITENOISE_MAX_AGE,
a year and `immutable` for hashed names, ETag/Last-Modified, 304s, Range, Vary and the .br/.gz
variants chosen by Accept-Encoding), and the security headers Django's SecurityMiddleware put on
them before. The file is read in 256 KiB chunks off the loop and each chunk is sent as it is read,
so a download holds neither a thread nor the whole file. The middleware stays in MIDDLEWARE for
WSGI and the test client; under ASGI a static URL never reaches it.
"""
from __future__ import annotations

import asyncio
import io

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from whitenoise.middleware import WhiteNoiseMiddleware

# Read size per chunk: large enough that a 5 MB file needs ~20 thread hops, small enough that
# the server's write buffer (which applies back-pressure through `send`) bounds memory.
CHUNK_BYTES = 256 * 1024
SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"


def _unused(request):  # pragma: no cover - never called
    raise AssertionError("SecurityMiddleware is only asked for its headers here")


class StaticFilesASGI:
    """ASGI app: serve the static URLs WhiteNoise knows, hand everything else to `app`."""

    def __init__(self, app):
        self.app = app
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)
        self.prefix = self.whitenoise.static_prefix
        # Files outside the static prefix only exist when WHITENOISE_ROOT is set.
        self.prefix_only = not getattr(settings, "WHITENOISE_ROOT", None)
        # Asked only for its headers and its https redirect setting; the chain it would wrap is Django's.
        self.security = SecurityMiddleware(_unused) if SECURITY_MIDDLEWARE in settings.MIDDLEWARE else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = self.path_info(scope)
        if self.prefix_only and not path.startswith(self.prefix):
            return await self.app(scope, receive, send)
        if self.whitenoise.autorefresh:
            # DEBUG: look the file up now (finders, stat), off the loop.
            static_file = await asyncio.to_thread(self.whitenoise.find_file, path)
        else:
            static_file = self.whitenoise.files.get(path)
        if static_file is None:
            return await self.app(scope, receive, send)  # Django answers the 404
        request = ASGIRequest(scope, io.BytesIO())
        extra_headers = self.security_headers(request)
        if extra_headers is None:
            return await self.app(scope, receive, send)  # SECURE_SSL_REDIRECT: Django redirects
        response = static_file.get_response(request.method, request.META)
        await self.send_file(response, extra_headers, receive, send)

    @staticmethod
    def path_info(scope) -> str:
        """The path without the ASGI root_path, as Django's request.path_info reads it."""
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            return path[len(root):] or "/"
        return path

    def security_headers(self, request) -> list[tuple[str, str]] | None:
        """The headers SecurityMiddleware adds (nosniff, Referrer-Policy, COOP, HSTS on https), or
        None when it would redirect the request to https instead."""
        if self.security is None:
            return []
        if self.security.redirect and not request.is_secure():
            return None  # Django's chain redirects (and answers a disallowed Host with its 400)
        carrier = HttpResponse()
        del carrier["Content-Type"]
        self.security.process_response(request, carrier)
        return list(carrier.items())

    async def send_file(self, response, extra_headers, receive, send) -> None:
        names = {name.lower() for name, _ in response.headers}
        headers = [(name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.headers]
        headers += [(name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in extra_headers if name.lower() not in names]
        await send({"type": "http.response.start", "status": int(response.status), "headers": headers})
        body = response.file
        if body is None:  # HEAD, 304, 405, 416
            await send({"type": "http.response.body", "body": b""})
            return
        # As Django does: stop reading when the client goes away.
        streaming = asyncio.create_task(self.stream(body, send))
        disconnect = asyncio.create_task(self.wait_for_disconnect(receive))
        try:
            await asyncio.wait([streaming, disconnect], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, disconnect):
                task.cancel()
            await asyncio.gather(streaming, disconnect, return_exceptions=True)
            body.close()
        if streaming.done() and not streaming.cancelled() and streaming.exception() is not None:
            if not isinstance(streaming.exception(), OSError):  # OSError: the client went away mid-send
                raise streaming.exception()

    @staticmethod
    async def stream(body, send) -> None:
        """Send the file chunk by chunk; one chunk is read ahead so the last message says it is last."""
        loop = asyncio.get_running_loop()
        chunk = await loop.run_in_executor(None, body.read, CHUNK_BYTES)
        while True:
            following = await loop.run_in_executor(None, body.read, CHUNK_BYTES) if chunk else b""
            await send({"type": "http.response.body", "body": chunk, "more_body": bool(following)})
            if not following:
                return
            chunk = following

    @staticmethod
    async def wait_for_disconnect(receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
