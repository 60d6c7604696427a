"""Accounts test helpers: throttle counters live in Redis, outside the per-test database rollback."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts import throttling

# Every username the accounts tests sign in with, from the test client's address.
_SIGN_IN_NAMES = ["alice", "bob", "charlie", "root-admin", "nobody", "Alice"]
TEST_IP = "127.0.0.1"


@pytest.fixture(autouse=True)
def _fresh_login_throttle():
    for name in _SIGN_IN_NAMES:
        throttling.failures_reset(name, TEST_IP)
    yield
    for name in _SIGN_IN_NAMES:
        throttling.failures_reset(name, TEST_IP)


@pytest.fixture
def small_throttle(settings):
    """Three failures lock the pair for 120 seconds."""
    settings.ATELIER_LOGIN_MAX_FAILURES = 3
    settings.ATELIER_LOGIN_LOCK_SECONDS = 120
    return settings


@pytest.fixture
def query_count():
    """`query_count(callable)` → how many SQL queries the call ran."""

    def run(func) -> int:
        with CaptureQueriesContext(connection) as ctx:
            func()
        return len(ctx.captured_queries)

    return run
