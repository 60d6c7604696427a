"""Enumerations of the Data section (spec seed-02 §3, §7, §9, §11)."""
from django.db import models


class DataType(models.TextChoices):
    IMAGE = "image", "Image"
    AUDIO = "audio", "Audio"
    TEXT = "text", "Text"
    VIDEO = "video", "Video"
    FREE_FORMAT = "free_format", "Free format"
    TABLE = "table", "Table"


class LabelType(models.TextChoices):
    """The labeling scenario of a dataset; the value is the manifest annotation type without prefix."""

    IMAGE_CLASSIFICATION = "image_classification", "Image classification"
    OBJECT_DETECTION = "object_detection", "Object detection"
    IMAGE_SEGMENTATION = "image_segmentation", "Image segmentation"
    SOUND_CLASSIFICATION = "audio_classification", "Sound classification"
    SPEECH_CONTENT = "audio_content", "Speech content"
    SPEECH_SEGMENTATION = "audio_segmentation", "Speech segmentation"
    TEXT_CLASSIFICATION = "text_classification", "Text classification"
    NAMED_ENTITY = "text_entity", "Named entity"
    TEXT_TRIPLET = "text_triplet", "Text triplet"
    VIDEO = "video", "Video labeling"
    FREE_FORMAT = "free_format", "Free format"
    TABLE = "table", "Table"


# Which label types each data type offers (spec §3.1).
LABEL_TYPES_BY_DATA_TYPE: dict[str, list[str]] = {
    DataType.IMAGE: [LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION],
    DataType.AUDIO: [LabelType.SOUND_CLASSIFICATION, LabelType.SPEECH_CONTENT, LabelType.SPEECH_SEGMENTATION],
    DataType.TEXT: [LabelType.TEXT_CLASSIFICATION, LabelType.NAMED_ENTITY, LabelType.TEXT_TRIPLET],
    DataType.VIDEO: [LabelType.VIDEO],
    DataType.FREE_FORMAT: [LabelType.FREE_FORMAT],
    DataType.TABLE: [LabelType.TABLE],
}
DATA_TYPE_OF_LABEL_TYPE = {lt: dt for dt, lts in LABEL_TYPES_BY_DATA_TYPE.items() for lt in lts}

# Accepted file extensions per data type (spec §15 item 1); None = any extension.
EXTENSIONS: dict[str, tuple[str, ...] | None] = {
    DataType.IMAGE: (".jpg", ".jpeg", ".png", ".bmp"),
    DataType.AUDIO: (".wav",),
    DataType.TEXT: (".txt", ".csv"),
    DataType.VIDEO: (".mp4",),
    DataType.FREE_FORMAT: None,
    DataType.TABLE: (".csv",),
}
IMAGE_EXTENSIONS = EXTENSIONS[DataType.IMAGE]

# Label types that may be imported already labeled from a directory at create time (spec §15 item 6).
LABELED_AT_CREATE = {
    LabelType.IMAGE_CLASSIFICATION,
    LabelType.OBJECT_DETECTION,
    LabelType.IMAGE_SEGMENTATION,
    LabelType.SOUND_CLASSIFICATION,
    LabelType.TEXT_CLASSIFICATION,
}
# Data split at publish (spec §9.2) and hard-example attribute.
SPLIT_LABEL_TYPES = {
    LabelType.IMAGE_CLASSIFICATION,
    LabelType.OBJECT_DETECTION,
    LabelType.TEXT_CLASSIFICATION,
    LabelType.SOUND_CLASSIFICATION,
}
HARD_ATTRIBUTE_LABEL_TYPES = {LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION}
EXPORT_LABEL_TYPES = {
    LabelType.IMAGE_CLASSIFICATION,
    LabelType.OBJECT_DETECTION,
    LabelType.IMAGE_SEGMENTATION,
    LabelType.FREE_FORMAT,
}
AUTO_GROUP_LABEL_TYPES = {LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION}
FEATURE_LABEL_TYPES = {LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION}
# Label types whose labels are per-sample classes (one annotation = one class name).
CLASSIFICATION_LABEL_TYPES = {
    LabelType.IMAGE_CLASSIFICATION,
    LabelType.SOUND_CLASSIFICATION,
    LabelType.TEXT_CLASSIFICATION,
}


class SampleType(models.IntegerChoices):
    """Manifest `sample-type` (spec §7.2); 9 is our value for free format."""

    IMAGE = 0, "Image"
    TEXT = 1, "Text"
    AUDIO = 2, "Audio"
    TABLE = 4, "Table"
    VIDEO = 6, "Video"
    OTHER = 9, "Free format"


