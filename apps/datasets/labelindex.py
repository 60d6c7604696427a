"""Maintenance of the `SampleLabel` read index (see its docstring).

Every write that changes which labels a sample carries, or its usage or status, ends by
calling one of these, inside the same transaction.
"""
from __future__ import annotations

from collections.abc import Iterable

from .models import Annotation, SampleLabel

CHUNK = 500


def sample_labels_sync(sample_ids: Iterable[str]) -> None:
    """Rebuild the index rows of these samples from their annotations and current usage/status."""
    ids = list(dict.fromkeys(sample_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        SampleLabel.objects.filter(sample_id__in=chunk).delete()
        rows = (Annotation.objects.filter(sample_id__in=chunk, label__isnull=False)
                .values_list("dataset_id", "label_id", "sample_id", "sample__usage", "sample__label_status",
                             "sample__created_at").distinct())
        SampleLabel.objects.bulk_create(
            [SampleLabel(dataset_id=d, label_id=lbl, sample_id=s, usage=u, label_status=st, created_at=c)
             for d, lbl, s, u, st, c in rows], batch_size=1000)


def sample_labels_set_usage(sample_ids: list[str], usage: str) -> None:
    SampleLabel.objects.filter(sample_id__in=sample_ids).update(usage=usage)
