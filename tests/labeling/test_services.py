"""Labeling services: job rules (spec seed-03 §19 A), annotation saves per type with their refusals,
optimistic concurrency, batch labeling, label management and video frames."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from apps.core.choices import Role
from apps.core.models import AuditEntry
from apps.datasets.choices import LabelStatus, LabelType
from apps.datasets.models import Annotation, Label, Sample
from apps.labeling import selectors, services
from apps.labeling.models import LabelingJob, LabelSetting

from .conftest import jpeg_bytes

pytestmark = pytest.mark.django_db


def messages(exc: ValidationError) -> dict:
    return exc.value.message_dict


# ---- A. job creation -----------------------------------------------------------------------------------------


def test_job_create_records_type_dataset_labels_and_audit(owner, make_job):
    job = make_job(LabelType.OBJECT_DETECTION, name="boxes-1")
    assert (job.name, job.labeling_type, job.scene, job.created_by) == ("boxes-1", "object_detection", "image", owner)
    labels = list(Label.objects.filter(dataset=job.dataset).values_list("name", "color"))
    assert labels == [("cat", "#e6194b"), ("dog", "#3cb44b")]
    assert Label.objects.get(dataset=job.dataset, name="cat").attributes == [
        {"name": "color", "values": ["white", "black"]}]
    assert AuditEntry.objects.filter(action="labeling:create", object_id=str(job.pk)).count() == 1


def test_job_create_refuses_dataset_of_another_type(owner, workspace, make_dataset):
    dataset = make_dataset(LabelType.IMAGE_CLASSIFICATION)
    with pytest.raises(ValidationError) as exc:
        services.job_create(user=owner, workspace=workspace, name="j", dataset=dataset,
                            labeling_type=LabelType.OBJECT_DETECTION)
    assert "labeled for Image classification, not Object detection" in messages(exc)["dataset"][0]
    assert LabelingJob.objects.count() == 0


def test_description_of_257_characters_is_refused_and_256_accepted(make_job):
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.IMAGE_CLASSIFICATION, description="x" * 257)
    assert messages(exc)["description"] == ["The description has 257 characters; at most 256 are allowed."]
    assert make_job(LabelType.IMAGE_CLASSIFICATION, description="x" * 256).description == "x" * 256


def test_job_name_is_required(make_job):
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.IMAGE_CLASSIFICATION, name="")
    assert messages(exc)["name"] == [services.JOB_NAME_MESSAGE]


def test_label_names_duplicate_refused_case_sensitive_distinct(make_job):
    job = make_job(LabelType.IMAGE_CLASSIFICATION, labels=[{"name": "data"}, {"name": "Data"}])
    assert sorted(Label.objects.filter(dataset=job.dataset).values_list("name", flat=True)) == ["Data", "data"]
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.IMAGE_CLASSIFICATION, labels=[{"name": "data"}, {"name": "data"}])
    assert messages(exc)["labels.1.name"] == ['The label "data" already exists in this dataset.']


def test_label_name_longer_than_1024_is_refused(make_job):
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.IMAGE_CLASSIFICATION, labels=[{"name": "a" * 1025}])
    assert messages(exc)["labels.0.name"] == ["A label name has at most 1024 characters; this one has 1025."]


def test_speech_segmentation_label_charset_and_length(make_job):
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.SPEECH_SEGMENTATION, labels=[{"name": "a b", "color": "#112233"}])
    assert "1–256 characters" in messages(exc)["labels.0.name"][0]
    with pytest.raises(ValidationError):
        make_job(LabelType.SPEECH_SEGMENTATION, labels=[{"name": "x" * 257, "color": "#112233"}])
    job = make_job(LabelType.SPEECH_SEGMENTATION, labels=[{"name": "说话人_1.a-b", "color": "#112233"}])
    assert Label.objects.get(dataset=job.dataset).name == "说话人_1.a-b"


@pytest.mark.parametrize("label_type", [LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION,
                                        LabelType.TEXT_CLASSIFICATION, LabelType.NAMED_ENTITY, LabelType.VIDEO,
                                        LabelType.SPEECH_SEGMENTATION])
def test_colour_is_required_for_coloured_types(make_job, label_type):
    with pytest.raises(ValidationError) as exc:
        make_job(label_type, labels=[{"name": "thing"}])
    assert messages(exc)["labels.0.color"] == ['Choose a colour for "thing" (required for this labeling type).']


def test_invalid_hex_colour_is_refused(make_job):
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.OBJECT_DETECTION, labels=[{"name": "cat", "color": "#12345g"}])
    assert messages(exc)["labels.0.color"] == ['"#12345g" is not a colour; write it as #rrggbb.']


def test_triplet_relation_needs_two_entities_and_both_ends(make_job):
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.TEXT_TRIPLET, labels=[{"name": "P", "color": "#111111", "kind": "entity"},
                                                 {"name": "r", "kind": "relation", "from": "P", "to": "P"}])
    assert messages(exc)["labels.1.kind"] == ["Add at least two entity labels before a relation label."]
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.TEXT_TRIPLET, labels=[
            {"name": "P", "color": "#111111", "kind": "entity"}, {"name": "B", "color": "#222222", "kind": "entity"},
            {"name": "r", "kind": "relation", "from": "P"}])
    assert messages(exc)["labels.2.to"][0].startswith("A relation label names its end entity label")
    job = make_job(LabelType.TEXT_TRIPLET)
    relation = Label.objects.get(dataset=job.dataset, name="author")
    assert (relation.kind, relation.from_label.name, relation.to_label.name) == ("relation", "Person", "Book")


@pytest.mark.parametrize("label_type", [LabelType.IMAGE_SEGMENTATION, LabelType.SOUND_CLASSIFICATION,
                                        LabelType.SPEECH_CONTENT, LabelType.VIDEO])
def test_team_labeling_refused_for_types_without_it(make_job, label_type):
    with pytest.raises(ValidationError) as exc:
        make_job(label_type, team_enabled=True)
    assert messages(exc)["team_enabled"][0].endswith("does not support team labeling.")


def test_team_labeling_accepted_for_team_types(make_job):
    assert make_job(LabelType.NAMED_ENTITY, team_enabled=True).team_enabled is True


@override_settings(ATELIER_DATASET_MAX_LABELS=3)
def test_label_cap_refuses_more_labels_and_counts_what_is_left(make_job, make_dataset):
    dataset = make_dataset(LabelType.IMAGE_CLASSIFICATION)
    assert services.label_cap_left(dataset) == 3
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.IMAGE_CLASSIFICATION, dataset=dataset, labels=[{"name": n} for n in "abcd"])
    assert messages(exc)["labels"] == ["4 new labels exceed the cap: the dataset may hold 3 labels and 3 more can "
                                       "be created."]
    make_job(LabelType.IMAGE_CLASSIFICATION, dataset=dataset, labels=[{"name": "a"}])
    assert services.label_cap_left(dataset) == 2


def test_labeler_cannot_create_a_job(workspace, owner, make_dataset, teammate):
    from apps.accounts.services import membership_set

    membership_set(actor=owner, workspace=workspace, user=teammate, role=Role.LABELER)
    teammate.__dict__.pop("_atelier_roles", None)
    with pytest.raises(PermissionDenied):
        services.job_create(user=teammate, workspace=workspace, name="j", dataset=make_dataset("text_entity"),
                            labeling_type="text_entity")
    assert LabelingJob.objects.count() == 0


def test_copy_keeps_dataset_labels_and_options_without_new_annotations(owner, make_job, add_sample):
    job = make_job(LabelType.SOUND_CLASSIFICATION, name="sounds")
    sample = add_sample(job.dataset, duration=3.0)
    services.annotations_save(user=owner, job=job, sample=sample, version=0, annotations=[{"label": "bird"}])
    before = Annotation.objects.count()
    copy = services.job_copy(user=owner, job=job)
    assert copy.name.startswith("sounds-copy-") and len(copy.name) == len("sounds-copy-") + 4
    assert (copy.dataset_id, copy.labeling_type) == (job.dataset_id, job.labeling_type)
    assert sorted(copy.label_settings.values_list("label__name", "shortcut")) == [("bird", "1"), ("engine", "2")]
    assert Annotation.objects.count() == before


def test_delete_with_annotations_needs_the_typed_name(owner, make_job, add_sample):
    job = make_job(LabelType.IMAGE_CLASSIFICATION, name="to-delete")
    sample = add_sample(job.dataset)
    services.annotations_save(user=owner, job=job, sample=sample, version=0, annotations=[{"label": "cat"}])
    with pytest.raises(ValidationError) as exc:
        services.job_delete(user=owner, job=job, delete_annotations=True)
    assert messages(exc)["confirm"] == ['Type the job name "to-delete" to confirm: the job is deleted and its 1 '
                                        "annotations are deleted with it."]
    assert LabelingJob.objects.filter(pk=job.pk).exists()
    services.job_delete(user=owner, job=job, delete_annotations=True, confirm="to-delete")
    assert not LabelingJob.objects.filter(pk=job.pk).exists()
    sample.refresh_from_db()
    assert (Annotation.objects.count(), sample.label_status) == (0, "unlabeled")


# ---- annotation saves ----------------------------------------------------------------------------------------


@pytest.fixture
def detection(make_job, add_sample):
    job = make_job(LabelType.OBJECT_DETECTION)
    return job, add_sample(job.dataset, width=640, height=480)


def save(owner, job, sample, annotations, version=None):
    if version is None:
        sample.refresh_from_db()
        version = sample.annotation_version
    return services.annotations_save(user=owner, job=job, sample=sample, version=version, annotations=annotations)


def test_every_detection_shape_saves_with_provenance(owner, detection):
    job, sample = detection
    result = save(owner, job, sample, [
        {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 10, "ymin": 20, "xmax": 110, "ymax": 220},
         "attributes": {"color": "white"}},
        {"label": "dog", "shape": "polygon", "geometry": {"points": [[1, 1], [50, 1], [25, 40]]}},
        {"label": "dog", "shape": "circle", "geometry": {"cx": 300, "cy": 200, "r": 50}},
        {"label": "cat", "shape": "line", "geometry": {"points": [[0, 0], [100, 100]]}},
        {"label": "cat", "shape": "line", "style": "dashed", "geometry": {"points": [[5, 5], [60, 9]]}},
        {"label": "dog", "shape": "point", "geometry": {"x": 320.456, "y": 10}},
    ])
    assert (result["version"], result["created"], result["status"]) == (1, 6, "labeled")
    rows = list(Annotation.objects.filter(sample=sample).order_by("id").values_list(
        "shape", "geometry", "properties", "annotated_by", "source", "created_by"))
    assert rows[0] == ("bndbox", {"xmin": 10, "ymin": 20, "xmax": 110, "ymax": 220}, {"color": "white"}, "alice",
                       "human", owner.pk)
    assert rows[4][2] == {"@atelier:line_style": "dashed"}
    assert rows[5][1] == {"x": 320.46, "y": 10}
    sample.refresh_from_db()
    job.dataset.refresh_from_db()
    assert (sample.annotation_version, sample.label_status, job.dataset.labeled_count) == (1, "labeled", 1)


def test_shapes_are_clamped_into_the_image(owner, detection):
    job, sample = detection
    save(owner, job, sample, [
        {"label": "cat", "shape": "bndbox", "geometry": {"xmin": -20, "ymin": 400, "xmax": 700, "ymax": 900}},
        {"label": "cat", "shape": "polygon", "geometry": {"points": [[-5, -5], [700, 0], [700, 500]]}},
        {"label": "cat", "shape": "circle", "geometry": {"cx": 600, "cy": 240, "r": 100}},
        {"label": "cat", "shape": "point", "geometry": {"x": 1000, "y": -3}},
    ])
    geometries = list(Annotation.objects.filter(sample=sample).order_by("id").values_list("geometry", flat=True))
    assert geometries == [{"xmin": 0, "ymin": 400, "xmax": 640, "ymax": 480},
                          {"points": [[0, 0], [640, 0], [640, 480]]}, {"cx": 600, "cy": 240, "r": 40},
                          {"x": 640, "y": 0}]


@pytest.mark.parametrize("annotation, field, message", [
    ({"label": "cat", "shape": "bndbox", "geometry": {"xmin": 10, "ymin": 10, "xmax": 10, "ymax": 50}},
     "annotations.0.geometry", "The box has zero area; a box needs a width and a height inside the image."),
    ({"label": "cat", "shape": "bndbox", "geometry": {"xmin": 700, "ymin": 10, "xmax": 800, "ymax": 50}},
     "annotations.0.geometry", "The box lies outside the 640×480 image; a box needs a width and a height inside "
                               "the image."),
    ({"label": "cat", "shape": "polygon", "geometry": {"points": [[1, 1], [5, 5]]}},
     "annotations.0.geometry", "A polygon needs at least 3 distinct points inside the image; this one has 2."),
    ({"label": "cat", "shape": "polygon", "geometry": {"points": [[1, 1], [5, 5], [9, 9]]}},
     "annotations.0.geometry", "The polygon has zero area (its points are on one line) inside the image."),
    ({"label": "cat", "shape": "circle", "geometry": {"cx": 700, "cy": 10, "r": 5}},
     "annotations.0.geometry", "The circle's centre (700, 10) is outside the 640×480 image."),
    ({"label": "cat", "shape": "line", "geometry": {"points": [[3, 3], [3, 3]]}},
     "annotations.0.geometry", "A line needs at least 2 distinct points inside the image; this one has 1."),
    ({"label": "horse", "shape": "point", "geometry": {"x": 1, "y": 1}},
     "annotations.0.label", 'The label "horse" does not exist in this job; add it to the label set first '
                            "(names are case-sensitive)."),
    ({"label": "Cat", "shape": "point", "geometry": {"x": 1, "y": 1}},
     "annotations.0.label", 'The label "Cat" does not exist in this job; add it to the label set first '
                            "(names are case-sensitive)."),
    ({"label": "cat", "shape": "cuboid", "geometry": {}},
     "annotations.0.shape", '"cuboid" is not a shape of this job; use bndbox, circle, line, point, polygon.'),
    ({"label": "cat", "shape": "point", "geometry": {"x": "1", "y": 1}}, "annotations.0.geometry.x",
     "'1' is not a number."),
    ({"label": "cat", "shape": "point", "style": "dashed", "geometry": {"x": 1, "y": 1}}, "annotations.0.style",
     "Only lines can be dashed."),
    ({"label": "cat", "shape": "point", "geometry": {"x": 1, "y": 1}, "attributes": {"size": "big"}},
     "annotations.0.attributes", '"cat" has no attribute "size"; its attributes: color.'),
    ({"label": "cat", "shape": "point", "geometry": {"x": 1, "y": 1}, "attributes": {"color": "red"}},
     "annotations.0.attributes", '"red" is not a value of "color"; choose one of white, black.'),
])
def test_bad_shapes_are_refused_with_the_rule_and_nothing_changes(owner, detection, annotation, field, message):
    job, sample = detection
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [annotation])
    assert messages(exc) == {field: [message]}
    sample.refresh_from_db()
    assert (sample.annotation_version, Annotation.objects.count(), sample.label_status) == (0, 0, "unlabeled")


def test_stale_version_conflicts_and_keeps_the_first_save(owner, teammate, detection):
    job, sample = detection
    box = {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}}
    services.annotations_save(user=teammate, job=job, sample=sample, version=0, annotations=[box])
    with pytest.raises(services.AnnotationConflict) as exc:
        services.annotations_save(user=owner, job=job, sample=sample, version=0, annotations=[])
    assert exc.value.sample.annotation_version == 1
    assert list(Annotation.objects.values_list("annotated_by", flat=True)) == ["bob"]


def test_unchanged_annotations_keep_their_provenance_and_ids(owner, teammate, detection):
    job, sample = detection
    box = {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}}
    services.annotations_save(user=teammate, job=job, sample=sample, version=0, annotations=[box, dict(box)])
    first, second = Annotation.objects.order_by("id")
    result = save(owner, job, sample, [{**box, "id": first.pk},
                                       {**box, "id": second.pk, "geometry": {"xmin": 2, "ymin": 2, "xmax": 9,
                                                                              "ymax": 9}}])
    assert (result["created"], result["updated"], result["deleted"]) == (0, 1, 0)
    rows = list(Annotation.objects.order_by("id").values_list("pk", "annotated_by"))
    assert rows == [(first.pk, "bob"), (second.pk, "alice")]


def test_clearing_a_sample_returns_it_to_unlabeled(owner, detection):
    job, sample = detection
    save(owner, job, sample, [{"label": "cat", "shape": "point", "geometry": {"x": 1, "y": 1}}])
    save(owner, job, sample, [])
    sample.refresh_from_db()
    job.dataset.refresh_from_db()
    assert (sample.label_status, sample.annotation_version, job.dataset.labeled_count) == ("unlabeled", 2, 0)


def test_segmentation_takes_polygons_only_and_locks_the_tool(owner, make_job, add_sample):
    job = make_job(LabelType.IMAGE_SEGMENTATION)
    sample = add_sample(job.dataset)
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [{"label": "road", "shape": "bndbox",
                                   "geometry": {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}}])
    assert messages(exc) == {"annotations.0.shape": ['"bndbox" is not a shape of this job; use polygon.']}
    assert job.tool_mode == ""
    save(owner, job, sample, [{"label": "road", "shape": "polygon", "geometry": {"points": [[0, 0], [9, 0], [0, 9]]}}])
    job.refresh_from_db()
    assert job.tool_mode == "polygon"


def test_classification_dedupes_labels_and_refuses_geometry_labels(owner, make_job, add_sample):
    job = make_job(LabelType.IMAGE_CLASSIFICATION)
    sample = add_sample(job.dataset)
    result = save(owner, job, sample, [{"label": "cat"}, {"label": "dog"}, {"label": "cat"}])
    assert result["created"] == 2
    assert sorted(Annotation.objects.values_list("label__name", "shape")) == [("cat", "none"), ("dog", "none")]


def test_named_entity_spans_and_offsets_beyond_the_text(owner, make_job, add_sample):
    job = make_job(LabelType.NAMED_ENTITY)
    sample = add_sample(job.dataset, text="Michael Jordan visited Paris.")
    save(owner, job, sample, [{"label": "person", "shape": "span", "geometry": {"start": 0, "end": 7}},
                              {"label": "place", "shape": "span", "geometry": {"start": 23, "end": 28}}])
    assert list(Annotation.objects.order_by("id").values_list("geometry", flat=True)) == [
        {"start": 0, "end": 7}, {"start": 23, "end": 28}]
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [{"label": "place", "shape": "span", "geometry": {"start": 23, "end": 40}}])
    assert messages(exc) == {"annotations.0.geometry": [
        "The span 23–40 lies beyond the text, which has 29 characters (offsets 0–29)."]}
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [{"label": "place", "shape": "span", "geometry": {"start": 5, "end": 5}}])
    assert messages(exc) == {"annotations.0.geometry": ["The span 5–5 is empty; its end comes after its start."]}


def test_triplet_relations_follow_their_entity_types(owner, make_job, add_sample):
    job = make_job(LabelType.TEXT_TRIPLET)
    sample = add_sample(job.dataset, text="Liu Cixin wrote Three Body.")
    e1 = {"label": "Person", "shape": "span", "ref_id": "E1", "geometry": {"start": 0, "end": 9}}
    e2 = {"label": "Book", "shape": "span", "ref_id": "E2", "geometry": {"start": 16, "end": 26}}
    save(owner, job, sample, [e1, e2, {"label": "author", "shape": "relation", "ref_id": "R1",
                                       "geometry": {"from": "E1", "to": "E2"}}])
    assert list(Annotation.objects.order_by("id").values_list("ref_id", "shape")) == [
        ("E1", "span"), ("E2", "span"), ("R1", "relation")]
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [e1, e2, {"label": "author", "shape": "relation", "ref_id": "R1",
                                           "geometry": {"from": "E2", "to": "E1"}}])
    assert messages(exc) == {"annotations.2.geometry": ['"author" goes from Person to Book; E2 is Book and E1 is '
                                                        "Person."]}
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [e1, {"label": "author", "shape": "relation", "ref_id": "R1",
                                       "geometry": {"from": "E1", "to": "E9"}}])
    assert messages(exc) == {"annotations.1.geometry": ['The relation\'s "to" names E9, which is not an entity of '
                                                        "this save."]}


def test_protected_triplet_entity_labels_cannot_be_deleted(owner, make_job):
    job = make_job(LabelType.TEXT_TRIPLET)
    person = Label.objects.get(dataset=job.dataset, name="Person")
    with pytest.raises(ValidationError) as exc:
        services.job_labels_delete(user=owner, job=job, labels=[person])
    assert messages(exc)["labels"] == ['The entity label "Person" was defined when the job was created and cannot be '
                                       "deleted."]
    assert Label.objects.filter(pk=person.pk).exists()


def test_speech_segments(owner, make_job, add_sample):
    job = make_job(LabelType.SPEECH_SEGMENTATION, speech_content_enabled=True)
    sample = add_sample(job.dataset, duration=3.0)
    save(owner, job, sample, [{"label": "speech", "shape": "segment", "ref_id": "S1",
                               "geometry": {"start": 0.5, "end": 1.25}, "content": "hello 你好"}])
    row = Annotation.objects.get()
    assert (row.geometry, row.properties, row.ref_id) == ({"start": 0.5, "end": 1.25},
                                                           {"@modelarts:content": "hello 你好"}, "S1")
    bad = [({"start": 2, "end": 1}, "The segment ends at 1 s, before or at its start (2 s); its end comes after its "
                                    "start."),
           ({"start": 1, "end": 4}, "The segment ends at 4 s, after the end of the 3 s recording.")]
    for geometry, message in bad:
        with pytest.raises(ValidationError) as exc:
            save(owner, job, sample, [{"label": "speech", "shape": "segment", "ref_id": "S1", "geometry": geometry}])
        assert messages(exc) == {"annotations.0.geometry": [message]}


def test_speech_segments_multi_label_mode_store_one_row_per_category(owner, make_job, add_sample):
    job = make_job(LabelType.SPEECH_SEGMENTATION, speech_label_mode="multi", labels=[
        {"name": "speech", "color": "#111111", "category": "kind"},
        {"name": "Tom", "color": "#222222", "category": "speaker"}])
    sample = add_sample(job.dataset, duration=3.0)
    save(owner, job, sample, [{"shape": "segment", "ref_id": "S1", "geometry": {"start": 0, "end": 1},
                               "labels": {"kind": "speech", "speaker": "Tom"}}])
    assert sorted(Annotation.objects.values_list("ref_id", "label__name")) == [("S1", "Tom"), ("S1", "speech")]
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [{"shape": "segment", "ref_id": "S1", "geometry": {"start": 0, "end": 1},
                                   "labels": {"speaker": "speech"}}])
    assert messages(exc) == {"annotations.0.labels": ['"speech" is not a label of the category "speaker".']}


def test_speech_content_is_chinese_or_english_only(owner, make_job, add_sample):
    job = make_job(LabelType.SPEECH_CONTENT)
    sample = add_sample(job.dataset, duration=3.0)
    save(owner, job, sample, [{"content": "Today is a good day. 今天天气很好。"}])
    assert Annotation.objects.get().properties == {"@modelarts:content": "Today is a good day. 今天天气很好。"}
    with pytest.raises(ValidationError) as exc:
        save(owner, job, sample, [{"content": "Привет"}])
    assert messages(exc) == {"annotations.0.content": [
        'The speech content may contain only Chinese and English text; "П" is neither.']}
    with override_settings(ATELIER_LABELING_AUDIO_ZH_EN_ONLY=False):
        save(owner, job, sample, [{"content": "Привет"}])


def test_audio_label_names_are_chinese_or_english_only(make_job):
    with pytest.raises(ValidationError) as exc:
        make_job(LabelType.SOUND_CLASSIFICATION, labels=[{"name": "çà"}])
    assert messages(exc) == {"labels.0.name": ['An audio label name may contain only Chinese and English text; "ç" '
                                               "is neither."]}


def test_sound_shortcuts_are_unique_per_job(owner, make_job):
    job = make_job(LabelType.SOUND_CLASSIFICATION)
    with pytest.raises(ValidationError) as exc:
        services.job_label_create(user=owner, job=job, spec={"name": "rain", "shortcut": "1"})
    assert messages(exc) == {"label.shortcut": ['The key "1" is already the shortcut of "bird".']}
    assert not Label.objects.filter(name="rain").exists()
    label = services.job_label_create(user=owner, job=job, spec={"name": "rain", "shortcut": "3"})
    assert LabelSetting.objects.get(job=job, label=label).shortcut == "3"


# ---- C. batch classification ---------------------------------------------------------------------------------


def test_batch_add_then_remove_from_selected_only(owner, make_job, add_sample):
    job = make_job(LabelType.IMAGE_CLASSIFICATION)
    a, b, c = (add_sample(job.dataset) for _ in range(3))
    cat, dog = Label.objects.filter(dataset=job.dataset).order_by("name")
    assert services.samples_label_add(user=owner, job=job, samples=[a, b], labels=[cat, dog]) == 2
    assert services.samples_label_add(user=owner, job=job, samples=[a, b, c], labels=[cat]) == 1
    assert services.samples_label_remove(user=owner, job=job, samples=[a], label=cat) == 1
    statuses = dict(Sample.objects.values_list("pk", "label_status"))
    assert (statuses[a.pk], statuses[b.pk], statuses[c.pk]) == ("labeled", "labeled", "labeled")
    services.samples_label_remove(user=owner, job=job, samples=[a], label=dog)
    a.refresh_from_db()
    job.dataset.refresh_from_db()
    assert (a.label_status, job.dataset.labeled_count) == (LabelStatus.UNLABELED, 2)
    assert sorted(Annotation.objects.filter(sample=b).values_list("label__name", flat=True)) == ["cat", "dog"]


def test_label_rename_propagates_and_delete_with_objects(owner, make_job, add_sample):
    job = make_job(LabelType.TEXT_CLASSIFICATION)
    only = add_sample(job.dataset, text="good")
    both = add_sample(job.dataset, text="mixed")
    save(owner, job, only, [{"label": "positive"}])
    save(owner, job, both, [{"label": "positive"}, {"label": "negative"}])
    positive = Label.objects.get(dataset=job.dataset, name="positive")
    services.job_label_update(user=owner, job=job, label=positive, name="pos", color="#00ff00")
    assert sorted(Annotation.objects.values_list("label__name", flat=True)) == ["negative", "pos", "pos"]
    result = services.job_labels_delete(user=owner, job=job, labels=[positive], with_objects=True)
    assert result == {"labels": 1, "samples_deleted": 1}
    assert list(Sample.objects.values_list("text", flat=True)) == ["mixed"]
    assert list(Annotation.objects.values_list("label__name", flat=True)) == ["negative"]


# ---- I. video frames -----------------------------------------------------------------------------------------


def test_video_frame_is_an_image_sample_with_its_time(owner, make_job, add_sample):
    job = make_job(LabelType.VIDEO)
    video = add_sample(job.dataset, duration=8.0, name="clip.mp4")
    box = {"label": "car", "shape": "bndbox", "geometry": {"xmin": 10, "ymin": 10, "xmax": 100, "ymax": 90}}
    result = services.video_frame_save(user=owner, job=job, video=video, time=1.473722, version=0,
                                       annotations=[box], image=jpeg_bytes(320, 240))
    frame = Sample.objects.get(pk=result["frame"])
    assert (frame.file_name, frame.width, frame.height, frame.sample_type) == ("clip_t1.473722.jpg", 320, 240, 0)
    assert frame.properties["@modelarts:time_in_video"] == 1.473722
    assert frame.properties["@modelarts:parent_duration"] == 8.0
    assert frame.properties["@modelarts:parent_source"] == video.source
    video.refresh_from_db()
    assert video.label_status == "labeled"
    with pytest.raises(ValidationError) as exc:
        services.video_frame_save(user=owner, job=job, video=video, time=9, version=0, annotations=[box])
    assert messages(exc) == {"time": ["9 s is after the end of the 8 s video."]}
    services.video_frame_delete(user=owner, job=job, video=video, frame=frame)
    video.refresh_from_db()
    assert (video.label_status, Sample.objects.filter(pk=frame.pk).exists()) == ("unlabeled", False)


# ---- delete samples (item 17) and add data (item 18) --------------------------------------------------------------


def _exists(uri) -> bool:
    from apps.core.paths import parse
    from apps.core.storage import get_storage

    return get_storage().exists(parse(uri))


def test_delete_samples_keeps_source_files_unless_asked(owner, make_job, add_sample):
    from apps.core.models import AuditEntry

    job = make_job(LabelType.OBJECT_DETECTION)
    keep, gone, labeled = (add_sample(job.dataset) for _ in range(3))
    save(owner, job, labeled, [{"label": "cat", "shape": "bndbox",
                                "geometry": {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}}])
    result = services.samples_delete(user=owner, job=job, sample_ids=[gone.pk, labeled.pk])
    assert result == {"deleted": 2, "frames": 0, "files_deleted": 0, "files_failed": []}
    assert list(Sample.objects.filter(dataset=job.dataset).values_list("pk", flat=True)) == [keep.pk]
    assert Annotation.objects.filter(dataset=job.dataset).count() == 0
    assert _exists(gone.source) and _exists(labeled.source)
    job.dataset.refresh_from_db()
    assert (job.dataset.sample_count, job.dataset.labeled_count) == (1, 0)
    entry = AuditEntry.objects.filter(action="labeling:samples_delete").get()
    assert entry.detail["samples"] == [gone.pk, labeled.pk] and entry.detail["delete_source"] is False


def test_delete_with_source_files_needs_the_typed_word_and_removes_them(owner, make_job, add_sample):
    job = make_job(LabelType.OBJECT_DETECTION)
    sample = add_sample(job.dataset)
    with pytest.raises(ValidationError) as exc:
        services.samples_delete(user=owner, job=job, sample_ids=[sample.pk], delete_source=True, confirm="delete")
    assert messages(exc) == {"confirm": ["Deleting source files cannot be undone: type DELETE to confirm, or "
                                               "untick “Also delete source files”."]}
    assert Sample.objects.filter(pk=sample.pk).exists() and _exists(sample.source)
    result = services.samples_delete(user=owner, job=job, sample_ids=[sample.pk], delete_source=True, confirm="DELETE")
    assert (result["deleted"], result["files_deleted"], result["files_failed"]) == (1, 1, [])
    assert not Sample.objects.filter(pk=sample.pk).exists() and not _exists(sample.source)


def test_delete_refuses_empty_selection_and_foreign_samples(owner, make_job, add_sample):
    from django.http import Http404

    job, other = make_job(LabelType.OBJECT_DETECTION), make_job(LabelType.OBJECT_DETECTION)
    mine, theirs = add_sample(job.dataset), add_sample(other.dataset)
    with pytest.raises(ValidationError) as exc:
        services.samples_delete(user=owner, job=job, sample_ids=[])
    assert messages(exc) == {"samples": ["Select at least one sample to delete."]}
    with pytest.raises(Http404):
        services.samples_delete(user=owner, job=job, sample_ids=[mine.pk, theirs.pk])
    assert Sample.objects.filter(pk__in=[mine.pk, theirs.pk]).count() == 2


def test_labeler_cannot_delete_samples(owner, workspace, teammate, make_job, add_sample):
    from apps.accounts.services import membership_set

    job = make_job(LabelType.OBJECT_DETECTION)
    sample = add_sample(job.dataset)
    membership_set(actor=owner, workspace=workspace, user=teammate, role=Role.LABELER)
    teammate.__dict__.pop("_atelier_roles", None)
    with pytest.raises(PermissionDenied):
        services.samples_delete(user=teammate, job=job, sample_ids=[sample.pk])
    assert Sample.objects.filter(pk=sample.pk).exists()


def test_deleting_a_video_removes_its_labeled_frames(owner, make_job, add_sample):
    from .conftest import jpeg_bytes

    job = make_job(LabelType.VIDEO)
    video = add_sample(job.dataset, duration=10.0)
    result = services.video_frame_save(user=owner, job=job, video=video, time=1.5, version=0, image=jpeg_bytes(),
                                       annotations=[{"label": "car", "shape": "bndbox",
                                                     "geometry": {"xmin": 1, "ymin": 1, "xmax": 50, "ymax": 50}}])
    frame = Sample.objects.get(pk=result["frame"])
    out = services.samples_delete(user=owner, job=job, sample_ids=[video.pk])
    assert (out["deleted"], out["frames"], out["files_deleted"]) == (1, 1, 1)
    assert not Sample.objects.filter(dataset=job.dataset).exists() and not _exists(frame.source)
    assert _exists(video.source)
    job.dataset.refresh_from_db()
    assert (job.dataset.sample_count, job.dataset.labeled_count) == (0, 0)


def test_add_data_from_a_storage_path_imports_into_the_dataset(owner, make_job, bucket):
    from apps.datasets.models import DatasetOperation
    from apps.datasets.operations import operation_execute

    from .conftest import png_bytes, put

    job = make_job(LabelType.OBJECT_DETECTION)
    for name in ("a.png", "b.png"):
        put(f"storage://{bucket.name}/incoming/{name}", png_bytes(64, 48))
    operation = services.job_data_add(user=owner, job=job, labeled=False, path=f"storage://{bucket.name}/incoming/")
    assert (operation.kind, operation.params["format"], operation.params["labeled"]) == ("import", "raw", False)
    operation_execute(operation.pk)
    operation = DatasetOperation.objects.get(pk=operation.pk)
    assert operation.status == "succeeded"
    assert sorted(job.dataset.samples.values_list("file_name", flat=True)) == ["a.png", "b.png"]
    # The job lists its dataset's samples: imported samples are in the job at once (item 14), no sync step.
    assert selectors.tab_counts(job)["unlabeled"] == 2
    job.dataset.refresh_from_db()
    assert selectors.progress(job)["text"] == "0% (0/2)"
    row = selectors.import_row(operation)
    assert {k: row[k] for k in ("mode", "path", "total", "imported", "imported_labeled", "status")} == {
        "mode": "Storage path", "path": f"storage://{bucket.name}/incoming", "total": 2, "imported": 2,
        "imported_labeled": 0, "status": "succeeded"}


def test_add_data_labeled_counts_labeled_samples_in_the_history(owner, make_job, bucket):
    from apps.datasets.models import DatasetOperation
    from apps.datasets.operations import operation_execute

    from .conftest import png_bytes, put

    job = make_job(LabelType.OBJECT_DETECTION)
    with pytest.raises(ValidationError) as exc:
        services.job_data_add(user=owner, job=job, labeled=True, path=f"storage://{bucket.name}/")
    assert messages(exc) == {"format": ["Labeled data is imported with its annotations: choose their format "
                                        "(voc, yolo, coco, manifest, labelstudio, cvat)."]}
    for name in ("a.png", "b.png", "c.png"):
        put(f"storage://{bucket.name}/voc/{name}", png_bytes(64, 48))
    box = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
    put(f"storage://{bucket.name}/voc/a.xml", f"<annotation><object><name>cat</name>{box}</object>"
                                              f"<object><name>dog</name>{box}</object></annotation>".encode())
    put(f"storage://{bucket.name}/voc/b.xml", b"<annotation><object><name>cat</name></object></annotation>")
    operation = services.job_data_add(user=owner, job=job, labeled=True, path=f"storage://{bucket.name}/voc/",
                                      import_format="voc")
    operation_execute(operation.pk)
    operation = DatasetOperation.objects.get(pk=operation.pk)
    # b.xml has an object without a shape: an error row, and b.png comes in unlabeled.
    assert (operation.result["created"], operation.result["labeled"], operation.error_count) == (3, 1, 1)
    row = selectors.import_row(operation)
    assert {k: row[k] for k in ("total", "imported", "imported_labeled", "imported_annotations")} == {
        "total": 3, "imported": 3, "imported_labeled": 1, "imported_annotations": 2}


def test_add_data_upload_lands_in_the_input_location(owner, make_job):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.datasets.operations import operation_execute

    from .conftest import png_bytes

    job = make_job(LabelType.OBJECT_DETECTION)
    upload = SimpleUploadedFile("up.png", png_bytes(32, 32), content_type="image/png")
    operation = services.job_data_add(user=owner, job=job, labeled=False, files=[upload])
    assert operation.params["path"].startswith(job.dataset.input_location.rstrip("/") + "/upload-")
    operation_execute(operation.pk)
    (sample,) = job.dataset.samples.all()
    assert sample.file_name == "up.png" and _exists(sample.source)
    assert selectors.import_row(operation)["mode"] == "Local upload"


def test_add_data_upload_lands_in_the_chosen_storage_path(owner, outsider, make_job, bucket):
    """Spec §3.6 "storage path for uploaded data": files go to a new upload-<time> folder inside the
    chosen folder (never overwriting what is there) and are imported from it; a bucket the user cannot use, a file, or the
    dataset's output location are refused on the `upload_path` field with nothing stored."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.datasets.models import DatasetOperation
    from apps.datasets.operations import operation_execute
    from apps.storage.services import bucket_create

    from .conftest import png_bytes, put

    job = make_job(LabelType.OBJECT_DETECTION)
    put(f"storage://{bucket.name}/uploads/keep.png", png_bytes(8, 8))

    def upload():
        return [SimpleUploadedFile("up.png", png_bytes(32, 32), content_type="image/png")]

    foreign = bucket_create(user=outsider, workspace=outsider.default_workspace, name=f"fx-{bucket.name[3:]}")
    cases = [
        (f"storage://{foreign.name}/x", f'The bucket "{foreign.name}" does not exist.'),
        (f"storage://{bucket.name}/uploads/keep.png", f"storage://{bucket.name}/uploads/keep.png is a file; "
                                                      "choose a folder."),
        (job.dataset.output_location.rstrip("/") + "/sub", "The storage path for uploaded data cannot be the "
         f"dataset's output location ({job.dataset.output_location.rstrip('/')}) or a folder inside it; "
         "choose another folder."),
    ]
    for value, message in cases:
        with pytest.raises(ValidationError) as exc:
            services.job_data_add(user=owner, job=job, labeled=False, files=upload(), upload_path=value)
        assert messages(exc) == {"upload_path": [message]}, value
    assert DatasetOperation.objects.filter(dataset=job.dataset).count() == 0
    operation = services.job_data_add(user=owner, job=job, labeled=False, files=upload(),
                                      upload_path=f"storage://{bucket.name}/uploads")
    assert operation.params["path"].startswith(f"storage://{bucket.name}/uploads/upload-")
    operation_execute(operation.pk)
    (sample,) = job.dataset.samples.all()
    # The upload stays where the user put it; the import copies it into the dataset (datasets item 27).
    assert _exists(operation.params["path"] + "/up.png") and _exists(f"storage://{bucket.name}/uploads/keep.png")
    assert sample.source.startswith(job.dataset.input_location.rstrip("/") + "/") and _exists(sample.source)


