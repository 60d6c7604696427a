"""The folder listing as a `apps.core.tables.Table`, so it renders with components/table.html.

Rows are storage entries (not database rows): search, sort and pagination run over the
backend's listing of one folder instead of a queryset.
"""
from __future__ import annotations

import functools

from apps.core.paths import StoragePath
from apps.core.tables import Column, Table

from .models import Bucket
from .selectors import Entry, folder_entries


class FolderTable(Table):
    columns = [
        Column("name", "Name", sort="name"),
        Column("size", "Size", sort="size", classes="num"),
        Column("modified", "Modified", sort="modified"),
        Column("actions", "Actions", classes="actions"),
    ]
    search_fields = ["name"]
    search_placeholder = "Search by name"
    default_sort = "name"
    # Folders can hold thousands of files; a page of 100 keeps the page light.
    page_sizes = (25, 50, 100, 200)
    default_page_size = 100
    row_template = "storage/_entry_row.html"
    empty_title = "This folder is empty"
    empty_text = "Create a folder or upload files to fill it."
    caption = "Folders and files"

    def __init__(self, path: StoragePath, params):
        super().__init__(Bucket.objects.none(), params, id="listing")
        self.path = path

    @functools.cached_property
    def queryset(self) -> list[Entry]:  # type: ignore[override]  # a list: rows live in storage
        return folder_entries(self.path, search=self.search, sort=self.sort_key, descending=self.sort_desc)


class BucketTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell="storage/_bucket_name_cell.html"),
        Column("created_by.username", "Created by"),
        Column("created_at", "Created", sort="created_at", cell="storage/_datetime_cell.html"),
        Column("actions", "Actions", classes="actions", cell="storage/_bucket_actions_cell.html"),
    ]
    search_fields = ["name"]
    search_placeholder = "Search buckets"
    default_sort = "name"
    empty_title = "No buckets yet"
    empty_text = "A bucket holds folders and files: datasets, training outputs and models all live in one."
    caption = "Buckets"
