"""Storage reads: scoped bucket lookups, the typed-path check and folder listings."""
import io

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.core.paths import StoragePath
from apps.core.storage import NotFound, get_storage
from apps.storage import selectors
from tests.storage.conftest import make_bucket


def test_buckets_in_a_workspace(owner, workspace, outsider):
    make_bucket(owner, "zeta")
    make_bucket(owner, "alpha")
    make_bucket(outsider, "theirs")
    assert [b.name for b in selectors.buckets_in(workspace)] == ["alpha", "zeta"]
    assert list(selectors.buckets_in(None)) == []


def test_buckets_visible_to_cover_every_membership(owner, teammate, outsider):
    make_bucket(owner, "team-data")
    make_bucket(teammate, "bob-own")
    make_bucket(outsider, "theirs")
    assert [b.name for b in selectors.buckets_visible_to(teammate)] == ["bob-own", "team-data"]
    assert [b.name for b in selectors.buckets_visible_to(owner)] == ["team-data"]


def test_bucket_get_for_user_is_404_outside_the_workspaces(owner, outsider, bucket):
    assert selectors.bucket_get_for_user(owner, "data") == bucket
    with pytest.raises(Http404):
        selectors.bucket_get_for_user(outsider, "data")
    with pytest.raises(Http404):
        selectors.bucket_get_for_user(owner, "missing")


def test_resolve_returns_the_validated_path(owner, bucket):
    assert selectors.storage_path_resolve(owner, "storage://data/images/") == StoragePath("data", "images")
    assert selectors.storage_path_resolve(owner, "data") == StoragePath("data", "")


def test_resolve_never_reveals_another_workspace_bucket(owner, outsider, other_bucket):
    with pytest.raises(ValidationError) as theirs:
        selectors.storage_path_resolve(owner, "storage://secret/notes.txt")
    with pytest.raises(ValidationError) as missing:
        selectors.storage_path_resolve(owner, "storage://nothing-here/notes.txt")
    assert theirs.value.messages == ['The bucket "secret" does not exist.']
    assert missing.value.messages == ['The bucket "nothing-here" does not exist.']


@pytest.mark.parametrize("uri, message", [
    ("storage://data/../etc", 'The path must not contain "." or ".." folders.'),
    ("/etc/passwd", "Absolute paths are not allowed; start with a bucket name."),
    ("s3://data/x", 'Paths start with "storage://".'),
    ("storage://data/a:b", 'The path contains :; these characters are not allowed: \\ : * ? " < > |'),
    ("storage://data/" + "a" * 1100, "The path has 1105 characters; at most 1023 are allowed."),
])
def test_resolve_refuses_bad_paths_with_the_rule(owner, bucket, uri, message):
    with pytest.raises(ValidationError) as exc:
        selectors.storage_path_resolve(owner, uri)
    assert exc.value.messages == [message]


def test_resolve_checks_the_action_for_the_role(viewer, bucket):
    assert selectors.storage_path_resolve(viewer, "storage://data/images") == StoragePath("data", "images")
    with pytest.raises(ValidationError) as exc:
        selectors.storage_path_resolve(viewer, "storage://data/out", "storage:create")
    assert exc.value.messages == ['Your role in workspace "alice-default" does not allow storage:create.']


def test_resolve_existence_and_kind(owner, bucket):
    resolve = selectors.storage_path_resolve
    assert resolve(owner, "storage://data/images", must_exist=True, kind="folder") == StoragePath("data", "images")
    assert resolve(owner, "storage://data/images/cat.jpg", must_exist=True, kind="file").key == "images/cat.jpg"
    assert resolve(owner, "storage://data/new-output", kind="folder").key == "new-output"  # may be created later
    with pytest.raises(ValidationError, match="storage://data/nope does not exist."):
        resolve(owner, "storage://data/nope", must_exist=True)
    with pytest.raises(ValidationError, match="storage://data/images/cat.jpg is a file; choose a folder."):
        resolve(owner, "storage://data/images/cat.jpg", kind="folder")
    with pytest.raises(ValidationError, match="storage://data/images is a folder; choose a file."):
        resolve(owner, "storage://data/images", kind="file")
    with pytest.raises(ValidationError, match="storage://data is a folder; choose a file."):
        resolve(owner, "storage://data", kind="file")


def test_folder_entries_search_and_sort(owner, bucket):
    storage = get_storage()
    storage.save(StoragePath("data", "images/big.png"), io.BytesIO(b"x" * 50))
    storage.save(StoragePath("data", "images/Apple.png"), io.BytesIO(b"x" * 10))
    storage.mkdir(StoragePath("data", "images/zoo"))
    storage.mkdir(StoragePath("data", "images/bank"))
    path = StoragePath("data", "images")
    names = lambda **kw: [(e.kind, e.name) for e in selectors.folder_entries(path, **kw)]  # noqa: E731
    assert names() == [("folder", "bank"), ("folder", "zoo"), ("file", "Apple.png"), ("file", "big.png"),
                       ("file", "cat.jpg")]
    assert names(sort="size", descending=True) == [("folder", "bank"), ("folder", "zoo"), ("file", "big.png"),
                                                   ("file", "Apple.png"), ("file", "cat.jpg")]
    assert names(sort="name", descending=True) == [("folder", "zoo"), ("folder", "bank"), ("file", "cat.jpg"),
                                                   ("file", "big.png"), ("file", "Apple.png")]
    assert names(search="B") == [("folder", "bank"), ("file", "big.png")]
    entry = selectors.folder_entries(path, search="cat")[0]
    assert (entry.path, entry.size, entry.is_folder) == (StoragePath("data", "images/cat.jpg"), 3, False)
    with pytest.raises(NotFound):
        selectors.folder_entries(StoragePath("data", "missing"))