def test_add_data_refusals_name_the_field(owner, make_job, bucket):
    from apps.datasets.models import DatasetOperation

    job = make_job(LabelType.OBJECT_DETECTION)
    cases = [
        ({"path": ""}, {"path": ["Give the storage path to import from, or choose files to upload."]}),
        ({"path": f"storage://{bucket.name}/nothing-here/"}, "path"),
        ({"path": "storage://not-my-bucket-x/a/"}, {"path": ['The bucket "not-my-bucket-x" does not exist.']}),
        ({"path": f"storage://{bucket.name}/x/", "import_format": "coco-nope"}, "format"),
        ({"files": []}, {"files": ["Choose at least one file to upload."]}),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ValidationError) as exc:
            services.job_data_add(user=owner, job=job, labeled=False, **kwargs)
        got = messages(exc)
        if isinstance(expected, str):
            assert list(got) == [expected], got
        else:
            assert got == expected
    assert DatasetOperation.objects.filter(dataset=job.dataset).count() == 0


def test_video_upload_takes_mp4_only_with_the_names_refused(owner, make_job):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.datasets.models import DatasetOperation

    job = make_job(LabelType.VIDEO)
    files = [SimpleUploadedFile("clip.mp4", b"\x00\x00\x00\x18ftypmp42"), SimpleUploadedFile("talk.avi", b"RIFF"),
             SimpleUploadedFile("cat.MOV", b"moov")]
    with pytest.raises(ValidationError) as exc:
        services.job_data_add(user=owner, job=job, labeled=False, files=files)
    assert messages(exc) == {"files": ["Video labeling takes MP4 files only (or a zip of them); not talk.avi, cat.MOV."]}
    assert DatasetOperation.objects.filter(dataset=job.dataset).count() == 0
    operation = services.job_data_add(user=owner, job=job, labeled=False, files=[files[0]])
    assert operation.params["path"]


