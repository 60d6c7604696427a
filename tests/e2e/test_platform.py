"""The platform's first end-to-end path, as a new user walks it in a real browser.

Sign in through the form, create a workspace and switch to it in the header, create a bucket and
a folder, upload a file, download it back byte-identical, and find each step in the audit log.
"""
import os
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.core.models import AuditEntry
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


def test_sign_in_workspace_bucket_upload_download_and_audit(page, asgi_server, owner, tmp_path):
    base = asgi_server.url

    # Sign in through the real form.
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")

    # Create a workspace: it becomes the current one, shown in the header switcher.
    page.goto(f"{base}/accounts/workspaces/")
    create = page.locator("#create form")
    create.get_by_label("Name").fill("vision-team")
    create.get_by_role("button", name="Create workspace").click()
    switcher = page.locator("[data-testid=workspace-switcher]")
    expect(switcher).to_contain_text("vision-team")

    # Switch back to the default workspace and then to the new one from the header menu.
    switcher.locator("summary").click()
    switcher.get_by_role("menuitem").filter(has_text="alice-default").click()
    expect(switcher).to_contain_text("alice-default")
    switcher.locator("summary").click()
    switcher.get_by_role("menuitem").filter(has_text="vision-team").click()
    expect(switcher).to_contain_text("vision-team")

    # Create a bucket in the current workspace, then a folder inside it.
    page.goto(f"{base}/storage/")
    form = page.locator("[data-testid=bucket-create-form]")
    form.get_by_label("Name").fill("vision-raw")
    form.get_by_role("button", name="Create bucket").click()
    page.goto(f"{base}/storage/b/vision-raw/")
    page.click("[data-testid=new-folder]")
    dialog = page.locator("dialog#new-folder-dialog")
    dialog.locator("input[name=name]").fill("cats")
    dialog.locator("button[type=submit]").click()
    page.click("tr[data-entry=cats] a.entry-link")
    expect(page.locator("[data-testid=current-path]")).to_have_text("storage://vision-raw/cats")

    # Upload a file with bytes of every value, then download it back.
    original = tmp_path / "whiskers.bin"
    original.write_bytes(bytes(range(256)) * 1024)
    page.click("[data-testid=upload-open]")
    upload = page.locator("dialog#upload-dialog")
    upload.locator("input[type=file]").set_input_files(str(original))
    upload.locator("[data-upload-submit]").click()
    expect(upload.locator("li.upload-item[data-file='whiskers.bin']")).to_have_attribute("data-state", "done")
    upload.locator("[data-modal-close]").last.click()
    row = page.locator("tr[data-entry='whiskers.bin']")
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    downloaded = tmp_path / "downloaded.bin"
    info.value.save_as(downloaded)
    assert downloaded.read_bytes() == original.read_bytes()

    # Every step is in the audit log, for the new workspace, with the browser's address.
    page.goto(f"{base}/audit/")
    table = page.locator("table")
    for text in ("workspace:create", "bucket:create", "vision-raw"):
        expect(table).to_contain_text(text)
    page.screenshot(path=str(SHOTS / "platform-audit.png"), full_page=True)
    actions = list(AuditEntry.objects.filter(actor=owner).order_by("created_at").values_list("action", flat=True))
    for action in ("auth:login", "workspace:create", "bucket:create"):
        assert action in actions
    upload_entries = AuditEntry.objects.filter(actor=owner, object_repr__contains="whiskers.bin")
    assert upload_entries.exists()
    assert set(upload_entries.values_list("workspace__name", flat=True)) == {"vision-team"}
    assert set(upload_entries.values_list("ip", flat=True)) == {"127.0.0.1"}
