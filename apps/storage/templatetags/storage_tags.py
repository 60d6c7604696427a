"""Storage template helpers: links to folders and path actions, sizes, and the section's icons.

    {% load storage_tags %}
    {% folder_url entry.path %}                  browser page of a folder
    {% path_url "storage:download" entry.path %} an action URL with ?path=storage://…
    {% storage_icon "upload" %}                  icon from static/storage/icons.svg
"""
from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

from ..links import folder_url as _folder_url
from ..links import with_path

register = template.Library()


@register.simple_tag
def folder_url(path) -> str:
    return _folder_url(path)


@register.simple_tag
def path_url(url_name: str, path) -> str:
    return with_path(url_name, path)


@register.simple_tag
def storage_icon(name: str, label: str = "") -> str:
    """Icons the core sprite lacks (file, upload, download, folder-plus), drawn the same way."""
    href = f"{static('storage/icons.svg')}#s-{name}"
    if label:
        return format_html('<svg class="icon" role="img" aria-label="{}"><use href="{}"></use></svg>', label, href)
    return format_html('<svg class="icon" aria-hidden="true" focusable="false"><use href="{}"></use></svg>', href)
