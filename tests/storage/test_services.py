"""Storage services: buckets, folders, uploads and deletes, their rules and refusals."""
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from apps.core.models import AuditEntry
from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.storage import services
from apps.storage.models import Bucket
from tests.storage.conftest import folders, make_bucket, tree


def P(uri_key: str) -> StoragePath:
    bucket, _, key = uri_key.partition("/")
    return StoragePath(bucket, key)


def upload(name: str, data: bytes = b"payload") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


# ---- buckets ------------------------------------------------------------------------------

def test_bucket_create_makes_row_storage_and_audit(owner, workspace):
    bucket = services.bucket_create(user=owner, workspace=workspace, name="c-flowers")
    assert (bucket.name, bucket.workspace, bucket.created_by, bucket.uri) == ("c-flowers", workspace, owner,
                                                                            "storage://c-flowers")
    assert get_storage().is_folder(StoragePath("c-flowers", ""))
    entry = AuditEntry.objects.get(action="bucket:create")
    assert (entry.actor, entry.workspace, entry.object_repr) == (owner, workspace, "c-flowers")


@pytest.mark.parametrize("name", ["ab", "Data", "-data", "data-", "my_data", "a" * 64, "da ta", ""])
def test_bucket_names_follow_the_rules(owner, workspace, name):
    with pytest.raises(ValidationError) as exc:
        services.bucket_create(user=owner, workspace=workspace, name=name)
    assert exc.value.message_dict == {"name": [
        "A bucket name has 3–63 characters: lowercase letters, digits and hyphens, "
        "starting and ending with a letter or digit."]}
    assert not Bucket.objects.exists()


def test_bucket_names_are_unique_across_the_platform(owner, outsider):
    make_bucket(outsider, "shared-name")
    with pytest.raises(ValidationError) as exc:
        make_bucket(owner, "shared-name")
    assert exc.value.message_dict == {"name": [
        'The bucket name "shared-name" is taken; bucket names are unique across the platform, so choose another.']}
    assert list(Bucket.objects.values_list("name", "workspace__name")) == [("shared-name", "charlie-default")]


@pytest.mark.parametrize("name", ["atelier-system", "atelier-logs"])
def test_platform_bucket_names_are_reserved(owner, workspace, settings, name):
    with pytest.raises(ValidationError) as exc:
        services.bucket_create(user=owner, workspace=workspace, name=name)
    assert exc.value.message_dict == {"name": [
        'Bucket names starting with "atelier-" are reserved for the platform\'s own data; choose another.']}
    assert not Bucket.objects.exists()


def test_the_run_log_bucket_is_reserved_whatever_its_name(owner, workspace, settings):
    settings.ATELIER_RUNTIME_LOG_BUCKET = "run-logs"
    with pytest.raises(ValidationError):
        services.bucket_create(user=owner, workspace=workspace, name="run-logs")
    assert not Bucket.objects.exists()


def test_leftover_data_is_never_handed_to_a_new_bucket(owner, workspace):
    get_storage().save(StoragePath("orphan", "old.txt"), io.BytesIO(b"old"))
    with pytest.raises(ValidationError) as exc:
        services.bucket_create(user=owner, workspace=workspace, name="orphan")
    assert "Storage already holds data under \"orphan\"" in exc.value.message_dict["name"][0]
    assert not Bucket.objects.exists()


def test_a_bucket_needs_a_workspace(staff):
    with pytest.raises(ValidationError) as exc:
        services.bucket_create(user=staff, workspace=None, name="nowhere")
    assert exc.value.message_dict == {"name": ["Buckets belong to a workspace; join or choose one first."]}
    assert not Bucket.objects.exists()


def test_viewer_cannot_create_a_bucket(viewer, workspace):
    with pytest.raises(PermissionDenied, match="Your role does not allow storage:create."):
        services.bucket_create(user=viewer, workspace=workspace, name="mine")
    assert not Bucket.objects.exists()
    assert not get_storage().exists(StoragePath("mine", ""))


