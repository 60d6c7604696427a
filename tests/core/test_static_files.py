"""Static files under ASGI (console/static_files.py): streamed from the event loop, never through
Django's synchronous-iterator fallback, with the caching and security headers WhiteNoise and
SecurityMiddleware give them.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.staticfiles import finders
from django.test import override_settings

from console.static_files import CHUNK_BYTES, StaticFilesASGI

PLOTLY = "vendor/plotly/plotly.min.js"
# What Django's ASGI handler said when WhiteNoise's FileResponse reached it.
FALLBACK_SIGNS = ("StreamingHttpResponse", "__aiter__", "synchronous iterators")


def test_large_static_file_streams_through_the_asgi_server(asgi_server, caplog):
    source = Path(finders.find(PLOTLY)).read_bytes()
    assert len(source) > 10 * CHUNK_BYTES  # large enough to take many chunks
    url = f"{asgi_server.url}/static/{PLOTLY}"
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        with httpx.Client(timeout=30) as client:
            response = client.get(url)
            revalidated = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
            head = client.head(url)
            ranged = client.get(url, headers={"Range": "bytes=100-199"})
    assert response.status_code == 200
    assert response.content == source
    assert response.headers["Content-Length"] == str(len(source))
    assert response.headers["Content-Type"] == 'text/javascript; charset="utf-8"'
    # Not a hashed name: WhiteNoise's WHITENOISE_MAX_AGE default outside DEBUG, public, revalidated by ETag.
    assert response.headers["Cache-Control"] == "max-age=60, public"
    assert response.headers["ETag"].startswith('"') and response.headers["Last-Modified"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == str(len(source))
    assert ranged.status_code == 206 and ranged.content == source[100:200]
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if any(sign in m for sign in FALLBACK_SIGNS)]


def test_a_missing_static_file_and_other_urls_reach_django(asgi_server):
    with httpx.Client(timeout=10) as client:
        missing = client.get(f"{asgi_server.url}/static/vendor/plotly/nothing-here.js")
        health = client.get(f"{asgi_server.url}/healthz")
    assert missing.status_code == 404
    assert "X-Frame-Options" in missing.headers  # Django's middleware chain answered
    assert health.status_code in (200, 503)


# ---- the handler over the raw ASGI protocol, on a collected STATIC_ROOT ---------------------------

HASHED = "app.0123456789ab.js"
BODY = b"console.log('atelier');\n" * 2000

# Requests run on a loop of their own: the test process may already run one (Playwright).
_loop_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-static-loop")


@pytest.fixture
def collected(tmp_path):
    """A STATIC_ROOT as collectstatic with a manifest and compressed variants leaves it."""
    (tmp_path / HASHED).write_bytes(BODY)
    (tmp_path / f"{HASHED}.gz").write_bytes(gzip.compress(BODY))
    (tmp_path / "staticfiles.json").write_text(json.dumps({"paths": {"app.js": HASHED}, "version": "1.1"}))
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages, WHITENOISE_USE_FINDERS=False,
                           WHITENOISE_AUTOREFRESH=False):
        yield StaticFilesASGI(_django_stand_in)


async def _django_stand_in(scope, receive, send):
    await send({"type": "http.response.start", "status": 404, "headers": [(b"x-served-by", b"django")]})
    await send({"type": "http.response.body", "body": b"not static"})


def _get(app, path: str, headers: dict[str, str] | None = None, scheme: str = "http"):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": scheme,
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in
                                                       (headers or {}).items()],
             "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}

    async def call():
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(5)
        chunks = []
        while True:
            message = await communicator.receive_output(5)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await communicator.wait(5)
        return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, b"".join(chunks)

    return _loop_thread.submit(asyncio.run, call()).result(30)


def test_hashed_names_are_immutable_and_compressed_variants_chosen(collected):
    status, headers, body = _get(collected, f"/static/{HASHED}", {"Accept-Encoding": "gzip, deflate"})
    assert status == 200
    assert headers["cache-control"] == "max-age=315360000, public, immutable"
    assert headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == BODY
    status, headers, body = _get(collected, f"/static/{HASHED}")
    assert status == 200 and "content-encoding" not in headers and body == BODY
    assert headers["content-length"] == str(len(BODY))


def test_unhashed_names_and_unknown_paths(collected):
    # The manifest itself is not a hashed name: short max-age.
    status, headers, _ = _get(collected, "/static/staticfiles.json")
    assert status == 200 and headers["cache-control"] == "max-age=60, public"
    status, headers, body = _get(collected, "/static/app.js")  # only the hashed copy was collected
    assert (status, headers.get("x-served-by"), body) == (404, "django", b"not static")
    status, headers, _ = _get(collected, "/datasets/")
    assert (status, headers.get("x-served-by")) == (404, "django")


def test_https_redirect_is_left_to_django(collected):
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600):
        app = StaticFilesASGI(_django_stand_in)
    status, headers, _ = _get(app, f"/static/{HASHED}")
    assert headers.get("x-served-by") == "django"  # SecurityMiddleware redirects there
    status, headers, body = _get(app, f"/static/{HASHED}", scheme="https")
    assert status == 200 and body == BODY
    assert headers["strict-transport-security"] == "max-age=3600"


def test_debug_autorefresh_finds_new_files_through_the_finders(tmp_path, settings):
    """`make run` runs with DEBUG: files are looked up per request (off the loop), never cached long."""
    with override_settings(DEBUG=True, WHITENOISE_AUTOREFRESH=True, WHITENOISE_USE_FINDERS=True,
                           STATICFILES_DIRS=[*settings.STATICFILES_DIRS, ("late", tmp_path)]):
        app = StaticFilesASGI(_django_stand_in)
        assert app.whitenoise.files == {}  # nothing indexed up front
        (tmp_path / "added.js").write_bytes(BODY)  # appears after start, as an edited file does
        status, headers, body = _get(app, "/static/late/added.js")
        assert status == 200 and body == BODY
        assert headers["cache-control"] == "max-age=0, public"
        status, headers, body = _get(app, f"/static/{PLOTLY}")
        assert status == 200 and body == Path(finders.find(PLOTLY)).read_bytes()
        status, headers, _ = _get(app, "/static/late/missing.js")
        assert (status, headers.get("x-served-by")) == (404, "django")
