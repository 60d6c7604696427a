"""Request upload handling: stop reading a file as soon as it passes the upload limit.

Django would otherwise spool a whole oversized file to a temporary file before any
check runs. `limit_uploads(request)` must be called before the body is parsed (before
`request.POST`/`FILES`, and before CSRF checks read them); the page view pairs it with
`csrf_exempt` + `csrf_protect`, the API view calls it at the top of `initial()`.
"""
from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class UploadLimitHandler(FileUploadHandler):
    """First handler in the chain: passes data on, and skips a file once it exceeds the limit.

    The names of skipped files are collected in `too_large` so the view can refuse them
    by name; the rest of the request still parses normally.
    """

    def __init__(self, request=None, *, limit: int):
        super().__init__(request)
        self.limit = limit
        self.too_large: list[str] = []

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self.too_large.append(self.file_name)
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler builds the UploadedFile


def limit_uploads(request) -> UploadLimitHandler:
    """Install the limit handler in front of the default ones; returns it for `too_large`."""
    handler = UploadLimitHandler(request, limit=settings.ATELIER_MAX_UPLOAD_BYTES)
    request.upload_handlers.insert(0, handler)
    return handler