def test_voc_imported_shapes_resave_unchanged_and_keep_their_attributes(owner, make_job, bucket):
    """VOC flags and imported attributes the label set does not define survive a workbench save;
    new undefined attributes and bad flag values are refused (labeling item 31, datasets item 15)."""
    from apps.datasets.operations import operation_execute

    from .conftest import png_bytes, put

    job = make_job(LabelType.OBJECT_DETECTION)
    put(f"storage://{bucket.name}/voc/a.png", png_bytes(64, 48))
    put(f"storage://{bucket.name}/voc/a.xml", (
        "<annotation><size><width>64</width><height>48</height></size><object><name>dog</name><pose>Left</pose>"
        "<difficult>1</difficult><attributes><attribute><name>breed</name><value>collie</value></attribute>"
        "</attributes><line><x1>1</x1><y1>1</y1><x2>30</x2><y2>40</y2></line><dashed>1</dashed></object>"
        "</annotation>").encode())
    operation = services.job_data_add(user=owner, job=job, labeled=True, path=f"storage://{bucket.name}/voc/",
                                      import_format="voc")
    operation_execute(operation.pk)
    (sample,) = job.dataset.samples.all()
    (served,) = selectors.annotations_of(sample)
    assert (served["style"], served["attributes"]) == ("dashed", {
        "pose": "Left", "truncated": 0, "occluded": 0, "difficult": 1, "breed": "collie"})
    save(owner, job, sample, [served])
    (annotation,) = Annotation.objects.filter(sample=sample)
    assert annotation.properties == {"pose": "Left", "truncated": 0, "occluded": 0, "difficult": 1, "breed": "collie",
                                     "@atelier:line_style": "dashed"}
    for attributes, message in (({"breed": "husky"}, '"dog" has no attribute "breed"; its attributes: none.'),
                                ({"difficult": 2}, '"difficult" is 0 or 1, not 2.')):
        with pytest.raises(ValidationError) as exc:
            save(owner, job, sample, [served | {"attributes": served["attributes"] | attributes}])
        assert messages(exc) == {"annotations.0.attributes": [message]}
    with pytest.raises(ValidationError):  # a new shape cannot bring an undefined attribute either
        save(owner, job, sample, [{k: v for k, v in served.items() if k != "id"}])