class FormatCategory(models.TextChoices):
    """The detected category shown in the free-format list (spec §3.1)."""

    IMAGE = "image", "Image"
    TEXT = "text", "Text"
    AUDIO = "audio", "Audio"
    VIDEO = "video", "Video"
    TABLE = "table", "Table"
    OTHER = "other", "Free format"


class Usage(models.TextChoices):
    NONE = "", "None"
    TRAIN = "TRAIN", "Train"
    EVAL = "EVAL", "Eval"
    TEST = "TEST", "Test"
    INFERENCE = "INFERENCE", "Inference"


class LabelStatus(models.TextChoices):
    UNLABELED = "unlabeled", "Unlabeled"
    LABELED = "labeled", "Labeled"
    TO_CONFIRM = "to_confirm", "To be confirmed"


class LabelKind(models.TextChoices):
    CLASS = "class", "Class"
    ENTITY = "entity", "Entity"
    RELATION = "relation", "Relation"


class Shape(models.TextChoices):
    """Geometry of one annotation; `none` for whole-sample classes and transcripts."""

    NONE = "none", "None"
    BNDBOX = "bndbox", "Rectangle"
    POLYGON = "polygon", "Polygon"
    POINT = "point", "Point"
    LINE = "line", "Line"
    CIRCLE = "circle", "Circle"
    SPAN = "span", "Text span"
    RELATION = "relation", "Relation"
    SEGMENT = "segment", "Audio segment"


# The dashed line (labeling table 5-27) has no storage type of its own (labeling spec §17 item 3):
# it is a line whose properties carry this key. Manifests keep it as a property, VOC writes it
# as `<dashed>1</dashed>`, and the workbench draws it dashed.
LINE_STYLE_KEY = "@atelier:line_style"


class AnnotationSource(models.TextChoices):
    HUMAN = "human", "Human"
    MODEL = "model", "Model"


class OperationKind(models.TextChoices):
    IMPORT = "import", "Import"
    SYNC = "sync", "Sync data source"
    PUBLISH = "publish", "Publish"
    EXPORT = "export", "Export"
    ANALYSIS = "analysis", "Feature analysis"
    AUTO_GROUP = "auto_group", "Auto-grouping"
    PROCESSING = "processing", "Data processing"
    THUMBNAILS = "thumbnails", "Thumbnails"


class OperationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"


FINISHED_STATUSES = {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.STOPPED}


class ImportFormat(models.TextChoices):
    """Import layouts (spec §6 neutral IDs, ModelArts names as labels) plus COCO, Label Studio, CVAT."""

    RAW = "raw", "Unlabeled files (directory)"
    IMAGENET_FOLDER = "imagenet-folder", "ModelArts imageNet 1.0 (folder per label)"
    IMAGE_CLS_TXT = "image-cls-txt", "ModelArts image classification 1.0 (same-name .txt)"
    VOC = "voc", "ModelArts PASCAL VOC 1.0"
    YOLO = "yolo", "YOLO"
    VOC_SEG = "voc-seg", "ModelArts image segmentation 1.0"
    TEXT_CLS_COMBINED = "text-cls-combined", "ModelArts text classification combine 1.0"
    TEXT_CLS_SEPARATE = "text-cls-separate", "ModelArts text classification 1.0 (_result.txt)"
    AUDIO_CLS_FOLDER = "audio-cls-folder", "ModelArts audio classification dir 1.0"
    TABLE_CSV = "table-csv", "CSV table files"
    MANIFEST = "manifest", "Manifest (JSON Lines)"
    COCO = "coco", "COCO JSON"
    LABEL_STUDIO = "labelstudio", "Label Studio JSON"
    CVAT = "cvat", "CVAT for images 1.1 XML"


