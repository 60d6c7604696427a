"""Account pages in a real browser: sign-in messages, the one-time token key with its copy button,
revocation through the confirmation dialog, and the admin users table search.

Each test leaves a screenshot under $ATELIER_SCREENSHOTS (default: the system temp dir) for review.
"""
import os
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.accounts import services
from apps.accounts.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


def test_login_page_messages_and_sign_in(page, asgi_server, owner):
    page.goto(f"{asgi_server.url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator(".form-errors")).to_have_text(services.WRONG_CREDENTIALS)
    page.screenshot(path=str(SHOTS / "accounts-login.png"), full_page=True)

    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=user-menu]")).to_contain_text("alice")
    assert page.url == f"{asgi_server.url}/"


def test_token_key_shown_once_copied_and_revoked_in_a_dialog(page, asgi_server, owner, login):
    login(page, owner, asgi_server.url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=asgi_server.url)
    page.goto(f"{asgi_server.url}/accounts/tokens/")
    page.fill("input[name=name]", "CI pipeline")
    page.click("#create button[type=submit]")

    key_input = page.locator("[data-testid=new-token-key]")
    key = key_input.input_value()
    token = ApiToken.objects.get(user=owner)
    assert services.api_token_authenticate(key) == token
    page.click("[data-copy-button]")
    expect(page.locator("[data-copy-button]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key
    page.screenshot(path=str(SHOTS / "accounts-tokens.png"), full_page=True)

    # Reloading the list never shows the key again.
    page.goto(f"{asgi_server.url}/accounts/tokens/")
    expect(page.locator("[data-testid=new-token]")).to_have_count(0)
    assert key not in page.content()

    page.click(f"#token-{token.pk} >> text=Revoke")
    dialog = page.locator("dialog#revoke-token")
    expect(dialog.locator("[data-testid=revoke-confirm]")).to_contain_text(token.prefix)
    dialog.locator("button.btn-danger").click()
    expect(page.locator(f"#token-{token.pk}")).to_contain_text("Revoked")
    token.refresh_from_db()
    assert token.state == "revoked"


def test_admin_users_table_search(page, asgi_server, staff, owner, outsider, login):
    login(page, staff, asgi_server.url)
    page.goto(f"{asgi_server.url}/accounts/admin/users/")
    rows = page.locator("#users-results tbody tr")
    expect(rows).to_have_count(3)
    page.screenshot(path=str(SHOTS / "accounts-admin-users.png"), full_page=True)
    page.fill("#users-q", "char")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("charlie")
    assert "q=char" in page.url
