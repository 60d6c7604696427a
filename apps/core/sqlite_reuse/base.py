"""SQLite with each worker thread reusing its own connection: the web process's database backend.

Django opens and closes a connection per request (CONN_MAX_AGE 0 is the only safe setting
under ASGI, where connections belong to a request's context, not to a thread). On SQLite a
fresh connection costs 1–2 ms before its first row: Django registers its SQL functions, runs
the PRAGMAs, and SQLite parses the whole schema again; on the 100,000-sample benchmarks that
was a third of a next-sample call. The web process serves requests on a fixed pool of reused
threads (console/http_handler.py), so this backend hands a closed connection back to its
thread instead of closing it, and the thread's next request picks it up. A connection is only
ever reused by the thread that opened it, never inside a transaction (anything open is rolled
back first), and at most one waits per thread and database.

Enabled by settings only in the web process (ATELIER_DB_POOL, set by console/asgi.py); Celery,
management commands and tests use Django's own backend.
"""
from __future__ import annotations

import threading

from django.db.backends.sqlite3 import base

_idle = threading.local()  # per thread: {database name: idle sqlite3 connection}


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        idle = getattr(_idle, "connections", {}).pop(conn_params["database"], None)
        if idle is not None:
            return idle  # PRAGMAs and registered functions are still in place
        return super().get_new_connection(conn_params)

    def _close(self):
        connection = self.connection
        if connection is None or self.in_atomic_block or self.is_in_memory_db():
            return super()._close()
        with self.wrap_database_errors:
            if connection.in_transaction:
                connection.rollback()  # a request never leaves work half done for the next one
        parked = _idle.__dict__.setdefault("connections", {})
        name = str(self.settings_dict["NAME"])
        if name in parked:
            return super()._close()
        parked[name] = connection
