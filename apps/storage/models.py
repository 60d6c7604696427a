"""Buckets: the top level of the storage tree, each owned by one workspace.

Folders and files are not rows: they live in the storage backend (`apps.core.storage`),
addressed as `storage://<bucket>/<key>`. The bucket row is what ties a storage path to a
workspace, so every path a user types is checked against it.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.paths import validate_bucket_name
from apps.core.scoping import WorkspaceQuerySet


class Bucket(models.Model):
    """A named storage root. The name is unique across the platform (it is the first path segment)."""

    workspace = models.ForeignKey(
        "accounts.Workspace",
        # A workspace holding data cannot vanish under it: delete its buckets first.
        on_delete=models.PROTECT,
        related_name="buckets",
    )
    name = models.CharField(max_length=63, unique=True, validators=[validate_bucket_name])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def uri(self) -> str:
        return f"storage://{self.name}"