def test_bucket_delete_of_an_empty_bucket(owner, workspace):
    bucket = make_bucket(owner, "scratch")
    services.bucket_delete(user=owner, bucket=bucket)
    assert not Bucket.objects.exists()
    assert not get_storage().exists(StoragePath("scratch", ""))
    assert AuditEntry.objects.filter(action="bucket:delete", object_repr="scratch").count() == 1


def test_bucket_delete_refuses_a_non_empty_bucket_without_recursive(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.bucket_delete(user=owner, bucket=bucket)
    assert exc.value.messages == ['The bucket "data" is not empty; confirm deleting it with everything in it.']
    assert Bucket.objects.filter(name="data").exists()
    assert tree("data") == ["images/cat.jpg"]


def test_bucket_delete_recursive_removes_everything(owner, bucket):
    services.bucket_delete(user=owner, bucket=bucket, recursive=True)
    assert not Bucket.objects.filter(name="data").exists()
    assert not get_storage().exists(StoragePath("data", ""))


def test_outsider_cannot_delete_a_bucket(outsider, bucket):
    with pytest.raises(Http404):
        services.bucket_delete(user=outsider, bucket=bucket, recursive=True)
    assert Bucket.objects.filter(name="data").exists()
    assert tree("data") == ["images/cat.jpg"]


def test_viewer_cannot_delete_a_bucket(viewer, bucket):
    with pytest.raises(PermissionDenied, match="Your role does not allow storage:delete."):
        services.bucket_delete(user=viewer, bucket=bucket, recursive=True)
    assert tree("data") == ["images/cat.jpg"]


# ---- folders ------------------------------------------------------------------------------

def test_folder_a_b_c_creates_three_nested_levels(owner, bucket):
    created = services.folder_create(user=owner, parent=P("data"), name="a/b/c")
    assert created == StoragePath("data", "a/b/c")
    assert folders("data") == ["a", "empty", "images"]
    assert folders("data/a") == ["b"]
    assert folders("data/a/b") == ["c"]
    assert folders("data/a/b/c") == []
    entry = AuditEntry.objects.get(action="folder:create")
    assert (entry.object_repr, entry.workspace) == ("storage://data/a/b/c", bucket.workspace)


def test_folder_create_inside_a_subfolder(owner, bucket):
    services.folder_create(user=owner, parent=P("data/images"), name="train")
    assert folders("data/images") == ["train"]


@pytest.mark.parametrize("char", list('\\:*?"<>|'))
def test_folder_names_with_forbidden_characters_are_refused(owner, bucket, char):
    with pytest.raises(ValidationError) as exc:
        services.folder_create(user=owner, parent=P("data"), name=f"bad{char}name")
    assert exc.value.message_dict == {"name": [
        f'The path contains {char}; these characters are not allowed: \\ : * ? " < > |']}
    assert folders("data") == ["empty", "images"]


@pytest.mark.parametrize("name", [".hidden", "trailing.", "/lead", "trail/", "a/./b", "a/../b", "..", "a//b"])
def test_folder_names_starting_or_ending_badly_or_escaping_are_refused(owner, bucket, name):
    with pytest.raises(ValidationError) as exc:
        services.folder_create(user=owner, parent=P("data"), name=name)
    assert list(exc.value.message_dict) == ["name"]
    assert folders("data") == ["empty", "images"]


def test_traversal_message_is_clear(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.folder_create(user=owner, parent=P("data"), name="a/../../etc")
    assert exc.value.message_dict == {"name": ['The path must not contain "." or ".." folders.']}


def test_a_path_over_1023_characters_is_refused(owner, bucket):
    # "data/" + 1019 characters = 1024 in all, one over the limit.
    name = "/".join(["x" * 100] * 10) + "/" + "y" * 9
    assert len(f"data/{name}") == 1024
    with pytest.raises(ValidationError) as exc:
        services.folder_create(user=owner, parent=P("data"), name=name)
    assert exc.value.message_dict == {"name": ["The path has 1024 characters; at most 1023 are allowed."]}
    assert folders("data") == ["empty", "images"]


def test_a_path_of_exactly_1023_characters_is_accepted(owner, bucket):
    name = "/".join(["x" * 100] * 10) + "/" + "y" * 8
    created = services.folder_create(user=owner, parent=P("data"), name=name)
    assert len(created.uri) == len("storage://") + 1023


def test_an_empty_folder_name_is_refused(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.folder_create(user=owner, parent=P("data"), name="  ")
    assert exc.value.message_dict == {"name": ["Enter a folder name."]}


def test_an_existing_folder_is_refused(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.folder_create(user=owner, parent=P("data"), name="images")
    assert exc.value.message_dict == {"name": ['A folder named "images" already exists in storage://data.']}


def test_a_folder_cannot_take_a_file_name(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.folder_create(user=owner, parent=P("data/images"), name="cat.jpg/sub")
    assert exc.value.message_dict == {"name": ['"images/cat.jpg" is a file, so nothing can be created inside it.']}
    assert tree("data") == ["images/cat.jpg"]


def test_outsider_cannot_create_folders_in_another_workspace(outsider, bucket):
    with pytest.raises(Http404):
        services.folder_create(user=outsider, parent=P("data"), name="planted")
    assert folders("data") == ["empty", "images"]
    assert not AuditEntry.objects.filter(action="folder:create").exists()


def test_viewer_cannot_create_folders(viewer, bucket):
    with pytest.raises(PermissionDenied):
        services.folder_create(user=viewer, parent=P("data"), name="planted")
    assert folders("data") == ["empty", "images"]


# ---- uploads ------------------------------------------------------------------------------

def test_upload_stores_the_file(owner, bucket):
    info = services.object_upload(user=owner, folder=P("data/images"), file=upload("dog.jpg", b"woof!"))
    assert (info.key, info.size) == ("images/dog.jpg", 5)
    with get_storage().open(P("data/images/dog.jpg")) as fh:
        assert fh.read() == b"woof!"
    entry = AuditEntry.objects.get(action="object:upload")
    assert (entry.object_repr, entry.detail) == ("storage://data/images/dog.jpg", {"size": 5, "replaced": False})


def test_upload_replaces_a_file_of_the_same_name(owner, bucket):
    services.object_upload(user=owner, folder=P("data/images"), file=upload("cat.jpg", b"new cat"))
    with get_storage().open(P("data/images/cat.jpg")) as fh:
        assert fh.read() == b"new cat"
    assert AuditEntry.objects.get(action="object:upload").detail == {"size": 7, "replaced": True}


@pytest.mark.parametrize("name, words", [("my cat.jpg", "a space"), ("a+b.png", "a plus sign"),
                                         ("tab\tname.txt", "a tab")])
def test_upload_names_with_space_plus_or_tab_are_refused(owner, bucket, name, words):
    with pytest.raises(ValidationError) as exc:
        services.object_upload(user=owner, folder=P("data/images"), file=upload(name))
    assert exc.value.message_dict == {
        "files": [f'The file name "{name}" contains {words}; rename the file and try again.']}
    assert tree("data") == ["images/cat.jpg"]
    assert not AuditEntry.objects.filter(action="object:upload").exists()


def test_upload_names_breaking_path_rules_name_the_file(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.object_upload(user=owner, folder=P("data"), file=upload("what?.txt"))
    assert exc.value.message_dict == {"files": [
        'The file name "what?.txt" is not allowed: The path contains ?; these characters are not allowed: '
        '\\ : * ? " < > |']}


def test_upload_cannot_replace_a_folder(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.object_upload(user=owner, folder=P("data"), file=upload("empty"))
    assert exc.value.message_dict == {"files": ['A folder named "empty" already exists here.']}
    assert folders("data") == ["empty", "images"]
    assert tree("data") == ["images/cat.jpg"]


def test_upload_whose_full_path_is_too_long_is_refused(owner, bucket):
    deep = "/".join(["x" * 100] * 10)
    services.folder_create(user=owner, parent=P("data"), name=deep)
    with pytest.raises(ValidationError) as exc:
        services.object_upload(user=owner, folder=P(f"data/{deep}"), file=upload("file-name.bin"))
    assert exc.value.message_dict == {"files": [
        'The file name "file-name.bin" is not allowed here: The path has 1028 characters; at most 1023 are allowed.']}


@pytest.mark.parametrize("declared", [True, False], ids=["declared-size", "size-unknown"])
def test_oversized_upload_is_refused_with_nothing_written(owner, settings, storage_backend, declared):
    # storage_backend runs this once on local storage and once on S3.
    make_bucket(owner, "big")
    settings.ATELIER_MAX_UPLOAD_BYTES = 1000
    payload = upload("large.bin", b"z" * 1001)
    if not declared:
        payload.size = None  # a stream whose length nobody announced: the limit is enforced while reading
    with pytest.raises(ValidationError) as exc:
        services.object_upload(user=owner, folder=P("big"), file=payload)
    assert exc.value.message_dict == {"files": [
        'The file "large.bin" is larger than the upload limit of 1000\xa0bytes (1000 bytes).']}
    assert tree("big") == []
    assert not get_storage().exists(P("big/large.bin"))
    assert not AuditEntry.objects.filter(action="object:upload").exists()


def test_an_upload_at_the_limit_is_accepted(owner, bucket, settings):
    settings.ATELIER_MAX_UPLOAD_BYTES = 1000
    info = services.object_upload(user=owner, folder=P("data"), file=upload("exact.bin", b"z" * 1000))
    assert info.size == 1000


def test_batch_upload_checks_every_file_before_writing_any(owner, bucket):
    batch = [upload("good.txt"), upload("bad name.txt"), upload("also-good.txt")]
    with pytest.raises(ValidationError) as exc:
        services.objects_upload(user=owner, folder=P("data"), files=batch)
    assert exc.value.message_dict == {"files": [
        'The file name "bad name.txt" contains a space; rename the file and try again.']}
    assert tree("data") == ["images/cat.jpg"]


def test_batch_upload_stores_all_files(owner, bucket):
    infos = services.objects_upload(user=owner, folder=P("data/empty"), files=[upload("a.txt", b"a"),
                                                                               upload("b.txt", b"bb")])
    assert [(i.key, i.size) for i in infos] == [("empty/a.txt", 1), ("empty/b.txt", 2)]
    assert AuditEntry.objects.filter(action="object:upload").count() == 2


def test_batch_upload_needs_files_and_refuses_duplicates(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.objects_upload(user=owner, folder=P("data"), files=[])
    assert exc.value.message_dict == {"files": ["Choose at least one file to upload."]}
    with pytest.raises(ValidationError) as exc:
        services.objects_upload(user=owner, folder=P("data"), files=[upload("x.txt"), upload("x.txt")])
    assert exc.value.message_dict == {"files": ['The file "x.txt" is in the batch twice.']}
    assert tree("data") == ["images/cat.jpg"]


def test_outsider_cannot_upload_into_another_workspace(outsider, bucket):
    with pytest.raises(Http404):
        services.object_upload(user=outsider, folder=P("data"), file=upload("planted.txt"))
    assert tree("data") == ["images/cat.jpg"]


def test_viewer_cannot_upload(viewer, bucket):
    with pytest.raises(PermissionDenied, match="Your role does not allow storage:create."):
        services.objects_upload(user=viewer, folder=P("data"), files=[upload("planted.txt")])
    assert tree("data") == ["images/cat.jpg"]


# ---- deletes ------------------------------------------------------------------------------

def test_object_delete(owner, bucket):
    services.object_delete(user=owner, path=P("data/images/cat.jpg"))
    assert tree("data") == []
    assert folders("data") == ["empty", "images"]
    assert AuditEntry.objects.get(action="object:delete").object_repr == "storage://data/images/cat.jpg"


def test_object_delete_refuses_folders_and_missing_files(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.object_delete(user=owner, path=P("data/images"))
    assert exc.value.messages == ["storage://data/images is a folder; delete it as a folder."]
    with pytest.raises(ValidationError) as exc:
        services.object_delete(user=owner, path=P("data/images/none.jpg"))
    assert exc.value.messages == ["storage://data/images/none.jpg does not exist."]
    assert tree("data") == ["images/cat.jpg"]


def test_folder_delete_of_an_empty_folder(owner, bucket):
    services.folder_delete(user=owner, path=P("data/empty"))
    assert folders("data") == ["images"]


def test_folder_delete_needs_recursive_when_not_empty(owner, bucket):
    with pytest.raises(ValidationError) as exc:
        services.folder_delete(user=owner, path=P("data/images"))
    assert exc.value.messages == ['The folder "images" is not empty; confirm deleting it with everything in it.']
    assert tree("data") == ["images/cat.jpg"]


def test_folder_delete_recursive_removes_everything_below(owner, bucket):
    services.folder_create(user=owner, parent=P("data/images"), name="a/b")
    get_storage().save(P("data/images/a/b/deep.txt"), io.BytesIO(b"deep"))
    services.folder_delete(user=owner, path=P("data/images"), recursive=True)
    assert folders("data") == ["empty"]
    assert tree("data") == []
    assert AuditEntry.objects.get(action="folder:delete").detail == {"recursive": True}


def test_folder_delete_refuses_the_bucket_root_and_files(owner, bucket):
    with pytest.raises(ValidationError, match="This is the bucket itself; delete the bucket instead."):
        services.folder_delete(user=owner, path=P("data"), recursive=True)
    with pytest.raises(ValidationError, match="storage://data/images/cat.jpg is not a folder."):
        services.folder_delete(user=owner, path=P("data/images/cat.jpg"), recursive=True)
    assert tree("data") == ["images/cat.jpg"]


def test_outsider_cannot_delete_in_another_workspace(outsider, bucket):
    with pytest.raises(Http404):
        services.object_delete(user=outsider, path=P("data/images/cat.jpg"))
    with pytest.raises(Http404):
        services.folder_delete(user=outsider, path=P("data/images"), recursive=True)
    assert tree("data") == ["images/cat.jpg"]
    assert not AuditEntry.objects.filter(action__in=["object:delete", "folder:delete"]).exists()


def test_teammate_shares_the_workspace_buckets(teammate, bucket):
    services.object_upload(user=teammate, folder=P("data"), file=upload("bob.txt"))
    services.folder_delete(user=teammate, path=P("data/empty"))
    assert tree("data") == ["bob.txt", "images/cat.jpg"]


def test_whole_flow_on_each_backend(owner, workspace, storage_backend):
    """The services behave the same on local storage and on S3 (moto)."""
    from apps.storage.selectors import folder_entries

    bucket = make_bucket(owner, "flow")
    services.folder_create(user=owner, parent=P("flow"), name="a/b/c")
    services.objects_upload(user=owner, folder=P("flow/a/b"), files=[upload("x.txt", b"xx"), upload("y.txt", b"y")])
    assert [(e.kind, e.name, e.size) for e in folder_entries(P("flow/a/b"))] == [
        ("folder", "c", None), ("file", "x.txt", 2), ("file", "y.txt", 1)]
    with pytest.raises(ValidationError):
        services.object_upload(user=owner, folder=P("flow/a"), file=upload("b"))
    with pytest.raises(ValidationError):
        services.folder_delete(user=owner, path=P("flow/a"))
    services.object_delete(user=owner, path=P("flow/a/b/y.txt"))
    assert tree("flow") == ["a/b/x.txt"]
    services.folder_delete(user=owner, path=P("flow/a"), recursive=True)
    assert folders("flow") == []
    services.bucket_delete(user=owner, bucket=bucket)
    assert not get_storage().exists(P("flow"))
