"""The web process's SQLite backend (apps/core/sqlite_reuse): a thread reuses its own connection.

Reused only by the thread that opened it, never with a transaction left open, never from
inside an atomic block; other threads open their own.
"""
from __future__ import annotations

import threading

import pytest
from django.db.utils import load_backend


@pytest.fixture
def wrapper_factory(tmp_path, django_db_blocker):
    backend = load_backend("apps.core.sqlite_reuse")
    settings_dict = {"ENGINE": "apps.core.sqlite_reuse", "NAME": str(tmp_path / "reuse.sqlite3"), "OPTIONS": {},
                     "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False,
                     "TIME_ZONE": None, "USER": "", "PASSWORD": "", "HOST": "", "PORT": "", "TEST": {}}

    def make():
        return backend.DatabaseWrapper(dict(settings_dict), alias="reuse")

    # A database of its own, not the test database: pytest-django only needs to let us connect.
    with django_db_blocker.unblock():
        first = make()
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE item (id integer primary key, name text)")
        first.close()
        yield make


def _raw(wrapper):
    wrapper.ensure_connection()
    return wrapper.connection


def test_same_thread_reuses_and_other_threads_do_not(wrapper_factory):
    one = wrapper_factory()
    raw = _raw(one)
    one.close()
    two = wrapper_factory()
    assert _raw(two) is raw  # the next request of this thread
    with two.cursor() as cursor:
        cursor.execute("INSERT INTO item (name) VALUES ('kept')")
    two.close()
    seen = {}

    def elsewhere():
        other = wrapper_factory()
        seen["raw"] = _raw(other)
        with other.cursor() as cursor:
            cursor.execute("SELECT name FROM item")
            seen["rows"] = cursor.fetchall()
        other.close()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen["raw"] is not raw and seen["rows"] == [("kept",)]


def test_open_work_is_rolled_back_and_atomic_blocks_really_close(wrapper_factory):
    one = wrapper_factory()
    raw = _raw(one)
    one.set_autocommit(False)
    with one.cursor() as cursor:
        cursor.execute("INSERT INTO item (name) VALUES ('half done')")
    one.close()  # parked, its transaction rolled back
    two = wrapper_factory()
    assert _raw(two) is raw and not raw.in_transaction
    with two.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM item")
        assert cursor.fetchone() == (0,)
    with _atomic(two):
        two.close()  # closed inside an atomic block: not parked
    three = wrapper_factory()
    assert _raw(three) is not raw


class _atomic:
    """transaction.atomic for a wrapper that is not in django.db.connections."""

    def __init__(self, wrapper):
        self.wrapper = wrapper

    def __enter__(self):
        self.wrapper.ensure_connection()
        self.wrapper.in_atomic_block = True

    def __exit__(self, *exc):
        self.wrapper.in_atomic_block = False
