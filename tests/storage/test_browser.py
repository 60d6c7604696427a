"""The storage browser in a real browser: new folder, multi-file upload with progress, the path
picker dialog (browse, create bucket, new folder, select), and delete through the typed-name dialog.

Each test leaves screenshots under $ATELIER_SCREENSHOTS (default: the system temp dir) for review.
"""
import os
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.storage.models import Bucket
from tests.storage.conftest import folders, make_bucket, tree

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


@pytest.fixture
def signed_in(page, asgi_server, owner, login):
    login(page, owner, asgi_server.url)
    return asgi_server.url


def test_new_folder_and_multi_file_upload_with_progress(page, signed_in, owner, tmp_path):
    make_bucket(owner, "data")
    page.goto(f"{signed_in}/storage/b/data/")
    expect(page.locator(".empty-state")).to_contain_text("This folder is empty")

    page.click("[data-testid=new-folder]")
    dialog = page.locator("dialog#new-folder-dialog")
    dialog.locator("input[name=name]").fill("bad:name")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".field-error")).to_contain_text("The path contains :; these characters are not allowed")
    dialog.locator("input[name=name]").fill("photos/2024")
    dialog.locator("button[type=submit]").click()
    expect(page.locator("tr[data-entry=photos]")).to_be_visible()
    assert folders("data/photos") == ["2024"]

    page.click("tr[data-entry=photos] a.entry-link")
    expect(page.locator("[data-testid=current-path]")).to_have_text("storage://data/photos")
    first, second, bad = tmp_path / "cat.jpg", tmp_path / "notes.txt", tmp_path / "my dog.jpg"
    first.write_bytes(b"c" * 300_000)
    second.write_bytes(b"hello")
    bad.write_bytes(b"woof")
    page.click("[data-testid=upload-open]")
    upload = page.locator("dialog#upload-dialog")
    upload.locator("input[type=file]").set_input_files([str(first), str(second), str(bad)])
    upload.locator("[data-upload-submit]").click()
    for name in ("cat.jpg", "notes.txt"):
        item = upload.locator(f"li.upload-item[data-file='{name}']")
        expect(item).to_have_attribute("data-state", "done")
        expect(item.locator("[data-upload-status]")).to_have_text("Uploaded")
        assert item.locator("progress").evaluate("bar => bar.value") == 100
    refused = upload.locator("li.upload-item[data-file='my dog.jpg']")
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused.locator("[data-upload-status]")).to_have_text(
        'The file name "my dog.jpg" contains a space; rename the file and try again.')
    page.screenshot(path=str(SHOTS / "storage-upload-dialog.png"))

    # The listing behind the dialog was refreshed with the new files.
    expect(page.locator("tr[data-entry='cat.jpg']")).to_contain_text("293.0\xa0KB")
    expect(page.locator("tr[data-entry='notes.txt']")).to_contain_text("5\xa0bytes")
    upload.locator("[data-modal-close]").last.click()
    assert tree("data") == ["photos/cat.jpg", "photos/notes.txt"]
    page.screenshot(path=str(SHOTS / "storage-folder.png"), full_page=True)

    # Search narrows the table without a reload.
    page.fill("input[name=q]", "note")
    expect(page.locator("tr[data-entry]")).to_have_count(1)
    expect(page.locator("tr[data-entry='notes.txt']")).to_be_visible()


def test_path_picker_browses_creates_and_selects(page, signed_in, owner):
    make_bucket(owner, "data")
    get_storage().mkdir(StoragePath("data", "images/train"))
    page.goto(f"{signed_in}/storage/")
    page.screenshot(path=str(SHOTS / "storage-buckets.png"), full_page=True)
    page.click("[data-testid=goto-form] [data-path-picker-open]")
    dialog = page.locator("dialog#path-picker-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".picker-entry[data-name=data]")).to_be_visible()
    dialog.locator(".picker-entry[data-name=data]").click()
    dialog.locator(".picker-entry[data-name=images]").click()
    expect(dialog.locator("[data-picker-selected]")).to_have_text("storage://data/images")
    page.screenshot(path=str(SHOTS / "storage-path-picker.png"))

    # A new folder made inside the dialog becomes the selection.
    dialog.locator("[data-picker-new=folder]").click()
    dialog.locator("input[name=picker-new-name]").fill("val?")
    dialog.locator("[data-picker-create-submit]").click()
    expect(dialog.locator(".picker-create .field-error")).to_contain_text("The path contains ?")
    dialog.locator("input[name=picker-new-name]").fill("val/2024")
    dialog.locator("[data-picker-create-submit]").click()
    expect(dialog.locator("[data-picker-selected]")).to_have_text("storage://data/images/val/2024")
    dialog.locator("[data-picker-choose]").click()
    expect(dialog).to_be_hidden()
    field = page.locator("[data-testid=goto-form] input[name=path]")
    expect(field).to_have_value("storage://data/images/val/2024")
    assert folders("data/images/val") == ["2024"]

    page.click("[data-testid=goto-form] button[type=submit]")
    expect(page.locator("[data-testid=current-path]")).to_have_text("storage://data/images/val/2024")


def test_path_picker_creates_a_bucket_and_reopens_at_the_typed_path(page, signed_in, owner, outsider):
    make_bucket(outsider, "theirs")
    page.goto(f"{signed_in}/storage/")
    field = page.locator("[data-testid=goto-form] input[name=path]")
    field.fill("storage://theirs")
    page.click("[data-testid=goto-form] [data-path-picker-open]")
    dialog = page.locator("dialog#path-picker-dialog")
    # Another workspace's bucket looks like a missing one; the dialog falls back to the bucket list.
    expect(dialog.locator(".picker-error")).to_have_text("storage://theirs: Not found.")
    expect(dialog.locator(".picker-entry")).to_have_count(0)
    dialog.locator("[data-picker-new=bucket]").click()
    dialog.locator("input[name=picker-new-name]").fill("fresh-bucket")
    dialog.locator("[data-picker-create-submit]").click()
    expect(dialog.locator("[data-picker-selected]")).to_have_text("storage://fresh-bucket")
    page.screenshot(path=str(SHOTS / "storage-path-picker-new-bucket.png"))
    dialog.locator("[data-picker-choose]").click()
    expect(field).to_have_value("storage://fresh-bucket")
    assert Bucket.objects.get(name="fresh-bucket").workspace == owner.default_workspace

    # Reopening starts at the typed folder.
    page.click("[data-testid=goto-form] [data-path-picker-open]")
    expect(dialog.locator(".picker-crumbs strong")).to_have_text("fresh-bucket")
    expect(dialog.locator(".picker-empty")).to_have_text("This folder is empty.")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_delete_folder_through_the_typed_name_dialog(page, signed_in, owner):
    make_bucket(owner, "data")
    get_storage().mkdir(StoragePath("data", "old-run/checkpoints"))
    page.goto(f"{signed_in}/storage/b/data/")
    page.click("[data-testid='delete-old-run']")
    dialog = page.locator("dialog#delete-dialog")
    confirm = dialog.locator("input[name=confirm_name]")
    expect(confirm).to_be_visible()
    submit = dialog.locator("[data-confirm-submit]")
    expect(submit).to_be_disabled()
    confirm.fill("old-ru")
    expect(submit).to_be_disabled()
    confirm.fill("old-run")
    page.screenshot(path=str(SHOTS / "storage-delete-dialog.png"))
    submit.click()
    expect(page.locator(".toast")).to_contain_text('Folder "old-run" deleted.')
    expect(page.locator("tr[data-entry]")).to_have_count(0)
    assert folders("data") == []
