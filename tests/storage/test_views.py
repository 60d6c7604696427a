"""Storage pages: bucket list, folder view, forms, downloads and deletes; outsiders get 404."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.storage.models import Bucket
from tests.storage.conftest import folders, make_bucket, tree


def client_for(user, workspace=None) -> Client:
    """A signed-in client; with `workspace`, that one is the current workspace of the session."""
    from apps.accounts.selectors import SESSION_KEY

    client = Client()
    client.force_login(user)
    if workspace is not None:
        session = client.session
        session[SESSION_KEY] = workspace.pk
        session.save()
    return client


@pytest.fixture
def alice(owner):
    return client_for(owner)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# ---- bucket list --------------------------------------------------------------------------

def test_bucket_list_renders_buckets_and_forms(alice, bucket, outsider):
    make_bucket(outsider, "theirs")
    response = alice.get("/storage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert [row.name for row in response.context["table"].page.object_list] == ["data"]
    assert 'href="/storage/b/data/"' in html and "theirs" not in html
    assert 'data-testid="bucket-create-form"' in html
    assert "data-path-picker" in html and '<script src="/static/storage/path_picker.js" type="module">' in html
    assert 'data-section="storage"' in html  # the sidebar lists the section once storage:browser resolves


def test_bucket_list_query_count_is_flat(alice, owner):
    make_bucket(owner, "one")
    with CaptureQueriesContext(connection) as few:
        assert alice.get("/storage/").status_code == 200
    for i in range(8):
        make_bucket(owner, f"more-{i}")
    with CaptureQueriesContext(connection) as many:
        assert alice.get("/storage/").status_code == 200
    assert len(many) == len(few)


def test_bucket_list_search_partial(alice, owner):
    make_bucket(owner, "alpha")
    make_bucket(owner, "beta")
    response = alice.get("/storage/?q=alp", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="buckets-results")
    html = response.content.decode()
    assert "<html" not in html and "alpha" in html and "beta" not in html


def test_create_bucket_form(alice, workspace):
    response = alice.post("/storage/buckets/new", {"name": "c-flowers"})
    assert response.status_code == 302 and response["Location"] == "/storage/b/c-flowers/"
    assert Bucket.objects.get(name="c-flowers").workspace == workspace


def test_create_bucket_form_shows_the_rule_inline(alice):
    response = alice.post("/storage/buckets/new", {"name": "Bad Name"})
    assert response.status_code == 400
    assert response.context["create_form"].errors == {"name": [
        "A bucket name has 3–63 characters: lowercase letters, digits and hyphens, starting and ending with a "
        "letter or digit."]}
    assert "starting and ending with a letter or digit." in response.content.decode()
    assert not Bucket.objects.exists()


def test_viewer_cannot_create_a_bucket_page(viewer, workspace):
    client = client_for(viewer, workspace)
    assert client.get("/storage/").context["current_workspace"] == workspace
    assert 'data-testid="bucket-create-form"' not in client.get("/storage/").content.decode()
    response = client.post("/storage/buckets/new", {"name": "mine"})
    assert response.status_code == 403
    assert not Bucket.objects.exists()


def test_go_to_path(alice, bucket, other_bucket):
    response = alice.get("/storage/go", {"path": "storage://data/images"})
    assert response.status_code == 302 and response["Location"] == "/storage/b/data/images"
    response = alice.get("/storage/go", {"path": "storage://secret"})
    assert response.status_code == 400
    assert response.context["goto_form"].errors == {"path": ['The bucket "secret" does not exist.']}
    response = alice.get("/storage/go", {"path": "storage://data/nope"})
    assert response.context["goto_form"].errors == {"path": ["storage://data/nope does not exist."]}


# ---- folder page --------------------------------------------------------------------------

def test_folder_page_lists_folders_then_files(alice, bucket):
    get_storage().save(StoragePath("data", "readme.txt"), io.BytesIO(b"x" * 2048))
    response = alice.get("/storage/b/data/")
    assert response.status_code == 200
    rows = [(e.kind, e.name) for e in response.context["table"].page.object_list]
    assert rows == [("folder", "empty"), ("folder", "images"), ("file", "readme.txt")]
    html = response.content.decode()
    assert 'href="/storage/b/data/images"' in html
    assert 'href="/storage/download?path=storage%3A%2F%2Fdata%2Freadme.txt"' in html
    assert "2.0\xa0KB" in html
    assert 'data-upload-url="/api/v1/storage/objects/upload/"' in html


def test_folder_page_breadcrumbs_search_and_sort(alice, bucket):
    storage = get_storage()
    storage.save(StoragePath("data", "images/dog.jpg"), io.BytesIO(b"woof!"))
    response = alice.get("/storage/b/data/images", {"sort": "-size"})
    assert response.context["crumbs"] == [{"name": "data", "url": "/storage/b/data/"},
                                          {"name": "images", "url": "/storage/b/data/images"}]
    assert [e.name for e in response.context["table"].page.object_list] == ["dog.jpg", "cat.jpg"]
    partial = alice.get("/storage/b/data/images", {"q": "cat"}, HTTP_HX_REQUEST="true",
                        HTTP_HX_TARGET="listing-results")
    html = partial.content.decode()
    assert "<html" not in html and "cat.jpg" in html and "dog.jpg" not in html


def test_folder_names_with_url_characters_round_trip(alice, owner, bucket):
    from apps.storage.services import folder_create

    folder_create(user=owner, parent=StoragePath("data", ""), name="50% #1 & more")
    html = alice.get("/storage/b/data/").content.decode()
    assert 'href="/storage/b/data/50%25%20%231%20&amp;%20more"' in html
    response = alice.get("/storage/b/data/50%25%20%231%20&%20more")
    assert response.status_code == 200 and response.context["path"] == StoragePath("data", "50% #1 & more")


def test_folder_page_of_a_file_redirects_to_its_download(alice, bucket):
    response = alice.get("/storage/b/data/images/cat.jpg")
    assert response.status_code == 302
    assert response["Location"] == "/storage/download?path=storage%3A%2F%2Fdata%2Fimages%2Fcat.jpg"


@pytest.mark.parametrize("url", ["/storage/b/data/missing", "/storage/b/data/a:b", "/storage/b/nobucket/"])
def test_folder_page_404s(alice, bucket, url):
    assert alice.get(url).status_code == 404


def test_outsider_gets_404_on_every_page_of_another_workspace(outsider, bucket):
    client = client_for(outsider)
    for url in ["/storage/b/data/", "/storage/b/data/images", "/storage/buckets/data/delete",
                "/storage/download?path=storage://data/images/cat.jpg",
                "/storage/delete?path=storage://data/images"]:
        assert client.get(url).status_code == 404, url
    assert client.post("/storage/folders/new", {"path": "storage://data", "name": "x"}).status_code == 404
    assert client.post("/storage/upload", {"path": "storage://data",
                                           "files": [SimpleUploadedFile("x.txt", b"1")]}).status_code == 404
    assert client.post("/storage/delete?path=storage://data/images", {"confirm_name": "images"}).status_code == 404
    assert client.post("/storage/buckets/data/delete", {"confirm_name": "data"}).status_code == 404
    assert tree("data") == ["images/cat.jpg"] and folders("data") == ["empty", "images"]
    assert Bucket.objects.filter(name="data").exists()


def test_anonymous_is_sent_to_sign_in(bucket):
    response = Client().get("/storage/b/data/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# ---- folder, upload, download, delete -----------------------------------------------------

def test_new_folder_htmx_redirects_on_success(alice, bucket):
    response = alice.post("/storage/folders/new", {"path": "storage://data", "name": "a/b/c"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == "/storage/b/data/"
    assert folders("data/a/b") == ["c"]


def test_new_folder_htmx_returns_the_form_with_the_error(alice, bucket):
    response = alice.post("/storage/folders/new", {"path": "storage://data", "name": "bad|name"},
                          HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'The path contains |; these characters are not allowed' in html and "<html" not in html
    assert folders("data") == ["empty", "images"]


def test_new_folder_without_htmx_reports_through_messages(alice, bucket):
    response = alice.post("/storage/folders/new", {"path": "storage://data", "name": "images"}, follow=True)
    assert messages_of(response) == ['A folder named "images" already exists in storage://data.']


def test_upload_form_fallback(alice, bucket):
    files = [SimpleUploadedFile("a.txt", b"a"), SimpleUploadedFile("b.txt", b"b")]
    response = alice.post("/storage/upload", {"path": "storage://data/empty", "files": files}, follow=True)
    assert messages_of(response) == ["Uploaded 2 files: a.txt, b.txt."]
    assert tree("data") == ["empty/a.txt", "empty/b.txt", "images/cat.jpg"]


def test_upload_form_refuses_bad_names_and_big_files(alice, bucket, settings):
    response = alice.post("/storage/upload",
                          {"path": "storage://data", "files": [SimpleUploadedFile("my cat.jpg", b"1")]}, follow=True)
    assert messages_of(response) == ['The file name "my cat.jpg" contains a space; rename the file and try again.']
    settings.ATELIER_MAX_UPLOAD_BYTES = 10
    response = alice.post("/storage/upload", {"path": "storage://data",
                                              "files": [SimpleUploadedFile("big.bin", b"b" * 11)]}, follow=True)
    assert messages_of(response) == ['The file "big.bin" is larger than the upload limit of 10\xa0bytes (10 bytes).']
    response = alice.post("/storage/upload", {"path": "storage://data"}, follow=True)
    assert messages_of(response) == ["Choose at least one file to upload."]
    assert tree("data") == ["images/cat.jpg"]


def test_upload_form_checks_csrf(owner, bucket):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/storage/upload", {"path": "storage://data", "files": [SimpleUploadedFile("a.txt", b"1")]})
    assert response.status_code == 403
    assert tree("data") == ["images/cat.jpg"]


def test_download(alice, bucket):
    response = alice.get("/storage/download", {"path": "storage://data/images/cat.jpg"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="cat.jpg"'
    assert b"".join(response.streaming_content) == b"cat"
    assert alice.get("/storage/download", {"path": "storage://data/images"}).status_code == 404


def test_delete_file_confirmation_and_post(alice, bucket):
    partial = alice.get("/storage/delete", {"path": "storage://data/images/cat.jpg"}, HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert 'data-testid="confirm-delete-file"' in html and "<html" not in html
    response = alice.post("/storage/delete?path=storage://data/images/cat.jpg", follow=True)
    assert response.redirect_chain[-1][0] == "/storage/b/data/images"
    assert messages_of(response) == ['File "images/cat.jpg" deleted.']
    assert tree("data") == []


def test_delete_folder_needs_its_typed_name(alice, bucket):
    page = alice.get("/storage/delete", {"path": "storage://data/images"}).content.decode()
    assert 'data-confirm-name="images"' in page
    response = alice.post("/storage/delete?path=storage://data/images", {"confirm_name": "Images"})
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "confirm_name": ['Type the name "images" exactly to confirm; you typed "Images".']}
    assert tree("data") == ["images/cat.jpg"]
    response = alice.post("/storage/delete?path=storage://data/images", {"confirm_name": "images"})
    assert response.status_code == 302 and response["Location"] == "/storage/b/data/"
    assert folders("data") == ["empty"] and tree("data") == []


def test_delete_bucket_needs_its_typed_name(alice, bucket):
    assert 'data-confirm-name="data"' in alice.get("/storage/buckets/data/delete",
                                                   HTTP_HX_REQUEST="true").content.decode()
    response = alice.post("/storage/buckets/data/delete", {"confirm_name": "dat"})
    assert response.status_code == 400
    assert Bucket.objects.filter(name="data").exists()
    response = alice.post("/storage/buckets/data/delete", {"confirm_name": "data"}, follow=True)
    assert messages_of(response) == ['Bucket "data" deleted.']
    assert not Bucket.objects.filter(name="data").exists()
    assert not get_storage().exists(StoragePath("data", ""))


def test_viewer_sees_no_write_buttons_and_cannot_delete(viewer, bucket):
    client = client_for(viewer, bucket.workspace)
    html = client.get("/storage/b/data/images").content.decode()
    assert "Upload files" not in html and "Delete folder" not in html and 'data-testid="delete-cat.jpg"' not in html
    response = client.post("/storage/delete?path=storage://data/images/cat.jpg")
    assert response.status_code == 403
    assert tree("data") == ["images/cat.jpg"]


def test_download_names_and_types(alice, owner, bucket):
    storage = get_storage()
    storage.save(StoragePath("data", "model.tar.gz"), io.BytesIO(b"\x1f\x8b"))
    storage.save(StoragePath("data", "résumé.pdf"), io.BytesIO(b"%PDF"))
    response = alice.get("/storage/download", {"path": "storage://data/model.tar.gz"})
    assert response["Content-Type"] == "application/octet-stream"
    response = alice.get("/storage/download", {"path": "storage://data/résumé.pdf"})
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf"
    assert response["Content-Type"] == "application/pdf"


def test_download_over_asgi_streams_asynchronously(asgi_server, owner):
    import httpx
    from django.conf import settings as django_settings

    make_bucket(owner, "big")
    payload = bytes(range(256)) * (12 * 1024)  # 3 MiB: several chunks
    get_storage().save(StoragePath("big", "weights.bin"), io.BytesIO(payload))
    cookie = Client()
    cookie.force_login(owner)
    session = cookie.cookies[django_settings.SESSION_COOKIE_NAME].value
    with httpx.stream("GET", f"{asgi_server.url}/storage/download", params={"path": "storage://big/weights.bin"},
                      cookies={django_settings.SESSION_COOKIE_NAME: session}) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(payload))
        assert response.headers["content-disposition"] == 'attachment; filename="weights.bin"'
        chunks = list(response.iter_raw())
    assert b"".join(chunks) == payload


def test_download_body_is_async_under_asgi(owner, bucket):
    from django.core.handlers.asgi import ASGIRequest
    from django.test import RequestFactory

    from apps.storage.downloads import download_response

    scope = {"type": "http", "method": "GET", "path": "/storage/download", "query_string": b"", "headers": []}
    response = download_response(ASGIRequest(scope, io.BytesIO()), StoragePath("data", "images/cat.jpg"))
    assert response.is_async
    sync_response = download_response(RequestFactory().get("/"), StoragePath("data", "images/cat.jpg"))
    assert not sync_response.is_async and b"".join(sync_response.streaming_content) == b"cat"


def test_folder_page_query_count_does_not_grow_with_files(alice, bucket):
    storage = get_storage()
    with CaptureQueriesContext(connection) as few:
        assert alice.get("/storage/b/data/images").status_code == 200
    for i in range(30):
        storage.save(StoragePath("data", f"images/img-{i:02}.jpg"), io.BytesIO(b"x"))
    with CaptureQueriesContext(connection) as many:
        response = alice.get("/storage/b/data/images")
    assert response.context["table"].page.paginator.count == 31
    assert len(many) == len(few)
