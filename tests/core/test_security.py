"""Security baseline: deploy checks, refusing a missing secret key, CSP, CSRF, HSTS and secure cookies.

Settings are read once per process, so production-like configurations run in a subprocess
with their own environment (never the test settings).
"""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_CHECK = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
secure = client.get("/accounts/login/", secure=True, HTTP_HOST="atelier.example.com")
plain = client.get("/accounts/login/", HTTP_HOST="atelier.example.com")
print(json.dumps({
    "status": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security"),
    "csrf_cookie_secure": secure.cookies["csrftoken"]["secure"],
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
}))
"""


def production_env(tmp_path, **overrides) -> dict[str, str]:
    """A production-like environment: debug off, TLS declared, a long random key, real host names."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ATELIER_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        ATELIER_DEBUG="false",
        ATELIER_HTTPS="true",
        ATELIER_SECRET_KEY=secrets.token_urlsafe(64),
        ATELIER_ALLOWED_HOSTS="atelier.example.com",
        ATELIER_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
    )
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_deploy_check_is_clean_in_production_configuration(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_boot_without_a_secret_key(tmp_path):
    env = production_env(tmp_path, ATELIER_SECRET_KEY=None)
    result = run(["-c", "import django; django.setup()"], env)
    assert result.returncode != 0
    assert ("ImproperlyConfigured: ATELIER_SECRET_KEY is not set. Production refuses to boot with a default key; "
            "set a long random value (or ATELIER_DEBUG=true for development).") in result.stderr


def test_hsts_secure_cookies_and_https_redirect_when_tls_is_declared(tmp_path):
    result = run(["-c", PRODUCTION_CHECK], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state == {
        "status": 200,
        "hsts": "max-age=31536000; includeSubDomains; preload",
        "csrf_cookie_secure": True,
        "session_cookie_secure": True,
        "session_cookie_httponly": True,
        "plain_status": 301,
        "plain_location": "https://atelier.example.com/accounts/login/",
    }


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/audit/"])
def test_pages_carry_the_content_security_policy(owner, path):
    client = Client()
    client.force_login(owner)
    response = client.get(path)
    assert response.status_code == 200
    directives = {d.split()[0]: d.split()[1:] for d in response["Content-Security-Policy"].split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_form_post_without_csrf_token_is_refused(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    assert client.get("/").status_code == 200  # still signed in: the refused POST did nothing


def test_htmx_post_without_csrf_header_is_refused_and_with_it_accepted(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get("/")  # base.html puts the token in hx-headers and sets the cookie
    token = page.cookies["csrftoken"].value
    assert f'hx-headers=\'{{"X-CSRFToken": "' in page.content.decode()
    refused = client.post("/accounts/logout/", HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    assert client.get("/").status_code == 200
    accepted = client.post("/accounts/logout/", HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code in (200, 302)
    assert client.get("/").status_code == 302  # signed out now
