"""Template helpers shared by every section: `{% icon %}` and the status → colour mapping.

    {% load console %}
    {% icon "database" %}                      inline SVG from static/core/icons.svg
    {% icon "trash" label="Delete" %}          same, announced to screen readers
    {{ job.status|status_tone }}               "success", "danger", … (see STATUS_TONES)
    {{ entry.detail|json_pretty }}             indented JSON for <pre> blocks
"""
from __future__ import annotations

import json

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()

# Every status any section shows, grouped by the colour it gets. Unknown statuses are neutral.
STATUS_TONES: dict[str, str] = {
    **dict.fromkeys(
        ["queued", "pending", "waiting", "scheduled", "creating", "starting", "initializing", "draft"], "pending"
    ),
    **dict.fromkeys(
        ["running", "deploying", "importing", "exporting", "stopping", "processing", "labeling", "training"], "running"
    ),
    **dict.fromkeys(
        ["succeeded", "success", "completed", "online", "active", "ready", "healthy", "published", "ok"], "success"
    ),
    **dict.fromkeys(["failed", "failure", "error", "lost", "denied", "unhealthy", "expired", "abnormal"], "danger"),
    **dict.fromkeys(["warning", "degraded", "hung", "retrying"], "warning"),
    **dict.fromkeys(
        ["stopped", "offline", "revoked", "cancelled", "canceled", "archived", "paused", "deleted", "unknown",
         "terminated"], "muted"
    ),
}


@register.filter
def status_tone(status) -> str:
    """The badge tone of a status value (case-insensitive); "neutral" when unknown."""
    return STATUS_TONES.get(str(status or "").strip().lower(), "neutral")


@register.simple_tag
def icon(name: str, label: str = "", size: str = "") -> str:
    """An icon from the sprite; decorative unless `label` is given."""
    href = f"{static('core/icons.svg')}#i-{name}"
    size_class = f" icon-{size}" if size else ""
    if label:
        return format_html('<svg class="icon{}" role="img" aria-label="{}"><use href="{}"></use></svg>',
                           size_class, label, href)
    return format_html('<svg class="icon{}" aria-hidden="true" focusable="false"><use href="{}"></use></svg>',
                       size_class, href)


@register.filter
def json_pretty(value) -> str:
    """Indented, key-sorted JSON (autoescaped by the template like any text)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
