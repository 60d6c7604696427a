"""File downloads, streamed from the storage backend (pages and the API share this)."""
from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header, http_date

from apps.core.paths import StoragePath
from apps.core.storage import CHUNK, get_storage


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(CHUNK):
            yield chunk


async def _achunks(fh: BinaryIO) -> AsyncIterator[bytes]:
    # Backend reads block (disk, S3), so each one runs in a worker thread.
    try:
        while chunk := await sync_to_async(fh.read, thread_sensitive=False)(CHUNK):
            yield chunk
    finally:
        await sync_to_async(fh.close, thread_sensitive=False)()


def download_response(request, path: StoragePath) -> StreamingHttpResponse:
    """A streamed attachment response for the file at `path` (raises storage NotFound).

    Under ASGI the body is an async iterator: Django's ASGI handler would otherwise read a
    synchronous one entirely into memory before sending it. Either way memory stays flat
    (one chunk at a time); Content-Length and Content-Disposition come from the stored object.
    """
    storage = get_storage()
    info = storage.stat(path)
    fh = storage.open(path)
    body = _achunks(fh) if isinstance(request, ASGIRequest) else _chunks(fh)
    content_type, encoding = mimetypes.guess_type(info.name)
    # A compressed file is served as the bytes it is, not as a transfer encoding the browser would undo.
    if encoding or not content_type:
        content_type = "application/octet-stream"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Length"] = str(info.size)
    response["Content-Disposition"] = content_disposition_header(True, info.name)
    response["Last-Modified"] = http_date(info.modified.timestamp())
    return response
