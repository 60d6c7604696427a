"""Storage REST API: every endpoint, the error format for bad input, and workspace isolation."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.storage.models import Bucket
from tests.storage.conftest import folders, make_bucket, tree

BUCKETS = "/api/v1/storage/buckets/"
OBJECTS = "/api/v1/storage/objects/"
FOLDERS = "/api/v1/storage/folders/"
UPLOAD = "/api/v1/storage/objects/upload/"
DOWNLOAD = "/api/v1/storage/objects/download/"


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# ---- buckets ------------------------------------------------------------------------------

def test_list_buckets_in_every_workspace_of_the_caller(api, owner, teammate, outsider, bucket):
    make_bucket(teammate, "bob-own")
    make_bucket(outsider, "theirs")
    response = client_for(teammate).get(BUCKETS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(b["name"], b["uri"], b["workspace"]["name"], b["created_by"]) for b in body["results"]] == [
        ("bob-own", "storage://bob-own", "bob-default", "bob"),
        ("data", "storage://data", "alice-default", "alice"),
    ]
    narrowed = client_for(teammate).get(BUCKETS, {"workspace": bucket.workspace_id, "q": "DA"}).json()
    assert [b["name"] for b in narrowed["results"]] == ["data"]


def test_list_buckets_query_count_does_not_grow(api, owner):
    for i in range(3):
        make_bucket(owner, f"bucket-{i}")
    with CaptureQueriesContext(connection) as few:
        assert api.get(BUCKETS).status_code == 200
    for i in range(3, 10):
        make_bucket(owner, f"bucket-{i}")
    with CaptureQueriesContext(connection) as many:
        assert api.get(BUCKETS).json()["count"] == 10
    assert len(many) == len(few) == 2  # count + one page with workspace and creator joined


def test_list_buckets_bad_workspace_param(api):
    response = api.get(BUCKETS, {"workspace": "abc"})
    assert response.status_code == 400
    assert error(response) == {"code": "invalid", "message": 'workspace: "abc" is not a workspace id.',
                               "fields": {"workspace": ['"abc" is not a workspace id.']}}


def test_create_bucket_in_the_current_workspace(api, owner, workspace):
    response = api.post(BUCKETS, {"name": "c-flowers"}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "c-flowers"
    assert response.json()["workspace"] == {"id": workspace.pk, "name": "alice-default"}
    assert Bucket.objects.get(name="c-flowers").workspace == workspace
    assert get_storage().is_folder(StoragePath("c-flowers", ""))


@pytest.mark.parametrize("payload, fields", [
    ({"name": "Bad_Name"}, {"name": ["A bucket name has 3–63 characters: lowercase letters, digits and hyphens, "
                                     "starting and ending with a letter or digit."]}),
    ({}, {"name": ["This field is required."]}),
    ({"name": "ok-name", "workspace": "x"}, {"workspace": ["A valid integer is required."]}),
])
def test_create_bucket_bad_input(api, payload, fields):
    response = api.post(BUCKETS, payload, format="json")
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid" and body["fields"] == fields
    first_field, messages = next(iter(fields.items()))
    assert body["message"] == f"{first_field}: {messages[0]}"
    assert not Bucket.objects.exists()


def test_create_bucket_taken_name(api, outsider):
    make_bucket(outsider, "taken")
    response = api.post(BUCKETS, {"name": "taken"}, format="json")
    assert response.status_code == 400
    assert error(response)["fields"] == {"name": [
        'The bucket name "taken" is taken; bucket names are unique across the platform, so choose another.']}


def test_create_bucket_in_a_workspace_the_caller_is_not_in(api, outsider):
    response = api.post(BUCKETS, {"name": "planted", "workspace": outsider.default_workspace.pk}, format="json")
    assert response.status_code == 400
    assert error(response)["fields"] == {
        "workspace": [f"You are not a member of a workspace with id {outsider.default_workspace.pk}."]}
    assert not Bucket.objects.exists()


def test_viewer_gets_403_creating_a_bucket(viewer, workspace):
    response = client_for(viewer).post(BUCKETS, {"name": "mine", "workspace": workspace.pk}, format="json")
    assert response.status_code == 403
    assert error(response) == {"code": "permission_denied", "message": "Your role does not allow storage:create.",
                               "fields": {}}
    assert not Bucket.objects.exists()


def test_bucket_detail_and_outsider_404(api, outsider_api, bucket):
    assert api.get(f"{BUCKETS}data/").json()["name"] == "data"
    response = outsider_api.get(f"{BUCKETS}data/")
    assert response.status_code == 404
    assert error(response) == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_delete_bucket_needs_recursive_when_not_empty(api, bucket):
    response = api.delete(f"{BUCKETS}data/")
    assert response.status_code == 400
    assert error(response)["message"] == 'The bucket "data" is not empty; confirm deleting it with everything in it.'
    assert Bucket.objects.filter(name="data").exists()
    response = api.delete(f"{BUCKETS}data/?recursive=maybe")
    assert error(response)["fields"] == {"recursive": ['"maybe" is not true or false.']}
    assert api.delete(f"{BUCKETS}data/?recursive=true").status_code == 204
    assert not Bucket.objects.filter(name="data").exists()
    assert not get_storage().exists(StoragePath("data", ""))


def test_outsider_cannot_delete_a_bucket(outsider_api, bucket):
    response = outsider_api.delete(f"{BUCKETS}data/?recursive=true")
    assert response.status_code == 404
    assert Bucket.objects.filter(name="data").exists()
    assert tree("data") == ["images/cat.jpg"]


# ---- listing ------------------------------------------------------------------------------

def test_list_a_folder(api, bucket):
    get_storage().save(StoragePath("data", "images/dog.jpg"), io.BytesIO(b"woof!"))
    body = api.get(OBJECTS, {"path": "storage://data/images"}).json()
    assert (body["path"], body["parent"], body["count"]) == ("storage://data/images", "storage://data", 2)
    assert [(e["type"], e["name"], e["path"], e["size"]) for e in body["results"]] == [
        ("file", "cat.jpg", "storage://data/images/cat.jpg", 3),
        ("file", "dog.jpg", "storage://data/images/dog.jpg", 5),
    ]
    root = api.get(OBJECTS, {"path": "storage://data", "sort": "-name"}).json()
    assert root["parent"] is None
    assert [(e["type"], e["name"], e["size"], e["modified"]) for e in root["results"]] == [
        ("folder", "images", None, None), ("folder", "empty", None, None)]
    searched = api.get(OBJECTS, {"path": "storage://data/images", "q": "DOG", "sort": "size"}).json()
    assert [e["name"] for e in searched["results"]] == ["dog.jpg"]


@pytest.mark.parametrize("params, status, code, fields, message", [
    ({}, 400, "invalid", {"path": ["This field is required: a path like storage://bucket/folder."]}, None),
    ({"path": "storage://data/../x"}, 400, "invalid", {"path": ['The path must not contain "." or ".." folders.']},
     None),
    ({"path": "/etc"}, 400, "invalid", {"path": ["Absolute paths are not allowed; start with a bucket name."]}, None),
    ({"path": "storage://data", "sort": "owner"}, 400, "invalid",
     {"sort": ['Cannot sort by "owner"; use name, size or modified.']}, None),
    ({"path": "storage://data/missing"}, 404, "not_found", {}, "storage://data/missing does not exist."),
    ({"path": "storage://data/images/cat.jpg"}, 404, "not_found", {},
     "storage://data/images/cat.jpg does not exist."),
    ({"path": "storage://no-such-bucket/x"}, 404, "not_found", {}, "Not found."),
])
def test_list_bad_input(api, bucket, params, status, code, fields, message):
    response = api.get(OBJECTS, params)
    assert response.status_code == status
    body = error(response)
    assert (body["code"], body["fields"]) == (code, fields)
    if message:
        assert body["message"] == message


def test_outsider_cannot_list_another_workspace_bucket(outsider_api, bucket):
    response = outsider_api.get(OBJECTS, {"path": "storage://data/images"})
    assert response.status_code == 404
    assert error(response)["message"] == "Not found."


def test_unauthenticated_calls_are_refused(bucket):
    response = APIClient().get(OBJECTS, {"path": "storage://data"})
    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"


# ---- folders ------------------------------------------------------------------------------

def test_create_nested_folders(api, bucket):
    response = api.post(FOLDERS, {"path": "storage://data", "name": "a/b/c"}, format="json")
    assert response.status_code == 201
    assert response.json() == {"type": "folder", "name": "c", "path": "storage://data/a/b/c", "size": None,
                               "modified": None}
    assert folders("data/a/b") == ["c"]


@pytest.mark.parametrize("name, message", [
    ("bad:name", 'The path contains :; these characters are not allowed: \\ : * ? " < > |'),
    (".dot", 'A path must not start or end with "." or "/".'),
    ("a/../b", 'The path must not contain "." or ".." folders.'),
    ("images", 'A folder named "images" already exists in storage://data.'),
    ("x" * 200 + "/" + "y" * 200 + "/" + "z" * 200 + "/" + "w" * 200 + "/" + "v" * 216,
     "The path has 1025 characters; at most 1023 are allowed."),
])
def test_create_folder_bad_names(api, bucket, name, message):
    response = api.post(FOLDERS, {"path": "storage://data", "name": name}, format="json")
    assert response.status_code == 400
    body = error(response)
    assert body["fields"] == {"name": [message]}
    assert body["message"] == f"name: {message}"
    assert folders("data") == ["empty", "images"]


def test_create_folder_in_a_missing_parent_or_foreign_bucket(api, outsider_api, bucket):
    response = api.post(FOLDERS, {"path": "storage://data/nowhere", "name": "x"}, format="json")
    assert (response.status_code, error(response)["message"]) == (404, "storage://data/nowhere does not exist.")
    response = outsider_api.post(FOLDERS, {"path": "storage://data", "name": "planted"}, format="json")
    assert response.status_code == 404
    assert folders("data") == ["empty", "images"]


def test_viewer_gets_403_creating_a_folder(viewer, bucket):
    response = client_for(viewer).post(FOLDERS, {"path": "storage://data", "name": "x"}, format="json")
    assert response.status_code == 403
    assert folders("data") == ["empty", "images"]


# ---- uploads and downloads ----------------------------------------------------------------

def test_upload_several_files(api, bucket):
    files = [SimpleUploadedFile("a.txt", b"aaa"), SimpleUploadedFile("b.txt", b"bb")]
    response = api.post(UPLOAD, {"path": "storage://data/empty", "files": files}, format="multipart")
    assert response.status_code == 201
    assert [(f["name"], f["path"], f["size"]) for f in response.json()["files"]] == [
        ("a.txt", "storage://data/empty/a.txt", 3), ("b.txt", "storage://data/empty/b.txt", 2)]
    assert tree("data") == ["empty/a.txt", "empty/b.txt", "images/cat.jpg"]


def test_upload_name_with_space_is_refused_naming_the_file(api, bucket):
    files = [SimpleUploadedFile("fine.txt", b"1"), SimpleUploadedFile("my cat.jpg", b"2")]
    response = api.post(UPLOAD, {"path": "storage://data", "files": files}, format="multipart")
    assert response.status_code == 400
    assert error(response)["fields"] == {
        "files": ['The file name "my cat.jpg" contains a space; rename the file and try again.']}
    assert tree("data") == ["images/cat.jpg"]


def test_too_many_files_in_one_request_gets_the_error_format(api, bucket, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"f{i}.txt", b"x") for i in range(3)]
    response = api.post(UPLOAD, {"path": "storage://data", "files": files}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "bad_request", "fields": {},
                                         "message": "Too many files in one request; at most 2 are allowed."}}
    assert tree("data") == ["images/cat.jpg"]


def test_oversized_upload_is_cut_off_with_nothing_written(api, bucket, settings):
    settings.ATELIER_MAX_UPLOAD_BYTES = 64 * 1024
    files = [SimpleUploadedFile("small.txt", b"1"), SimpleUploadedFile("huge.bin", b"h" * (200 * 1024))]
    response = api.post(UPLOAD, {"path": "storage://data", "files": files}, format="multipart")
    assert response.status_code == 400
    assert error(response)["fields"] == {
        "files": ['The file "huge.bin" is larger than the upload limit of 64.0\xa0KB (65536 bytes).']}
    assert tree("data") == ["images/cat.jpg"]


@pytest.mark.parametrize("data, status, fields", [
    ({"path": "storage://data"}, 400, {"files": ['Choose at least one file to upload (multipart field "files").']}),
    ({"files": [SimpleUploadedFile("a.txt", b"1")]}, 400, {"path": ["This field is required."]}),
    ({"path": "storage://data/a*b", "files": [SimpleUploadedFile("a.txt", b"1")]}, 400,
     {"path": ['The path contains *; these characters are not allowed: \\ : * ? " < > |']}),
    ({"path": "storage://data/images/cat.jpg", "files": [SimpleUploadedFile("a.txt", b"1")]}, 404, {}),
    ({"path": "storage://data", "files": [SimpleUploadedFile("empty", b"1")]}, 400,
     {"files": ['A folder named "empty" already exists here.']}),
])
def test_upload_bad_input(api, bucket, data, status, fields):
    response = api.post(UPLOAD, data, format="multipart")
    assert response.status_code == status
    assert error(response)["fields"] == fields
    assert tree("data") == ["images/cat.jpg"]


def test_outsider_cannot_upload_into_another_workspace(outsider_api, bucket):
    response = outsider_api.post(UPLOAD, {"path": "storage://data", "files": [SimpleUploadedFile("x.txt", b"1")]},
                                 format="multipart")
    assert response.status_code == 404
    assert tree("data") == ["images/cat.jpg"]


def test_download_streams_an_attachment(api, bucket):
    response = api.get(DOWNLOAD, {"path": "storage://data/images/cat.jpg"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"cat"
    assert response["Content-Disposition"] == 'attachment; filename="cat.jpg"'
    assert response["Content-Length"] == "3"
    assert response["Content-Type"] == "image/jpeg"


def test_download_bad_input(api, outsider_api, bucket):
    response = api.get(DOWNLOAD, {"path": "storage://data/images"})
    assert (response.status_code, error(response)["message"]) == (404, "storage://data/images does not exist.")
    response = api.get(DOWNLOAD, {"path": "storage://data/a|b"})
    assert error(response)["fields"] == {
        "path": ['The path contains |; these characters are not allowed: \\ : * ? " < > |']}
    response = outsider_api.get(DOWNLOAD, {"path": "storage://data/images/cat.jpg"})
    assert (response.status_code, error(response)["message"]) == (404, "Not found.")


# ---- deletes ------------------------------------------------------------------------------

def test_delete_a_file_and_a_folder(api, bucket):
    assert api.delete(f"{OBJECTS}?path=storage://data/images/cat.jpg").status_code == 204
    assert tree("data") == []
    assert api.delete(f"{OBJECTS}?path=storage://data/empty").status_code == 204
    assert folders("data") == ["images"]


def test_delete_a_non_empty_folder_needs_recursive(api, bucket):
    response = api.delete(f"{OBJECTS}?path=storage://data/images")
    assert response.status_code == 400
    assert error(response)["message"] == 'The folder "images" is not empty; confirm deleting it with everything in it.'
    assert tree("data") == ["images/cat.jpg"]
    assert api.delete(f"{OBJECTS}?path=storage://data/images&recursive=true").status_code == 204
    assert folders("data") == ["empty"]


def test_delete_bad_input(api, bucket):
    response = api.delete(f"{OBJECTS}?path=storage://data")
    assert error(response)["fields"] == {"path": ["This is a bucket; delete it at /buckets/<name>/."]}
    response = api.delete(f"{OBJECTS}?path=storage://data/nothing")
    assert (response.status_code, error(response)["message"]) == (404, "storage://data/nothing does not exist.")
    assert tree("data") == ["images/cat.jpg"]


def test_outsider_and_viewer_cannot_delete(outsider_api, viewer, bucket):
    response = outsider_api.delete(f"{OBJECTS}?path=storage://data/images&recursive=true")
    assert response.status_code == 404
    response = client_for(viewer).delete(f"{OBJECTS}?path=storage://data/images/cat.jpg")
    assert (response.status_code, error(response)["message"]) == (403, "Your role does not allow storage:delete.")
    assert tree("data") == ["images/cat.jpg"]


def test_list_folder_query_count_does_not_grow_with_files(api, owner, bucket):
    def measured():
        api.force_authenticate(type(owner).objects.get(pk=owner.pk))  # a fresh user object: no cached role
        with CaptureQueriesContext(connection) as queries:
            body = api.get(OBJECTS, {"path": "storage://data/images"}).json()
        return body["count"], len(queries)

    assert measured() == (1, 2)  # the bucket with its workspace, and the caller's role there
    for i in range(30):
        get_storage().save(StoragePath("data", f"images/img-{i:02}.jpg"), io.BytesIO(b"x"))
    assert measured() == (31, 2)
