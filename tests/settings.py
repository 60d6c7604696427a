"""Test settings: the real services from the environment (CI), else SQLite + embedded Redis.

When REDIS_URL is unset a private redis-server is started for the whole test session
(and stopped at exit); tests that start worker processes hand them the same URL.
"""
import atexit
import os
import tempfile
from pathlib import Path

_tmp = Path(tempfile.mkdtemp(prefix="atelier-test-"))
os.environ.setdefault("ATELIER_VAR_DIR", str(_tmp / "var"))
os.environ.setdefault("ATELIER_DEBUG", "false")
os.environ.setdefault("ATELIER_EMBEDDED", "true")
os.environ.setdefault("ATELIER_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("ATELIER_FAST_PASSWORD_HASHER", "true")
os.environ.setdefault("ATELIER_HTTPS", "false")
# Playwright's sync API runs an event loop in the test thread; Django must still allow ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Distinct key prefixes keep parallel test sessions on one Redis from seeing each other.
os.environ.setdefault("ATELIER_CACHE_PREFIX", f"atelier-test-{os.getpid()}")
os.environ.setdefault("ATELIER_CHANNEL_PREFIX", f"atelier-test-{os.getpid()}")

if not os.environ.get("REDIS_URL"):
    from apps.core.embedded_redis import start_embedded_redis

    _sock = _tmp / "redis.sock"
    _proc = start_embedded_redis(_sock, _tmp / "redis")
    atexit.register(_proc.terminate)
    os.environ["REDIS_URL"] = f"unix://{_sock}"

if not os.environ.get("DATABASE_URL"):
    # A file, not :memory:, so worker processes started by tests share the database.
    os.environ["DATABASE_URL"] = f"sqlite:///{_tmp / 'test.sqlite3'}"

from console.settings import *  # noqa: E402,F401,F403
from console.settings import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Test DB is the same file the URL names, so subprocess workers can open it.
    DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"]}