# Formats a labeled import of each label type may use.
FORMATS_BY_LABEL_TYPE: dict[str, list[str]] = {
    LabelType.IMAGE_CLASSIFICATION: [ImportFormat.IMAGENET_FOLDER, ImportFormat.IMAGE_CLS_TXT, ImportFormat.MANIFEST,
                                     ImportFormat.LABEL_STUDIO],
    LabelType.OBJECT_DETECTION: [ImportFormat.VOC, ImportFormat.YOLO, ImportFormat.COCO, ImportFormat.MANIFEST,
                                 ImportFormat.LABEL_STUDIO, ImportFormat.CVAT],
    LabelType.IMAGE_SEGMENTATION: [ImportFormat.VOC_SEG, ImportFormat.COCO, ImportFormat.MANIFEST,
                                   ImportFormat.LABEL_STUDIO, ImportFormat.CVAT],
    LabelType.SOUND_CLASSIFICATION: [ImportFormat.AUDIO_CLS_FOLDER, ImportFormat.MANIFEST],
    LabelType.SPEECH_CONTENT: [ImportFormat.MANIFEST],
    LabelType.SPEECH_SEGMENTATION: [ImportFormat.MANIFEST],
    LabelType.TEXT_CLASSIFICATION: [ImportFormat.TEXT_CLS_COMBINED, ImportFormat.TEXT_CLS_SEPARATE,
                                    ImportFormat.MANIFEST, ImportFormat.LABEL_STUDIO],
    LabelType.NAMED_ENTITY: [ImportFormat.MANIFEST, ImportFormat.LABEL_STUDIO],
    LabelType.TEXT_TRIPLET: [ImportFormat.MANIFEST],
    LabelType.VIDEO: [ImportFormat.MANIFEST],
    LabelType.FREE_FORMAT: [],
    LabelType.TABLE: [ImportFormat.TABLE_CSV],
}


class VersionFormat(models.TextChoices):
    DEFAULT = "default", "Default (manifest)"
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"


class VersionStatus(models.TextChoices):
    PUBLISHING = "publishing", "Publishing"
    NORMAL = "normal", "Normal"
    FAILED = "failed", "Failed"


class ColumnType(models.TextChoices):
    """Table schema types (spec Table 5-4)."""

    STRING = "String", "String"
    SHORT = "Short", "Short"
    INT = "Int", "Int"
    LONG = "Long", "Long"
    DOUBLE = "Double", "Double"
    FLOAT = "Float", "Float"
    BYTE = "Byte", "Byte"
    DATE = "Date", "Date (yyyy-MM-dd)"
    TIMESTAMP = "Timestamp", "Timestamp (yyyy-MM-dd HH:mm:ss)"
    BOOLEAN = "Boolean", "Boolean"


class ExportMethod(models.TextChoices):
    STORAGE = "storage", "Storage directory"
    NEW_DATASET = "new_dataset", "New dataset"


class ExportFormat(models.TextChoices):
    """Export layouts: ModelArts defaults per label type, plus manifest, YOLO, COCO and raw files."""

    DEFAULT = "default", "Default for the label type (txt / VOC / VOC + masks)"
    MANIFEST = "manifest", "Manifest (JSON Lines)"
    VOC = "voc", "PASCAL VOC"
    YOLO = "yolo", "YOLO"
    COCO = "coco", "COCO JSON"
    CSV = "csv", "CSV (one row per sample)"
    RAW = "raw", "Raw files"


class ErrorCode(models.TextChoices):
    """Per-item rejection reasons of imports and operations (spec §12)."""

    UNSUPPORTED_EXTENSION = "UNSUPPORTED_EXTENSION", "Unsupported extension"
    FILE_TOO_LARGE = "FILE_TOO_LARGE", "File too large"
    CORRUPT_IMAGE = "CORRUPT_IMAGE", "Corrupt image"
    DECOMPRESSION_BOMB = "DECOMPRESSION_BOMB", "Image too large to decode"
    ANNOTATION_PARSE_ERROR = "ANNOTATION_PARSE_ERROR", "Annotation parse error"
    BOX_OUT_OF_BOUNDS = "BOX_OUT_OF_BOUNDS", "Box outside the image"
    LABEL_QUOTA_EXCEEDED = "LABEL_QUOTA_EXCEEDED", "Label quota exceeded"
    SAMPLE_QUOTA_EXCEEDED = "SAMPLE_QUOTA_EXCEEDED", "Sample quota exceeded"
    MISSING_SOURCE = "MISSING_SOURCE", "Missing source file"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH", "Column count differs from the schema"
    LINE_TOO_LONG = "LINE_TOO_LONG", "Line too long"
    ENCODING_ERROR = "ENCODING_ERROR", "Encoding error"
    MALFORMED_LINE = "MALFORMED_LINE", "Malformed line"
    UNSAFE_ARCHIVE_ENTRY = "UNSAFE_ARCHIVE_ENTRY", "Unsafe archive entry"
    INVALID_NAME = "INVALID_NAME", "Name breaks the rules"
    LINE_COUNT_MISMATCH = "LINE_COUNT_MISMATCH", "Label file line count differs"
    STRUCTURE = "STRUCTURE", "Layout error"
    DUPLICATE = "DUPLICATE", "Duplicate"
    INVALID_VALUE = "INVALID_VALUE", "Invalid value"
    FILTERED = "FILTERED", "Filtered out"
