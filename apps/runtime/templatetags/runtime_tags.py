"""Template filters of the Resources pages."""
from __future__ import annotations

from datetime import timedelta

from django import template

from ..logstream import human_bytes

register = template.Library()


@register.filter
def run_duration(value: timedelta | None) -> str:
    """"1h 02m", "3m 05s", "12s"."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@register.filter
def bytes_human(value) -> str:
    return human_bytes(int(value or 0))


@register.filter
def mib_human(value) -> str:
    """Memory given in MiB as GiB ("7.5 GiB")."""
    return f"{int(value or 0) / 1024:.3g} GiB"
