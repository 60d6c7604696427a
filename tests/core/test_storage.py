"""The storage layer's contract, run once against LocalStorage and once against S3Storage (moto)."""
import contextlib
import io
from datetime import datetime

import pytest

from apps.core.paths import StoragePath
from apps.core.storage import LocalStorage, NotFound, S3Storage, StorageError, get_storage
from tests.storage.backends import local_storage, moto_endpoint, storage_backend  # noqa: F401

B = "bkt"


def P(key: str = "") -> StoragePath:
    return StoragePath(B, key)


@pytest.fixture
def store(storage_backend):
    storage_backend.bucket_create(B)
    return storage_backend


class ExplodingStream:
    """Yields some bytes, then fails, like a client that disconnects mid-upload."""

    def __init__(self):
        self.calls = 0

    def read(self, size=-1):
        self.calls += 1
        if self.calls == 1:
            return b"x" * 1000
        raise OSError("connection reset")


def test_backend_matches_setting(storage_backend, settings):
    expected = S3Storage if settings.ATELIER_STORAGE_BACKEND == "s3" else LocalStorage
    assert isinstance(storage_backend, expected)


def test_new_bucket_is_an_empty_folder(store):
    assert store.exists(P()) and store.is_folder(P())
    listing = store.list(P())
    assert (listing.folders, listing.files) == ([], [])


def test_mkdir_creates_every_nested_level(store):
    store.mkdir(P("a/b/c"))
    assert store.list(P()).folders == ["a"]
    assert store.list(P("a")).folders == ["b"]
    assert store.list(P("a/b")).folders == ["c"]
    listing = store.list(P("a/b/c"))
    assert (listing.folders, listing.files) == ([], [])


def test_mkdir_keeps_an_existing_folder_and_its_files(store):
    store.save(P("a/f.txt"), io.BytesIO(b"one"))
    store.mkdir(P("a"))
    assert [f.key for f in store.list(P("a")).files] == ["a/f.txt"]


def test_save_stat_open_and_list(store):
    assert store.save(P("docs/readme.txt"), io.BytesIO(b"hello world")) == 11
    info = store.stat(P("docs/readme.txt"))
    assert (info.key, info.name, info.size) == ("docs/readme.txt", "readme.txt", 11)
    assert isinstance(info.modified, datetime) and info.modified.tzinfo is not None
    with store.open(P("docs/readme.txt")) as fh:
        assert fh.read() == b"hello world"
    listing = store.list(P("docs"))
    assert listing.folders == []
    assert [(f.key, f.size) for f in listing.files] == [("docs/readme.txt", 11)]
    assert store.exists(P("docs/readme.txt")) and not store.is_folder(P("docs/readme.txt"))


def test_open_from_an_offset_reads_only_the_rest(store):
    store.save(P("docs/lines.txt"), io.BytesIO(b"first\nsecond\nthird\n"))
    with contextlib.closing(store.open(P("docs/lines.txt"), offset=6)) as fh:
        assert fh.read() == b"second\nthird\n"
    with contextlib.closing(store.open(P("docs/lines.txt"), offset=99)) as fh:
        assert fh.read() == b""
    with pytest.raises(NotFound):
        store.open(P("docs/missing.txt"), offset=6)


def test_save_replaces_an_existing_file(store):
    store.save(P("f.bin"), io.BytesIO(b"old contents"))
    store.save(P("f.bin"), io.BytesIO(b"new"))
    with store.open(P("f.bin")) as fh:
        assert fh.read() == b"new"
    assert store.stat(P("f.bin")).size == 3


def test_a_large_stream_round_trips(store):
    # Above boto3's 8 MiB multipart threshold and several local copy chunks.
    payload = bytes(range(256)) * (9 * 4096)
    assert store.save(P("big/blob.bin"), io.BytesIO(payload)) == len(payload)
    with store.open(P("big/blob.bin")) as fh:
        assert fh.read() == payload


def test_saving_a_file_creates_parents_that_outlive_it(store):
    store.save(P("x/y/z.txt"), io.BytesIO(b"1"))
    assert store.list(P("x")).folders == ["y"]
    store.delete(P("x/y/z.txt"))
    assert not store.exists(P("x/y/z.txt"))
    listing = store.list(P("x/y"))
    assert (listing.folders, listing.files) == ([], [])


def test_a_file_cannot_replace_a_folder(store):
    store.mkdir(P("data"))
    with pytest.raises(StorageError, match='A folder named "data" already exists here.'):
        store.save(P("data"), io.BytesIO(b"1"))
    assert store.is_folder(P("data"))


def test_a_folder_cannot_replace_a_file(store):
    store.save(P("notes"), io.BytesIO(b"1"))
    with pytest.raises(StorageError, match='A file named "notes" already exists here.'):
        store.mkdir(P("notes"))
    assert store.stat(P("notes")).size == 1


