"""Enumerations of the Labeling section (spec seed-03 §1, §2, §15)."""
from django.db import models

from apps.datasets.choices import DataType, LabelType


class Scene(models.TextChoices):
    IMAGE = DataType.IMAGE.value, "Image"
    AUDIO = DataType.AUDIO.value, "Audio"
    TEXT = DataType.TEXT.value, "Text"
    VIDEO = DataType.VIDEO.value, "Video"


# The ten labeling types of spec §1, per scene, in the order the create form shows them.
TYPES_BY_SCENE: dict[str, list[str]] = {
    Scene.IMAGE: [LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION],
    Scene.AUDIO: [LabelType.SOUND_CLASSIFICATION, LabelType.SPEECH_CONTENT, LabelType.SPEECH_SEGMENTATION],
    Scene.TEXT: [LabelType.TEXT_CLASSIFICATION, LabelType.NAMED_ENTITY, LabelType.TEXT_TRIPLET],
    Scene.VIDEO: [LabelType.VIDEO],
}
LABELING_TYPES = [t for types in TYPES_BY_SCENE.values() for t in types]
SCENE_OF_TYPE = {t: scene for scene, types in TYPES_BY_SCENE.items() for t in types}

# One line per type for the create form's cards (spec §1 table).
TYPE_DESCRIPTIONS = {
    LabelType.IMAGE_CLASSIFICATION: "Identify whether an image contains a certain object",
    LabelType.OBJECT_DETECTION: "Identify the position and category of every object in the image",
    LabelType.IMAGE_SEGMENTATION: "Divide the image into regions according to the objects in it",
    LabelType.SOUND_CLASSIFICATION: "Classify sounds",
    LabelType.SPEECH_CONTENT: "Transcribe the speech content",
    LabelType.SPEECH_SEGMENTATION: "Label speech in time segments",
    LabelType.TEXT_CLASSIFICATION: "Classify text content by labels",
    LabelType.NAMED_ENTITY: "Label entity spans in text, e.g. time or place",
    LabelType.TEXT_TRIPLET: "Label entity spans and the relations between them",
    LabelType.VIDEO: "Identify the position and category of every object in the video (MP4 only)",
}

# Table 5-22: types that support team labeling (item 7) and smart labeling (item 47).
TEAM_TYPES = {
    LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION, LabelType.SPEECH_SEGMENTATION,
    LabelType.TEXT_CLASSIFICATION, LabelType.NAMED_ENTITY, LabelType.TEXT_TRIPLET,
}
SMART_TYPES = {LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION}
# Item 4: a colour is required for these types' labels.
COLOR_REQUIRED_TYPES = {
    LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION, LabelType.TEXT_CLASSIFICATION,
    LabelType.NAMED_ENTITY, LabelType.TEXT_TRIPLET, LabelType.VIDEO, LabelType.SPEECH_SEGMENTATION,
}
# Whole-sample class labels: one annotation per label, no geometry.
CLASS_TYPES = {LabelType.IMAGE_CLASSIFICATION, LabelType.TEXT_CLASSIFICATION, LabelType.SOUND_CLASSIFICATION}
# Types drawn on an image canvas (video frames are images too).
CANVAS_TYPES = {LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION, LabelType.VIDEO}
# Quick review (item 32) exists for these two only.
REVIEW_TYPES = {LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION}
# Item 12: which tabs the detail page shows, the default first.
TABS_BY_SCENE = {
    Scene.IMAGE: ["unlabeled", "labeled", "all"],
    Scene.TEXT: ["unlabeled", "labeled"],
    Scene.AUDIO: ["unlabeled", "labeled"],
    Scene.VIDEO: ["unlabeled", "labeled", "all"],
}


class Tool(models.TextChoices):
    """Canvas tools with their number keys (table 5-27); the dashed line is a line with a style."""

    RECTANGLE = "rectangle", "Rectangle"
    POLYGON = "polygon", "Polygon"
    CIRCLE = "circle", "Circle"
    LINE = "line", "Line"
    DASHED_LINE = "dashed_line", "Dashed line"
    POINT = "point", "Point"


class SpeechLabelMode(models.TextChoices):
    SINGLE = "single", "Single label"
    MULTI = "multi", "Multi-label (label categories)"


class ListTab(models.TextChoices):
    CREATED = "created", "Created by me"
    PARTICIPATING = "participating", "I participate in"
