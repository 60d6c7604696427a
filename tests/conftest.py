"""Shared fixtures: the named cast (owner, teammate, outsider) and API clients.

Owner and teammate share the owner's workspace; the outsider has only their own.
"""
import pytest
from rest_framework.test import APIClient

from apps.core.choices import Role

PASSWORD = "correct-horse-battery-9"


def make_user(username: str, *, is_staff: bool = False):
    from apps.accounts.services import user_create

    return user_create(username=username, password=PASSWORD, email=f"{username}@example.test", is_staff=is_staff)


@pytest.fixture(autouse=True)
def isolated_storage_root(settings, tmp_path):
    """Each test gets its own local storage root, so leftovers never leak between tests.

    Worker processes started by a test inherit this root through `tests.harness.subprocess_env`.
    """
    from apps.core.storage import get_storage

    settings.ATELIER_STORAGE_ROOT = tmp_path / "storage"
    get_storage.cache_clear()
    yield
    get_storage.cache_clear()


@pytest.fixture
def owner(db):
    return make_user("alice")


@pytest.fixture
def workspace(owner):
    return owner.default_workspace


@pytest.fixture
def teammate(db, owner, workspace):
    from apps.accounts.services import membership_set

    user = make_user("bob")
    membership_set(actor=owner, workspace=workspace, user=user, role=Role.DEVELOPER)
    return user


@pytest.fixture
def outsider(db):
    return make_user("charlie")


@pytest.fixture
def staff(db):
    return make_user("root-admin", is_staff=True)


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def outsider_api(outsider):
    client = APIClient()
    client.force_authenticate(outsider)
    return client


# Real-service fixtures: asgi_server, celery_worker, browser, page, login (see tests/harness.py).
from tests.harness import asgi_server, browser, celery_worker, login, page  # noqa: E402,F401
# Docker for the custom-image tests: skipped without a daemon unless ATELIER_TEST_DOCKER=required.
from tests.dockerd import docker_daemon  # noqa: E402,F401


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the item so the page fixture can screenshot failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
