"""File downloads, streamed from the storage backend (pages and the API share this)."""
from __future__ import annotations

from django.http import FileResponse

from apps.core.paths import StoragePath
from apps.core.storage import get_storage


def download_response(path: StoragePath) -> FileResponse:
    """A streamed attachment response for the file at `path` (raises storage NotFound).

    The body is read in chunks straight from the backend, so memory use does not grow
    with the file; Content-Length and Content-Disposition come from the stored object.
    """
    storage = get_storage()
    info = storage.stat(path)
    response = FileResponse(storage.open(path), as_attachment=True, filename=info.name)
    response["Content-Length"] = str(info.size)
    response["Last-Modified"] = info.modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return response
