"""Login throttling: failed sign-ins counted per username+IP in the shared cache (Redis).

After ``ATELIER_LOGIN_MAX_FAILURES`` failures within ``ATELIER_LOGIN_LOCK_SECONDS`` the pair is
locked for ``ATELIER_LOGIN_LOCK_SECONDS``: every try is refused, even with the right password,
so guessing cannot continue in the background. The login form and the token endpoint share it.
"""
from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache

_FAILURES = "login-failures:"
_LOCK = "login-lock:"


def _pair(username: str, ip: str | None) -> str:
    # Hashed so arbitrary user input never lands in a cache key (length, spaces, control chars).
    raw = f"{(username or '').strip().lower()}\x00{ip or '-'}"
    return hashlib.sha256(raw.encode()).hexdigest()


def lock_remaining(username: str, ip: str | None) -> int:
    """Seconds until the pair may try again; 0 when it is not locked."""
    until = cache.get(_LOCK + _pair(username, ip))
    if until is None:
        return 0
    return max(0, math.ceil(until - time.time()))


def failure_register(username: str, ip: str | None) -> int:
    """Count one failed try; lock the pair when the limit is reached. Returns the failure count."""
    pair = _pair(username, ip)
    window = settings.ATELIER_LOGIN_LOCK_SECONDS
    # add() starts the window on the first failure; incr() keeps the key's expiry in Redis.
    cache.add(_FAILURES + pair, 0, timeout=window)
    try:
        count = cache.incr(_FAILURES + pair)
    except ValueError:  # the window expired between add() and incr()
        cache.set(_FAILURES + pair, 1, timeout=window)
        count = 1
    if count >= settings.ATELIER_LOGIN_MAX_FAILURES:
        cache.set(_LOCK + pair, time.time() + window, timeout=window)
        cache.delete(_FAILURES + pair)
    return count


def failures_reset(username: str, ip: str | None) -> None:
    """Forget failures and any lock of the pair (after a successful sign-in)."""
    pair = _pair(username, ip)
    cache.delete_many([_FAILURES + pair, _LOCK + pair])


def wait_text(seconds: int) -> str:
    """"4 minutes", "1 minute", "30 seconds": the wait rounded up to what a person reads."""
    if seconds >= 60:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
