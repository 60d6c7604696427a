"""Storage test fixtures: a fresh storage root per test, buckets, and a viewer in the owner's workspace."""
import io

import pytest

from apps.core.choices import Role
from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from tests.conftest import make_user
from tests.storage.backends import local_storage, moto_endpoint, storage_backend, use_local  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_storage(settings, tmp_path):
    """Every test starts with an empty local storage root (storage_backend may switch to S3)."""
    use_local(settings, tmp_path)
    get_storage.cache_clear()
    yield
    get_storage.cache_clear()


@pytest.fixture
def viewer(db, owner, workspace):
    from apps.accounts.services import membership_set

    user = make_user("vera")
    membership_set(actor=owner, workspace=workspace, user=user, role=Role.VIEWER)
    return user


def make_bucket(user, name: str, workspace=None):
    from apps.storage.services import bucket_create

    return bucket_create(user=user, workspace=workspace or user.default_workspace, name=name)


@pytest.fixture
def bucket(owner, workspace):
    """The owner's bucket "data" holding images/cat.jpg (3 bytes) and an empty folder "empty"."""
    made = make_bucket(owner, "data", workspace)
    storage = get_storage()
    storage.save(StoragePath("data", "images/cat.jpg"), io.BytesIO(b"cat"))
    storage.mkdir(StoragePath("data", "empty"))
    return made


@pytest.fixture
def other_bucket(outsider):
    """The outsider's bucket "secret" holding notes.txt."""
    made = make_bucket(outsider, "secret")
    get_storage().save(StoragePath("secret", "notes.txt"), io.BytesIO(b"classified"))
    return made


def tree(bucket_name: str) -> list[str]:
    """Every file key in a bucket, for before/after comparisons."""
    return [info.key for info in get_storage().walk(StoragePath(bucket_name, ""))]


def folders(path: str) -> list[str]:
    bucket, _, key = path.partition("/")
    return get_storage().list(StoragePath(bucket, key)).folders