@pytest.mark.parametrize("op", ["mkdir", "save"])
def test_nothing_is_created_below_a_file(store, op):
    store.save(P("a/file.txt"), io.BytesIO(b"1"))
    with pytest.raises(StorageError, match='"a/file.txt" is a file, so nothing can be created inside it.'):
        if op == "mkdir":
            store.mkdir(P("a/file.txt/sub"))
        else:
            store.save(P("a/file.txt/sub/x.bin"), io.BytesIO(b"2"))
    assert [f.key for f in store.walk(P())] == ["a/file.txt"]


def test_a_failing_stream_leaves_nothing_behind(store):
    with pytest.raises(OSError, match="connection reset"):
        store.save(P("new/dir/upload.bin"), ExplodingStream())
    assert not store.exists(P("new/dir/upload.bin"))
    assert not store.exists(P("new"))
    assert store.list(P()).folders == []
    assert list(store.walk(P())) == []


@pytest.mark.parametrize("key", ["missing", "missing/deeper"])
def test_missing_paths_raise_not_found(store, key):
    with pytest.raises(NotFound, match=f"storage://bkt/{key} does not exist."):
        store.list(P(key))
    with pytest.raises(NotFound):
        store.stat(P(key))
    with pytest.raises(NotFound):
        store.open(P(key))
    assert not store.exists(P(key))
    assert list(store.walk(P(key))) == []


def test_folders_are_not_files_and_files_are_not_folders(store):
    store.save(P("dir/f.txt"), io.BytesIO(b"1"))
    with pytest.raises(NotFound):
        store.stat(P("dir"))
    with pytest.raises(NotFound):
        store.open(P("dir"))
    with pytest.raises(NotFound):
        store.list(P("dir/f.txt"))


def test_walk_yields_files_in_key_order(store):
    for key in ["b.txt", "a/z.txt", "a/b/c.txt", "a/b-x.txt", "a/b0.txt"]:
        store.save(P(key), io.BytesIO(key.encode()))
    store.mkdir(P("empty/folder"))
    assert [(f.key, f.size) for f in store.walk(P())] == [
        ("a/b-x.txt", 9), ("a/b/c.txt", 9), ("a/b0.txt", 8), ("a/z.txt", 7), ("b.txt", 5)]
    assert [f.key for f in store.walk(P("a/b"))] == ["a/b/c.txt"]
    assert [f.key for f in store.walk(P("a/z.txt"))] == ["a/z.txt"]


def test_delete_a_folder_removes_everything_below_it(store):
    store.save(P("keep.txt"), io.BytesIO(b"k"))
    store.save(P("tmp/a.txt"), io.BytesIO(b"a"))
    store.save(P("tmp/sub/b.txt"), io.BytesIO(b"b"))
    store.mkdir(P("tmp/empty"))
    store.delete(P("tmp"))
    assert not store.exists(P("tmp"))
    assert [f.key for f in store.walk(P())] == ["keep.txt"]
    assert store.list(P()).folders == []


def test_delete_of_a_missing_path_is_quiet(store):
    store.delete(P("never/was"))
    assert store.list(P()).folders == []


def test_delete_does_not_touch_a_sibling_sharing_the_prefix(store):
    store.save(P("run/a.txt"), io.BytesIO(b"a"))
    store.save(P("run-2/b.txt"), io.BytesIO(b"b"))
    store.save(P("run.txt"), io.BytesIO(b"c"))
    store.delete(P("run"))
    assert [f.key for f in store.walk(P())] == ["run-2/b.txt", "run.txt"]


def test_bucket_delete_removes_the_bucket_and_spares_others(store):
    store.bucket_create("other")
    store.save(StoragePath("other", "o.txt"), io.BytesIO(b"o"))
    store.save(P("a/b.txt"), io.BytesIO(b"1"))
    store.bucket_delete(B)
    assert not store.exists(P())
    with pytest.raises(NotFound):
        store.list(P())
    assert [f.key for f in store.walk(StoragePath("other", ""))] == ["o.txt"]


def test_download_to_and_upload_from_round_trip(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    store.upload_from(src, P("in/src.bin"))
    dest = tmp_path / "dest.bin"
    store.download_to(P("in/src.bin"), dest)
    assert dest.read_bytes() == b"payload"
    with pytest.raises(NotFound):
        store.download_to(P("in/none.bin"), tmp_path / "none.bin")


def test_local_path_only_for_the_local_backend(store, settings):
    path = store.local_path(P("a.txt"))
    if settings.ATELIER_STORAGE_BACKEND == "s3":
        assert path is None
    else:
        assert path == store.root / B / "a.txt"


def test_local_refuses_a_symlink_that_leaves_the_root(local_storage, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    local_storage.bucket_create(B)
    (local_storage.root / B / "link").symlink_to(outside)
    with pytest.raises(StorageError, match="The path leaves the storage root."):
        local_storage.open(P("link/secret.txt"))
    assert local_storage.list(P()).folders == []  # symlinks are not listed as folders


def test_unknown_backend_setting_is_refused(settings):
    settings.ATELIER_STORAGE_BACKEND = "ftp"
    get_storage.cache_clear()
    try:
        with pytest.raises(StorageError, match="Unknown ATELIER_STORAGE_BACKEND 'ftp'; use local or s3."):
            get_storage()
    finally:
        get_storage.cache_clear()
