"""Storage backend fixtures: a fresh local root, or S3 on moto's server, per test.

`storage_backend` is parametrized over both backends, so a test that uses it runs twice
against the same behavioural expectations. Imported by tests/storage/conftest.py and the
storage-layer tests in tests/core/.
"""
from __future__ import annotations

import uuid

import pytest

from apps.core.storage import get_storage


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto S3 server for the session, on a free loopback port."""
    from moto.server import ThreadedMotoServer

    from tests.harness import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def use_local(settings, tmp_path):
    settings.ATELIER_STORAGE_BACKEND = "local"
    settings.ATELIER_STORAGE_ROOT = tmp_path / "storage"


def use_s3(settings, endpoint: str):
    settings.ATELIER_STORAGE_BACKEND = "s3"
    settings.ATELIER_S3_ENDPOINT_URL = endpoint
    settings.ATELIER_S3_REGION = "us-east-1"
    settings.ATELIER_S3_ACCESS_KEY = "testing"
    settings.ATELIER_S3_SECRET_KEY = "testing"
    # A physical bucket per test keeps tests independent without cleaning up the server.
    settings.ATELIER_S3_BUCKET = f"atelier-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def local_storage(settings, tmp_path):
    """The local backend rooted in this test's temporary directory."""
    use_local(settings, tmp_path)
    get_storage.cache_clear()
    yield get_storage()
    get_storage.cache_clear()


@pytest.fixture(params=["local", "s3"])
def storage_backend(request, settings, tmp_path):
    """The configured backend (`get_storage()`), once local and once S3 (moto)."""
    if request.param == "s3":
        use_s3(settings, request.getfixturevalue("moto_endpoint"))
    else:
        use_local(settings, tmp_path)
    get_storage.cache_clear()
    yield get_storage()
    get_storage.cache_clear()
