"""Local upload (spec §5.5): files and zip archives stored under the input folder, then imported."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.paths import validate_upload_name
from apps.core.permissions import require_perm
from apps.core.storage import get_storage

from .choices import OperationKind
from .models import Dataset, DatasetOperation
from .services import dataset_paths, operation_start


def dataset_upload(*, user, dataset: Dataset, files: list, import_format: str, labeled: bool | None = None,
                   storage_path: str = "") -> DatasetOperation:
    """Store one upload batch (≤ 100 files, ≤ 5 GB by default) and start its import.

    Plain files land in `<folder>/upload-<time>/`, where `<folder>` is `storage_path` when the
    user chose one ("storage path for uploaded data", labeling spec §3.6) and the dataset's input
    location otherwise; the time-stamped subfolder means an upload never overwrites a file
    already there. A chosen path must be a folder the user may write (`storage:create`) outside
    the dataset's output location (which holds versions and exports); refusals name the
    `storage_path` field. Zip archives are kept aside and unpacked entry by entry by the import
    run, so unsafe entries become error rows. File names breaking the upload rules refuse the
    whole batch before anything is stored.
    """
    require_perm(user, dataset.workspace, "dataset:import")
    input_path, output_path = dataset_paths(dataset)
    base = input_path
    if storage_path:
        from apps.storage.selectors import storage_path_resolve

        try:
            base = storage_path_resolve(user, storage_path, "storage:create", kind="folder")
        except ValidationError as exc:
            raise ValidationError({"storage_path": exc.messages}) from None
        if base.is_within(output_path):
            raise ValidationError({"storage_path": [
                f"The storage path for uploaded data cannot be the dataset's output location "
                f"({output_path.uri}) or a folder inside it; choose another folder."]})
    max_files, max_bytes = settings.ATELIER_DATASET_MAX_UPLOAD_FILES, settings.ATELIER_DATASET_MAX_UPLOAD_BYTES
    if not files:
        raise ValidationError({"files": ["Choose at least one file to upload."]})
    if len(files) > max_files:
        raise ValidationError({"files": [f"One upload holds at most {max_files} files; this one has {len(files)}."]})
    total = sum(f.size for f in files)
    if total > max_bytes:
        raise ValidationError({"files": [f"One upload holds at most {max_bytes} bytes; this one has {total}."]})
    for upload in files:
        try:
            validate_upload_name(upload.name)
        except ValidationError as exc:
            raise ValidationError({"files": exc.messages}) from None
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    folder = base.child(f"upload-{stamp}")
    storage = get_storage()
    storage.mkdir(folder)
    archives = []
    for upload in files:
        if upload.name.lower().endswith(".zip"):
            target = output_path.child("temp").child(f"upload-{stamp}-{upload.name}")
            archives.append(target.uri)
        else:
            target = folder.child(upload.name)
        upload.seek(0)
        storage.save(target, upload)
    params = {"path": folder.uri, "format": import_format, "archives": archives, "source": "upload"}
    if labeled is not None:
        params["labeled"] = labeled
    return operation_start(user=user, dataset=dataset, kind=OperationKind.IMPORT, params=params)
