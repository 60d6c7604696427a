"""URLs of storage pages for a path (views, templates and other sections link with these)."""
from __future__ import annotations

from django.urls import reverse
from django.utils.http import urlencode

from apps.core.paths import StoragePath


def folder_url(path: StoragePath) -> str:
    """The browser page of a folder (the bucket page for its root)."""
    if path.key:
        return reverse("storage:folder", args=[path.bucket, path.key])
    return reverse("storage:bucket", args=[path.bucket])


def with_path(url_name: str, path: StoragePath) -> str:
    """`url_name`'s URL with the path in its query string (paths may hold "#", "&", "%" …)."""
    return f"{reverse(url_name)}?{urlencode({'path': path.uri})}"
