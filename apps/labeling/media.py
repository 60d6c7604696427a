"""Sample files for the workbench: byte ranges (audio/video seeking), downscaled image previews
and precomputed waveform peaks.

Large images are the reason for previews: a 12,000 × 9,000 photo decodes to 400 MB in a
browser tab, so the workbench first draws a JPEG whose longest edge is
ATELIER_LABELING_PREVIEW_EDGE and fetches the original only when zoomed in past it. Long
recordings are the reason for peaks: the browser never decodes the whole file to draw it.
"""
from __future__ import annotations

import io
import mimetypes
import re
import wave

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse, StreamingHttpResponse

from apps.core.paths import parse
from apps.core.storage import NotFound, get_storage
from apps.datasets.models import Sample

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024
MAX_PEAKS = 20_000  # columns of a waveform: more than any screen is wide at full zoom-out


def _stream(fh, start: int, length: int):
    try:
        if start:
            if hasattr(fh, "seekable") and fh.seekable():
                fh.seek(start)
            else:
                left = start
                while left:
                    skipped = fh.read(min(CHUNK, left))
                    if not skipped:
                        break
                    left -= len(skipped)
        left = length
        while left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        fh.close()


def media_response(request, sample: Sample | None, *, source: str | None = None) -> HttpResponse:
    """The sample's file inline, honouring one `Range: bytes=a-b` (Chromium seeks audio and video so)."""
    source = source or sample.source
    if not source:
        raise Http404("Not found.")
    storage = get_storage()
    path = parse(source)
    try:
        size = storage.stat(path).size
        fh = storage.open(path)
    except NotFound:
        raise Http404("Not found.") from None
    content_type = mimetypes.guess_type(path.key)[0] or "application/octet-stream"
    start, end, status = 0, size - 1, 200
    match = RANGE_RE.match(request.headers.get("Range", ""))
    if match and size:
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        elif last:
            start, end = max(0, size - int(last)), size - 1
        if start > end or start >= size:
            fh.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        status = 206
    response = StreamingHttpResponse(_stream(fh, start, end - start + 1), status=status, content_type=content_type)
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def preview_path(sample: Sample, edge: int):
    return parse(sample.dataset.output_location).child("labeling-previews").child(f"{sample.pk}_{edge}.jpg")


def file_response(request, path) -> HttpResponse:
    """A stored file that belongs to no sample (guide images), inline, with its type."""
    return media_response(request, None, source=path.uri)


def preview_response(request, sample: Sample) -> HttpResponse:
    """A JPEG no longer than the preview edge; small images are served as they are."""
    edge = settings.ATELIER_LABELING_PREVIEW_EDGE
    if not sample.width or not sample.height or max(sample.width, sample.height) <= edge:
        return media_response(request, sample)
    storage = get_storage()
    target = preview_path(sample, edge)
    if not storage.exists(target):
        from PIL import Image

        try:
            with storage.open(parse(sample.source)) as fh:
                data = fh.read()
        except NotFound:
            raise Http404("Not found.") from None
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (edge, edge))  # JPEG decodes at 1/2, 1/4 or 1/8 scale: far less memory and time
            image = image.convert("RGB")
            image.thumbnail((edge, edge))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=88)
        storage.save(target, io.BytesIO(out.getvalue()))
    return media_response(request, sample, source=target.uri)


def waveform_peaks(sample: Sample, columns: int) -> dict:
    """Min/max amplitude per column of a WAV (−1…1), cached per sample file."""
    columns = max(16, min(int(columns), MAX_PEAKS))
    key = f"labeling:peaks:{sample.pk}:{sample.sha256 or sample.size}:{columns}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        with get_storage().open(parse(sample.source)) as fh:
            data = fh.read()
    except NotFound:
        raise Http404("Not found.") from None
    try:
        with wave.open(io.BytesIO(data)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"The file is not a readable WAV ({exc}).") from None
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}.get(width)
    if dtype is None:
        raise ValueError(f"{8 * width}-bit WAV files have no waveform preview.")
    samples = np.frombuffer(frames, dtype=dtype)
    if width == 1:
        samples = samples.astype(np.int16) - 128
    scale = float(np.iinfo(dtype).max) if width > 1 else 128.0
    mono = samples.reshape(-1, channels).mean(axis=1) / scale if channels and samples.size else np.zeros(0)
    peaks = []
    if mono.size:
        edges = np.linspace(0, mono.size, columns + 1).astype(int)
        for lo, hi in zip(edges[:-1], edges[1:]):
            chunk = mono[lo:max(hi, lo + 1)]
            peaks.append([round(float(chunk.min()), 4), round(float(chunk.max()), 4)])
    result = {"duration": round(mono.size / rate, 3) if rate else 0, "peaks": peaks}
    cache.set(key, result, 24 * 3600)
    return result
