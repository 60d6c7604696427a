"""Dataset creation rules, labels, versions bookkeeping and operations (spec §15 items 1–10, 46–47)."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import AuditEntry
from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.models import Dataset, Label
from apps.datasets.services import dataset_delete, dataset_update, label_create, label_delete
from apps.datasets.validators import OUTPUT_INSIDE_INPUT_MESSAGE

from .conftest import put


@pytest.mark.parametrize("name", ["1abc", "a b", "a" * 65, "", "-abc", "ab.c"])
def test_dataset_name_rule_rejects(make_dataset, name):
    with pytest.raises(ValidationError) as exc:
        make_dataset(name=name)
    assert "name" in exc.value.message_dict
    assert Dataset.objects.count() == 0


def test_dataset_name_rule_accepts(make_dataset, owner):
    dataset = make_dataset(name="dataset-8153")
    assert dataset.name == "dataset-8153"
    assert len(dataset.uid) == 18
    assert AuditEntry.objects.filter(action="dataset:create", object_id=str(dataset.pk)).count() == 1
    assert make_dataset(name="A" + "b" * 63).name == "A" + "b" * 63


def test_description_limit(make_dataset):
    with pytest.raises(ValidationError) as exc:
        make_dataset(description="x" * 257)
    assert exc.value.message_dict["description"] == ["The description has 257 characters; at most 256 are allowed."]
    assert make_dataset(description="x" * 256).description == "x" * 256


@pytest.mark.parametrize("output", ["data/a", "data/a/out"])
def test_output_inside_input_rejected(make_dataset, root, output):
    with pytest.raises(ValidationError) as exc:
        make_dataset(input_location=parse(f"{root}/data/a"), output_location=parse(f"{root}/{output}"))
    assert exc.value.message_dict["output_location"] == [OUTPUT_INSIDE_INPUT_MESSAGE]
    assert not get_storage().exists(parse(f"{root}/data/a"))


@pytest.mark.parametrize("segment", ["out@1", "out$", "my out", "o=1", "a[1]"])
def test_output_forbidden_characters(make_dataset, root, segment):
    with pytest.raises(ValidationError) as exc:
        make_dataset(output_location=parse(f"{root}/{segment}"))
    assert "output location contains" in exc.value.message_dict["output_location"][0]


def test_labeled_only_for_listed_types_and_needs_format(make_dataset):
    with pytest.raises(ValidationError) as exc:
        make_dataset(data_type="text", label_type="text_entity", labeled=True, import_format="manifest")
    assert "labeled" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        make_dataset(labeled=True)
    assert exc.value.message_dict["import_format"] == ["Choose the annotation format of the labeled data."]


def test_label_type_must_match_data_type(make_dataset):
    with pytest.raises(ValidationError) as exc:
        make_dataset(data_type="audio", label_type="object_detection")
    assert exc.value.message_dict["label_type"] == ['"object_detection" is not a label type of audio datasets.']


def test_table_schema_detected_and_folders_created(make_dataset, root):
    put(f"{root}/tbl/a.csv", "name,age,score,born\nann,31,1.5,2014-05-29\nbob,40,2.25,2001-01-02\n")
    put(f"{root}/tbl/b.csv", "name,age,score,born\ncid,22,3,1999-12-31\n")
    dataset = make_dataset(data_type="table", label_type="table", input_location=parse(f"{root}/tbl"),
                           output_location=parse(f"{root}/tbl_out"))
    assert dataset.table_schema == [{"name": "name", "type": "String"}, {"name": "age", "type": "Int"},
                                    {"name": "score", "type": "Double"}, {"name": "born", "type": "Date"}]
    for sub in ("annotation", "data", "logs", "temp"):
        assert get_storage().is_folder(parse(f"{root}/tbl_out/{sub}"))


def test_table_csvs_with_different_column_counts_refused(make_dataset, root):
    put(f"{root}/tbl/a.csv", "a,b\n1,2\n")
    put(f"{root}/tbl/b.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(ValidationError) as exc:
        make_dataset(data_type="table", label_type="table", input_location=parse(f"{root}/tbl"),
                     output_location=parse(f"{root}/tbl_out"))
    assert exc.value.message_dict["table_schema"] == [
        "b.csv has 3 columns but a.csv has 2; all CSV files of a table dataset need the same columns."]
    assert Dataset.objects.count() == 0


def test_table_schema_types_validated(make_dataset, root):
    with pytest.raises(ValidationError) as exc:
        make_dataset(data_type="table", label_type="table", table_schema=[{"name": "a", "type": "Varchar"}])
    assert "Varchar" in exc.value.message_dict["table_schema"][0]


def test_update_revalidates_name(make_dataset, owner):
    dataset = make_dataset()
    with pytest.raises(ValidationError) as exc:
        dataset_update(user=owner, dataset=dataset, name="1abc", description="")
    assert "name" in exc.value.message_dict
    dataset.refresh_from_db()
    assert dataset.name == "dataset-8153"
    dataset_update(user=owner, dataset=dataset, name="renamed", description="new words")
    dataset.refresh_from_db()
    assert (dataset.name, dataset.description) == ("renamed", "new words")


def test_outsider_cannot_update_or_delete(make_dataset, outsider):
    dataset = make_dataset()
    with pytest.raises(PermissionDenied):
        dataset_update(user=outsider, dataset=dataset, name="other", description="")
    with pytest.raises(PermissionDenied):
        dataset_delete(user=outsider, dataset=dataset)
    assert Dataset.objects.get(pk=dataset.pk).name == "dataset-8153"


def test_labels_rules(make_dataset, owner):
    dataset = make_dataset()
    cat = label_create(user=owner, dataset=dataset, name="Cat", color="#FF0000",
                       attributes=[{"name": "colour", "values": ["white", "black"]}])
    assert (cat.color, cat.attributes) == ("#ff0000", [{"name": "colour", "values": ["white", "black"]}])
    with pytest.raises(ValidationError) as exc:
        label_create(user=owner, dataset=dataset, name="Cat")
    assert exc.value.message_dict["name"] == ['The label "Cat" already exists in this dataset.']
    with pytest.raises(ValidationError):
        label_create(user=owner, dataset=dataset, name="x" * 1025)
    with pytest.raises(ValidationError) as exc:
        label_create(user=owner, dataset=dataset, name="Dog", color="red")
    assert exc.value.message_dict["color"] == ['"red" is not a colour; write it as #rrggbb.']
    label_delete(user=owner, label=cat)
    assert list(Label.objects.filter(dataset=dataset)) == []


def test_label_quota(make_dataset, owner, settings):
    settings.ATELIER_DATASET_MAX_LABELS = 2
    dataset = make_dataset()
    label_create(user=owner, dataset=dataset, name="a")
    label_create(user=owner, dataset=dataset, name="b")
    with pytest.raises(ValidationError) as exc:
        label_create(user=owner, dataset=dataset, name="c")
    assert exc.value.message_dict["name"] == ["The dataset already has the most labels allowed (2)."]


def test_relation_label_needs_two_entities(make_dataset, owner):
    dataset = make_dataset(data_type="text", label_type="text_triplet")
    with pytest.raises(ValidationError) as exc:
        label_create(user=owner, dataset=dataset, name="Author", kind="relation")
    assert exc.value.message_dict["kind"] == ["Add at least two entity labels before a relation label."]
    person = label_create(user=owner, dataset=dataset, name="Person", kind="entity")
    book = label_create(user=owner, dataset=dataset, name="Book", kind="entity")
    author = label_create(user=owner, dataset=dataset, name="Author", kind="relation", from_label=person,
                          to_label=book)
    assert (author.from_label, author.to_label) == (person, book)


def test_label_index_triggers_follow_bulk_writes(make_dataset, run_import, root, owner):
    """Any writer (bulk ORM statements included) keeps SampleLabel equal to a rebuild from annotations."""
    from apps.datasets.models import Annotation, Sample, SampleLabel

    from .conftest import image_bytes

    for label in ("Cat", "Dog"):
        for i in range(3):
            put(f"{root}/src/{label}/{i}.jpg", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")

    def index():
        return sorted(SampleLabel.objects.filter(dataset=dataset).values_list("sample_id", "label__name", "usage",
                                                                              "label_status"))

    def rebuilt():
        return sorted({(a.sample_id, a.label.name, a.sample.usage, a.sample.label_status)
                       for a in Annotation.objects.filter(dataset=dataset, label__isnull=False)
                       .select_related("label", "sample")})

    assert len(index()) == 6 and index() == rebuilt()
    revision = Dataset.objects.get(pk=dataset.pk).revision
    cat, dog = dataset.labels.get(name="Cat"), dataset.labels.get(name="Dog")
    Annotation.objects.filter(label=cat).update(label=dog)  # a bulk relabel, as a labeling tool might do
    assert index() == rebuilt() and {name for _, name, _, _ in index()} == {"Dog"}
    Sample.objects.filter(dataset=dataset).update(usage="EVAL", label_status="to_confirm")
    assert index() == rebuilt() and {(u, st) for _, _, u, st in index()} == {("EVAL", "to_confirm")}
    one = Annotation.objects.filter(dataset=dataset).first()
    Annotation.objects.create(sample=one.sample, dataset=dataset, label=cat, type="image_classification",
                              created_at=one.created_at)
    Annotation.objects.filter(pk=one.pk).delete()
    assert index() == rebuilt()
    assert Dataset.objects.get(pk=dataset.pk).revision > revision


def test_import_writes_the_same_index_as_the_triggers(make_dataset, run_import, root):
    """Imports pause the triggers and write the index themselves; the result equals a rebuild, and later
    writes by anyone else are indexed by the triggers again (the pause never outlives the batch)."""
    from django.db import connection

    from apps.datasets.models import Annotation, SampleLabel

    from .conftest import image_bytes

    for label in ("Cat", "Dog"):
        put(f"{root}/src/{label}/1.jpg", image_bytes())
    put(f"{root}/src/both.jpg", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM datasets_indexpause")
        assert cursor.fetchone() == (0,)
    index = sorted(SampleLabel.objects.filter(dataset=dataset).values_list("sample__file_name", "label__name"))
    assert index == [("1.jpg", "Cat"), ("1.jpg", "Dog")]
    both = dataset.samples.get(file_name="both.jpg")
    Annotation.objects.create(sample=both, dataset=dataset, label=dataset.labels.get(name="Cat"),
                              type="image_classification", created_at=both.created_at)
    assert SampleLabel.objects.filter(sample=both).count() == 1


def test_samples_delete_keeps_files_and_refuses_outsiders_and_foreign_ids(make_dataset, run_import, owner, outsider,
                                                                          root):
    from django.http import Http404

    from apps.datasets.models import Annotation, Sample
    from apps.datasets.services import samples_delete

    from .conftest import image_bytes

    put(f"{root}/src/Cat/1.jpg", image_bytes())
    put(f"{root}/src/Cat/2.jpg", image_bytes())
    put(f"{root}/src/Dog/3.jpg", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    other = make_dataset(name="other")
    run_import(other, f"{root}/src", "imagenet-folder")
    one, two, three = dataset.samples.order_by("file_name")
    revision = dataset.revision
    with pytest.raises(PermissionDenied):
        samples_delete(user=outsider, dataset=dataset, sample_ids=[one.pk])
    with pytest.raises(Http404):
        samples_delete(user=owner, dataset=dataset, sample_ids=[one.pk, other.samples.first().pk])
    assert dataset.samples.count() == 3
    result = samples_delete(user=owner, dataset=dataset, sample_ids=[one.pk, three.pk])
    assert result == {"deleted": 2, "frames": 0, "files_deleted": 0, "files_failed": [],
                      "sample_ids": [one.pk, three.pk]}
    assert list(Sample.objects.filter(dataset=dataset)) == [two]
    assert Annotation.objects.filter(dataset=dataset).count() == 1
    assert get_storage().exists(parse(one.source))
    dataset.refresh_from_db()
    assert (dataset.sample_count, dataset.labeled_count) == (1, 1) and dataset.revision > revision
    assert AuditEntry.objects.filter(action="dataset:samples_delete", object_id=str(dataset.pk)).count() == 1
