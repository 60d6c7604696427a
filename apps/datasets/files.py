"""Fast file access for bulk runs (imports, exports) on top of the storage layer.

`LocalStorage` resolves every path it touches (a symlink check per call), which costs more
than reading a small image on a busy disk. A run touching 10,000 files in a few folders
resolves each *folder* once here, checks it lies inside the storage root, and then reads and
writes plain names in it. Writes stay atomic (temp file + rename). Other backends (S3) go
through the storage API unchanged.
"""
from __future__ import annotations

import io
import os
import shutil
import uuid
from pathlib import Path

from apps.core.paths import StoragePath
from apps.core.storage import LocalStorage, NotFound, StorageError, get_storage


class FileAccess:
    def __init__(self):
        self.storage = get_storage()
        self.local = isinstance(self.storage, LocalStorage)
        self._dirs: dict[tuple[str, str], Path] = {}
        self._listings: dict[tuple[str, str], dict[str, int]] = {}

    # ---- folders ---------------------------------------------------------------------------
    def _dir(self, folder: StoragePath, *, create: bool) -> Path:
        key = (folder.bucket, folder.key)
        cached = self._dirs.get(key)
        if cached is not None:
            return cached
        if create:
            self.storage.mkdir(folder) if folder.key else self.storage.bucket_create(folder.bucket)
        path = self.storage.local_path(folder)  # resolves and refuses paths leaving the root
        if create or path.is_dir():
            self._dirs[key] = path
        return path

    def sizes_in(self, folder: StoragePath) -> dict[str, int]:
        """File name → size for the files directly in `folder` (one listing per folder and run).

        The files `storage.list` would list: regular files, not symlinks, no hidden names.
        """
        key = (folder.bucket, folder.key)
        if key not in self._listings:
            if self.local:
                path = self._dir(folder, create=False)
                try:
                    with os.scandir(path) as entries:
                        self._listings[key] = {entry.name: entry.stat(follow_symlinks=False).st_size
                                               for entry in entries if not entry.name.startswith(".")
                                               and entry.is_file(follow_symlinks=False)}
                except (FileNotFoundError, NotADirectoryError):
                    self._listings[key] = {}
                return self._listings[key]
            try:
                listing = self.storage.list(folder)
            except NotFound:
                self._listings[key] = {}
            else:
                self._listings[key] = {info.name: info.size for info in listing.files}
        return self._listings[key]

    def size(self, path: StoragePath) -> int:
        """Size of an existing file; NotFound when there is none."""
        folder, _, name = path.key.rpartition("/")
        # Looked up by plain strings first: a run asks for thousands of files in a few folders.
        sizes = self._listings.get((path.bucket, folder))
        if sizes is None:
            sizes = self.sizes_in(path.parent)
        size = sizes.get(name)
        if size is None:
            raise NotFound(f"{path.uri} does not exist.")
        return size

    # ---- files -----------------------------------------------------------------------------
    def read(self, path: StoragePath) -> bytes:
        if self.local:
            try:
                return (self._dir(path.parent, create=False) / path.name).read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise NotFound(f"{path.uri} does not exist.") from None
        with self.storage.open(path) as fh:
            return fh.read()

    def write(self, path: StoragePath, data: bytes, *, atomic: bool = True) -> None:
        """Write a whole file. `atomic=False` skips the temp file for derived files (thumbnails)
        that are regenerated when missing: one directory operation instead of two."""
        if not self.local:
            self.storage.save(path, io.BytesIO(data))
            return
        folder = self._dir(path.parent, create=True)
        target = folder / path.name
        if not atomic:
            try:
                target.write_bytes(data)
                return
            except IsADirectoryError:
                raise StorageError(f'A folder named "{path.name}" already exists here.') from None
        if target.is_dir():
            raise StorageError(f'A folder named "{path.name}" already exists here.')
        tmp = folder / f".{path.name}.part-{uuid.uuid4().hex}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def copy(self, src: StoragePath, dest: StoragePath) -> int:
        """Copy a file (streamed, any size); returns its size.

        On local storage a new destination is a hard link when the filesystem allows: stored
        files are only ever replaced (write to a temp file, then rename), never rewritten in
        place, so the two names cannot diverge through Atelier, and a 10,000-image export costs
        one directory entry per image instead of a data copy.
        """
        if not self.local:
            with self.storage.open(src) as fh:
                return self.storage.save(dest, fh)
        source = self._dir(src.parent, create=False) / src.name
        if not source.is_file():
            raise NotFound(f"{src.uri} does not exist.")
        folder = self._dir(dest.parent, create=True)
        target = folder / dest.name
        try:
            os.link(source, target)
            return target.stat().st_size
        except FileExistsError:
            if target.is_dir():
                raise StorageError(f'A folder named "{dest.name}" already exists here.') from None
        except OSError:
            pass  # another filesystem, or links not supported: copy the bytes
        tmp = folder / f".{dest.name}.part-{uuid.uuid4().hex}"
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, folder / dest.name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return (folder / dest.name).stat().st_size
