"""The run log as a file download, for the run page and the API."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse

from .logstream import open_log

CHUNK = 1 << 20  # 1 MiB reads keep memory flat for a log of any size


def _chunks(fh) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(CHUNK):
            yield chunk


async def _achunks(fh) -> AsyncIterator[bytes]:
    # Reads block (disk, S3), so each runs in a worker thread; Django's ASGI handler would
    # otherwise read a synchronous iterator entirely into memory before sending it.
    try:
        while chunk := await sync_to_async(fh.read, thread_sensitive=False)(CHUNK):
            yield chunk
    finally:
        await sync_to_async(fh.close, thread_sensitive=False)()


def file_body(request, fh):
    """The content of `fh` for a StreamingHttpResponse, in 1 MiB pieces: read in worker threads under
    ASGI, plainly under WSGI; `fh` is closed at the end. None gives an empty body."""
    if fh is None:
        return iter([b""])
    return _achunks(fh) if isinstance(request, ASGIRequest) else _chunks(fh)


def log_download_response(request, run) -> StreamingHttpResponse:
    """`run-<pk>.log` as an attachment, streamed; empty while the run has written nothing."""
    body = file_body(request, open_log(run))
    response = StreamingHttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.log"'
    return response
