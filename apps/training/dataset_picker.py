"""The job form's "dataset version" picker (datasets spec §15 item 48).

Beside each input channel the form offers the published dataset versions of the current
workspace, filtered by label type, version format and split status. Filtering happens here, on
the server, through `apps.datasets.selectors.versions_for_training()`, so a workspace with more
versions than one answer holds still finds every one of them by narrowing the filters.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import reverse

from .job_options import DATA_FORMAT_VERSIONS, SPLIT_VERSIONS

# One answer lists at most this many versions (a select longer than that is unusable anyway); the
# picker says when the list was cut so the user narrows the filters instead of missing a version.
PICKER_LIMIT = 200
FORMAT_NAMES = {"default": "Default", "csv": "CSV", "parquet": "Parquet"}
SPLIT_FILTERS = {"any": "Any split", "split": "Split only", "unsplit": "Unsplit only"}


def picker_filters_clean(params) -> dict:
    """The filters of a picker request (a QueryDict) → keyword arguments of versions_for_training.

    `format` may repeat (an algorithm accepting Default or CarbonData asks for both); empty values
    mean "any". Raises ValidationError with a message in words for an unknown format or split.
    """
    label_type = params.get("label_type", "").strip()
    if len(label_type) > 64:
        raise ValidationError("A label type has at most 64 characters.")
    formats = [f.strip() for f in params.getlist("format") if f.strip()]
    unknown = [f for f in formats if f not in FORMAT_NAMES]
    if unknown:
        raise ValidationError(f'Unknown format "{unknown[0][:32]}"; choose Default, CSV or Parquet.')
    split = params.get("split", "").strip() or "any"
    if split not in SPLIT_FILTERS:
        raise ValidationError(f'Unknown split filter "{split[:32]}"; choose split, unsplit or any.')
    return {"label_type": label_type, "format": formats, "split": split}


def version_choice(version) -> dict:
    """One option of the picker: the version's folder and what it is, in words."""
    split = f"split {version.train_ratio:g}" if version.split_enabled and version.train_ratio is not None else (
        "split" if version.split_enabled else "unsplit")
    fmt = FORMAT_NAMES.get(version.format, version.format)
    samples = f"{version.sample_count} sample{'' if version.sample_count == 1 else 's'}"
    return {"uri": version.storage_uri, "label": f"{version.dataset.name} / {version.name}",
            "text": f"{version.dataset.name} / {version.name} · {version.label_type} · {fmt} · {split} · {samples}",
            "label_type": version.label_type, "format": version.format, "split": version.split_enabled,
            "train_ratio": version.train_ratio, "sample_count": version.sample_count}


def picker_versions(user, workspace, **filters) -> tuple[list[dict], bool]:
    """Matching versions of `workspace` the user may read, at most PICKER_LIMIT; and whether more matched."""
    from apps.datasets.selectors import versions_for_training

    versions = list(versions_for_training(user, workspace=workspace, **filters)[:PICKER_LIMIT + 1])
    return [version_choice(v) for v in versions[:PICKER_LIMIT]], len(versions) > PICKER_LIMIT


def picker_boot(user, workspace) -> dict:
    """What the form needs before the first request: the endpoint and the label types present.

    The label-type filter offers only the label types the workspace's published versions have. An
    empty list means the workspace has no published version: the form then offers the picker only
    to inputs whose algorithm requires a dataset (which then says none matches).
    """
    from apps.datasets.choices import LabelType
    from apps.datasets.selectors import versions_for_training

    present = (versions_for_training(user, workspace=workspace).order_by("label_type")
               .values_list("label_type", flat=True).distinct())
    names = dict(LabelType.choices)
    return {"url": reverse("training:dataset_versions"), "limit": PICKER_LIMIT,
            "label_types": [[value, names.get(value, value)] for value in present],
            "formats": [[value, name] for value, name in FORMAT_NAMES.items()],
            "splits": [[value, name] for value, name in SPLIT_FILTERS.items() if value != "any"],
            # How an algorithm's input constraint maps onto the filters: the server's own tables.
            "constraint_formats": DATA_FORMAT_VERSIONS,
            "constraint_splits": {k: v for k, v in SPLIT_VERSIONS.items() if v != "any"}}
