"""Fixtures of the Labeling section: datasets of each type, samples written straight into
storage, and jobs made through the services (the same path pages and the API take)."""
from __future__ import annotations

import io
import math
import struct
import uuid
import wave

import pytest
from PIL import Image

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.choices import DataType, FormatCategory, LabelType, SampleType
from apps.datasets.models import Sample

DATA_TYPE = {
    LabelType.IMAGE_CLASSIFICATION: DataType.IMAGE, LabelType.OBJECT_DETECTION: DataType.IMAGE,
    LabelType.IMAGE_SEGMENTATION: DataType.IMAGE, LabelType.SOUND_CLASSIFICATION: DataType.AUDIO,
    LabelType.SPEECH_CONTENT: DataType.AUDIO, LabelType.SPEECH_SEGMENTATION: DataType.AUDIO,
    LabelType.TEXT_CLASSIFICATION: DataType.TEXT, LabelType.NAMED_ENTITY: DataType.TEXT,
    LabelType.TEXT_TRIPLET: DataType.TEXT, LabelType.VIDEO: DataType.VIDEO,
}


def png_bytes(width=640, height=480, color=(90, 120, 160)) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    # A few shapes so screenshots show something to label.
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    draw.rectangle([width * 0.2, height * 0.3, width * 0.45, height * 0.8], fill=(220, 180, 60))
    draw.ellipse([width * 0.55, height * 0.2, width * 0.85, height * 0.6], fill=(200, 70, 70))
    image.save(out, "PNG")
    return out.getvalue()


def jpeg_bytes(width=320, height=240) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def wav_bytes(seconds=3.0, rate=8000) -> bytes:
    """A tone whose loudness rises and falls, so the waveform has a visible shape."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = bytearray()
        for n in range(int(seconds * rate)):
            envelope = 0.2 + 0.7 * abs(math.sin(math.pi * n / rate))
            frames += struct.pack("<h", int(32000 * envelope * math.sin(2 * math.pi * 440 * n / rate)))
        wav.writeframes(bytes(frames))
    return out.getvalue()


def put(uri: str, data: bytes) -> None:
    get_storage().save(parse(uri), io.BytesIO(data))


@pytest.fixture
def bucket(owner, workspace):
    from apps.storage.services import bucket_create

    return bucket_create(user=owner, workspace=workspace, name=f"lb-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def make_dataset(owner, workspace, bucket):
    from apps.datasets.services import dataset_create

    def make(label_type, name=None, ws=None, user=None):
        name = name or f"ds-{uuid.uuid4().hex[:8]}"
        return dataset_create(user=user or owner, workspace=ws or workspace, name=name,
                              data_type=DATA_TYPE[label_type], label_type=label_type,
                              input_location=parse(f"storage://{bucket.name}/{name}-in"),
                              output_location=parse(f"storage://{bucket.name}/{name}-out"))

    return make


@pytest.fixture
def add_sample(bucket):
    """Factory: a sample of the dataset's type; files are written into storage."""
    counter = {"n": 0}

    def add(dataset, *, text="", width=640, height=480, duration=None, data=None, name=None):
        counter["n"] += 1
        n = counter["n"]
        kind = dataset.data_type
        if kind == DataType.TEXT:
            return Sample.objects.create(dataset=dataset, dedupe_key=f"t{n}-{uuid.uuid4().hex[:8]}", text=text,
                                         format_category=FormatCategory.TEXT, sample_type=SampleType.TEXT)
        ext = {DataType.IMAGE: "png", DataType.AUDIO: "wav", DataType.VIDEO: "mp4"}[kind]
        name = name or f"item-{n:03d}.{ext}"
        uri = f"storage://{bucket.name}/{dataset.name}-in/{name}"
        if data is None:
            data = {DataType.IMAGE: lambda: png_bytes(width, height), DataType.AUDIO: lambda: wav_bytes(duration or 3.0),
                    DataType.VIDEO: lambda: b"\x00" * 64}[kind]()
        put(uri, data)
        sample_type = {DataType.IMAGE: SampleType.IMAGE, DataType.AUDIO: SampleType.AUDIO,
                       DataType.VIDEO: SampleType.VIDEO}[kind]
        sample = Sample.objects.create(
            dataset=dataset, dedupe_key=uri[:64] if len(uri) <= 64 else uuid.uuid4().hex, source=uri, file_name=name,
            size=len(data), width=width if kind == DataType.IMAGE else None,
            height=height if kind == DataType.IMAGE else None,
            duration=duration if kind != DataType.IMAGE else None, format_category=kind, sample_type=sample_type)
        from apps.datasets.services import dataset_counts_refresh

        dataset_counts_refresh(dataset=dataset)
        return sample

    return add


DEFAULT_LABELS = {
    LabelType.IMAGE_CLASSIFICATION: [{"name": "cat"}, {"name": "dog"}],
    LabelType.OBJECT_DETECTION: [{"name": "cat", "color": "#e6194b",
                                  "attributes": [{"name": "color", "values": ["white", "black"]}]},
                                 {"name": "dog", "color": "#3cb44b"}],
    LabelType.IMAGE_SEGMENTATION: [{"name": "road", "color": "#808080"}, {"name": "car", "color": "#ff0000"}],
    LabelType.SOUND_CLASSIFICATION: [{"name": "bird", "shortcut": "1"}, {"name": "engine", "shortcut": "2"}],
    LabelType.SPEECH_CONTENT: [],
    LabelType.SPEECH_SEGMENTATION: [{"name": "speech", "color": "#4363d8"}, {"name": "noise", "color": "#f58231"}],
    LabelType.TEXT_CLASSIFICATION: [{"name": "positive", "color": "#3cb44b"}, {"name": "negative", "color": "#e6194b"}],
    LabelType.NAMED_ENTITY: [{"name": "person", "color": "#4363d8"}, {"name": "place", "color": "#f58231"}],
    LabelType.TEXT_TRIPLET: [{"name": "Person", "color": "#4363d8", "kind": "entity"},
                             {"name": "Book", "color": "#f58231", "kind": "entity"},
                             {"name": "author", "kind": "relation", "from": "Person", "to": "Book"}],
    LabelType.VIDEO: [{"name": "car", "color": "#e6194b"}],
}


@pytest.fixture
def make_job(owner, workspace, make_dataset):
    from apps.labeling.services import job_create

    def make(label_type, *, labels=None, name=None, dataset=None, **kwargs):
        dataset = dataset or make_dataset(label_type)
        return job_create(user=owner, workspace=workspace, name=f"job-{uuid.uuid4().hex[:6]}" if name is None else name,
                          dataset=dataset, labeling_type=label_type,
                          labels=DEFAULT_LABELS[label_type] if labels is None else labels, **kwargs)

    return make
