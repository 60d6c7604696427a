"""The labeling guide (spec §3.9, item 21): rich text with example images, written by the job
owner and shown to labelers.

The guide is stored as a small Markdown subset and rendered here, escaping first and adding
markup after, so no HTML a writer types ever reaches the page: `# ` / `## ` headings, `- `
bullet items, blank-line paragraphs, `**bold**`, `*italic*`, `[text](https://…)` links and
`![caption](guide:<name>)` images. Images are files uploaded into the dataset's output location
under `guide/<job id>/` and served by the job's own scoped view; no other image source renders.
"""
from __future__ import annotations

import io
import re
import uuid

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.core.paths import StoragePath, parse

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # an example picture, not a dataset sample
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
NAME_RE = re.compile(r"^[0-9a-f]{32}\.(jpg|png|gif|webp)$")

_IMAGE = re.compile(r"!\[([^\]]*)\]\(guide:([0-9a-f]{32}\.(?:jpg|png|gif|webp))\)")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^\s)]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")


def image_folder(job) -> StoragePath:
    return parse(job.dataset.output_location).child("guide").child(str(job.pk))


def image_check(data: bytes, filename: str) -> str:
    """The file extension for an acceptable example image, else ValidationError on `image`."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValidationError({"image": [f"{filename or 'The file'} is empty."]})
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError({"image": [f"{filename} has {len(data)} bytes; a guide image has at most "
                                         f"{MAX_IMAGE_BYTES} bytes."]})
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValidationError({"image": [f"{filename} is not a readable image (JPEG, PNG, GIF or WebP)."]}) from None
    if kind not in IMAGE_FORMATS:
        raise ValidationError({"image": [f"{filename} is a {kind} image; use JPEG, PNG, GIF or WebP."]})
    return IMAGE_FORMATS[kind]


def new_image_name(extension: str) -> str:
    return f"{uuid.uuid4().hex}.{extension}"


def _inline(text: str, job) -> str:
    """Inline markup over already-escaped text."""
    def image(match):
        url = reverse("labeling:guide_image", args=[job.pk, match.group(2)])
        return f'<img src="{url}" alt="{match.group(1)}" loading="lazy" class="lb-guide-image">'

    text = _IMAGE.sub(image, text)
    text = _LINK.sub(lambda m: f'<a href="{m.group(2)}" rel="noopener noreferrer" target="_blank">{m.group(1)}</a>',
                     text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    return _ITALIC.sub(r"<em>\1</em>", text)


def render(source: str, job) -> SafeString:
    """The guide as safe HTML (see the module docstring for the accepted markup)."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []

    def close():
        if paragraph:
            blocks.append("<p>" + "<br>".join(paragraph) + "</p>")
            paragraph.clear()
        if items:
            blocks.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()

    for raw in (source or "").replace("\r\n", "\n").split("\n"):
        line = _inline(escape(raw.strip()), job)
        if not raw.strip():
            close()
        elif raw.startswith("## "):
            close()
            blocks.append(f"<h4>{line[3:]}</h4>")
        elif raw.startswith("# "):
            close()
            blocks.append(f"<h3>{line[2:]}</h3>")
        elif raw.lstrip().startswith("- "):
            if paragraph:
                close()
            items.append(line[2:])
        else:
            if items:
                close()
            paragraph.append(line)
    close()
    return mark_safe("".join(blocks))  # noqa: S308 — every piece of text went through escape() above
