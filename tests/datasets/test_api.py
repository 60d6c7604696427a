"""REST API under /api/v1/datasets/: the one error format, scoping, async operations (items 11, 29, 54)."""
import pytest

from apps.datasets.models import Dataset, DatasetOperation
from apps.datasets.operations import operation_execute
from apps.datasets.services import operation_start

from .conftest import image_bytes, put


@pytest.fixture
def dataset(make_dataset, run_import, root):
    put(f"{root}/src/Cat/1.jpg", image_bytes())
    put(f"{root}/src/Dog/2.jpg", image_bytes())
    ds = make_dataset()
    run_import(ds, f"{root}/src", "imagenet-folder")
    return ds


def test_create_and_refusals_use_error_format(api, root):
    bad = api.post("/api/v1/datasets/", {"name": "1abc", "data_type": "image", "label_type": "image_classification",
                                          "input_location": f"{root}/in", "output_location": f"{root}/in/out"},
                   format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid"
    fields = bad.json()["error"]["fields"]
    assert fields["output_location"] == ["output location cannot be the same as or a sub-directory of the import path"]
    assert "name" in fields
    foreign = api.post("/api/v1/datasets/", {"name": "ok", "data_type": "image", "label_type": "image_classification",
                                              "input_location": "storage://not-mine-bucket/in",
                                              "output_location": f"{root}/out"}, format="json")
    assert foreign.json()["error"]["fields"]["input_location"] == ['The bucket "not-mine-bucket" does not exist.']
    assert Dataset.objects.count() == 0
    ok = api.post("/api/v1/datasets/", {"name": "dataset-8153", "data_type": "image",
                                         "label_type": "object_detection", "input_location": f"{root}/in",
                                         "output_location": f"{root}/out", "description": "boxes"}, format="json")
    assert ok.status_code == 201 and ok.json()["progress"] == "0.00% (0/0)"


def test_outsider_gets_404_without_side_effects(outsider_api, dataset):
    for url in (f"/api/v1/datasets/{dataset.pk}/", f"/api/v1/datasets/{dataset.pk}/samples/",
                f"/api/v1/datasets/{dataset.pk}/versions/"):
        response = outsider_api.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert outsider_api.post(f"/api/v1/datasets/{dataset.pk}/sync/").status_code == 404
    assert outsider_api.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    assert DatasetOperation.objects.filter(dataset=dataset, kind="sync").count() == 0
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    assert outsider_api.get("/api/v1/datasets/").json()["count"] == 0


def test_sample_list_filters(api, dataset):
    cat = dataset.labels.get(name="Cat")
    response = api.get(f"/api/v1/datasets/{dataset.pk}/samples/", {"label": cat.pk})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["results"][0]["labels"] == ["Cat"]
    assert api.get(f"/api/v1/datasets/{dataset.pk}/samples/", {"name": "2.j"}).json()["count"] == 1
    bad = api.get(f"/api/v1/datasets/{dataset.pk}/samples/", {"usage": "sometimes"})
    assert bad.status_code == 400 and "usage" in bad.json()["error"]["fields"]


def test_sample_list_matches_serializer(api, dataset):
    from apps.datasets.api.serializers import SampleSerializer

    listed = api.get(f"/api/v1/datasets/{dataset.pk}/samples/").json()["results"]
    expected = SampleSerializer(dataset.samples.order_by("-created_at", "-id").prefetch_related("annotations__label"),
                                many=True).data
    assert listed == [dict(row) for row in expected]


def test_sample_list_query_count(api, dataset, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        api.get(f"/api/v1/datasets/{dataset.pk}/samples/")


def test_annotations_replace_with_optimistic_concurrency(api, dataset):
    sample = dataset.samples.get(file_name="1.jpg")
    url = f"/api/v1/datasets/{dataset.pk}/samples/{sample.pk}/annotations/"
    ok = api.put(url, {"expected_version": 0, "annotations": [{"label": "Dog"}, {"label": "Bird"}]}, format="json")
    assert ok.status_code == 200
    assert sorted(a["label"] for a in ok.json()["annotations"]) == ["Bird", "Dog"]
    assert ok.json()["annotation_version"] == 1
    assert {a["annotated_by"] for a in ok.json()["annotations"]} == {"alice"}
    stale = api.put(url, {"expected_version": 0, "annotations": []}, format="json")
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert sorted(a.label.name for a in sample.annotations.all()) == ["Bird", "Dog"]


def test_import_publish_export_are_operations(api, dataset, root):
    put(f"{root}/more/Bird/3.jpg", image_bytes())
    response = api.post(f"/api/v1/datasets/{dataset.pk}/imports/", {"path": f"{root}/more",
                                                                      "format": "imagenet-folder"}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    op_id = response.json()["id"]
    operation_execute(op_id)
    detail = api.get(f"/api/v1/datasets/{dataset.pk}/operations/{op_id}/").json()
    assert (detail["status"], detail["result"]["created"]) == ("succeeded", 1)
    published = api.post(f"/api/v1/datasets/{dataset.pk}/versions/", {}, format="json")
    assert published.status_code == 202
    operation_execute(published.json()["id"])
    versions = api.get(f"/api/v1/datasets/{dataset.pk}/versions/").json()
    assert [(v["name"], v["status"], v["is_current"]) for v in versions] == [("V001", "normal", True)]
    dup = api.post(f"/api/v1/datasets/{dataset.pk}/versions/", {"name": "V001"}, format="json")
    assert dup.status_code == 400 and dup.json()["error"]["fields"]["name"] == [
        'The version "V001" already exists; choose another name.']
    export = api.post(f"/api/v1/datasets/{dataset.pk}/exports/", {"path": f"{root}/exp", "filter": {"name": "3.jpg"}},
                      format="json")
    assert export.status_code == 202
    operation_execute(export.json()["id"])
    assert api.get(f"/api/v1/datasets/{dataset.pk}/operations/{export.json()['id']}/").json()["result"]["exported"] == 1


def test_error_report_endpoint(api, make_dataset, run_import, root):
    put(f"{root}/imgs/bad.jpg", b"not an image")
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/imgs", "raw")
    body = api.get(f"/api/v1/datasets/{dataset.pk}/operations/{op.pk}/errors/").json()
    assert body["count"] == 1
    assert body["results"][0]["code"] == "CORRUPT_IMAGE" and body["results"][0]["item"].endswith("/imgs/bad.jpg")


def test_auto_group_range_and_labels_api(api, dataset):
    for groups in (1, 201):
        response = api.post(f"/api/v1/datasets/{dataset.pk}/auto-group/", {"groups": groups, "attribute": "g"},
                            format="json")
        assert response.status_code == 400
        assert response.json()["error"]["fields"]["groups"] == [
            f"The number of groups is an integer from 2 to 200, not {groups}."]
    created = api.post(f"/api/v1/datasets/{dataset.pk}/labels/", {"name": "Fish", "color": "#00ff00"}, format="json")
    assert created.status_code == 201 and created.json()["color"] == "#00ff00"
    dup = api.post(f"/api/v1/datasets/{dataset.pk}/labels/", {"name": "Fish"}, format="json")
    assert dup.status_code == 400


def test_upload_api(api, dataset):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api.post(f"/api/v1/datasets/{dataset.pk}/uploads/",
                        {"files": [SimpleUploadedFile("new.jpg", image_bytes())], "format": "raw"}, format="multipart")
    assert response.status_code == 202
    operation_execute(response.json()["id"])
    assert dataset.samples.filter(file_name="new.jpg").count() == 1
    refused = api.post(f"/api/v1/datasets/{dataset.pk}/uploads/",
                       {"files": [SimpleUploadedFile("has space.jpg", image_bytes())]}, format="multipart")
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"]["files"] == [
        'The file name "has space.jpg" contains a space; rename the file and try again.']


def test_label_filter_index_follows_every_write(api, owner, dataset):
    """The SampleLabel read index follows annotation edits, label deletion and the publish split."""
    from apps.datasets.services import label_delete
    from apps.datasets.versions import version_publish

    url = f"/api/v1/datasets/{dataset.pk}/samples/"
    cat, dog = dataset.labels.get(name="Cat"), dataset.labels.get(name="Dog")
    names = lambda **params: sorted(r["file_name"] for r in api.get(url, params).json()["results"])  # noqa: E731
    assert (names(label=cat.pk), names(label=dog.pk)) == (["1.jpg"], ["2.jpg"])
    one = dataset.samples.get(file_name="1.jpg")
    api.put(f"{url}{one.pk}/annotations/", {"expected_version": 0, "annotations": [{"label": "Dog"}]}, format="json")
    assert (names(label=cat.pk), names(label=dog.pk)) == ([], ["1.jpg", "2.jpg"])
    assert api.get(url, {"label": [cat.pk, dog.pk]}).json()["count"] == 2
    dog_pk = dog.pk
    label_delete(user=owner, label=dog)
    assert names(label=dog_pk) == [] and names(status="unlabeled") == ["1.jpg", "2.jpg"]
    for i in range(5):
        put(f"{dataset.input_location}/Bird/{i}.jpg", image_bytes())
    op = operation_start(user=owner, dataset=dataset, kind="import",
                         params={"path": dataset.input_location, "format": "imagenet-folder"})
    operation_execute(op.pk)
    bird = dataset.labels.get(name="Bird")
    assert api.get(url, {"label": bird.pk, "status": "labeled"}).json()["count"] == 5
    publish = version_publish(user=owner, dataset=dataset, split_enabled=True, train_ratio=0.6)
    operation_execute(publish.pk)
    train = api.get(url, {"label": bird.pk, "usage": "TRAIN"}).json()["count"]
    evaluate = api.get(url, {"label": bird.pk, "usage": "EVAL"}).json()["count"]
    assert (train, evaluate) == (3, 2)


def test_sample_list_of_a_version(api, outsider_api, owner, dataset, make_dataset, run_import, root,
                                  django_assert_max_num_queries):
    """Item 46: `?version=` lists a published version's samples with the same filters; live stays default."""
    from apps.datasets.versions import version_publish

    def publish(ds):
        op = version_publish(user=owner, dataset=ds)
        assert operation_execute(op.pk) == "succeeded"
        op.refresh_from_db()
        return op.version

    v1 = publish(dataset)
    assert v1.entries.count() == 2
    put(f"{root}/src/Cat/3.jpg", image_bytes(color=(10, 200, 10)))
    run_import(dataset, f"{root}/src", "imagenet-folder")  # a sample the version does not have
    url = f"/api/v1/datasets/{dataset.pk}/samples/"
    assert api.get(url).json()["count"] == 3
    body = api.get(url, {"version": v1.pk}).json()
    assert body["count"] == 2 and sorted(r["file_name"] for r in body["results"]) == ["1.jpg", "2.jpg"]
    cat = dataset.labels.get(name="Cat")
    assert [r["file_name"] for r in api.get(url, {"version": v1.pk, "label": cat.pk}).json()["results"]] == ["1.jpg"]
    assert api.get(url, {"label": cat.pk}).json()["count"] == 2
    assert api.get(url, {"version": v1.pk, "name": "3.j"}).json()["count"] == 0
    assert api.get(url, {"version": "live"}).json()["count"] == 3
    assert api.get(url, {"version": "working"}).json()["count"] == 3
    with django_assert_max_num_queries(9):
        api.get(url, {"version": v1.pk, "page_size": 1})

    other = make_dataset(name="other-8153")
    put(f"{root}/other/Cat/9.jpg", image_bytes())
    run_import(other, f"{root}/other", "imagenet-folder")
    foreign = publish(other)
    for bad, message in ((foreign.pk, f"Version {foreign.pk} is not a version of this dataset."),
                         ("abc", '"abc" is not a version id; use "working" for the working data.')):
        refused = api.get(url, {"version": bad})
        assert refused.status_code == 400
        assert refused.json()["error"]["fields"] == {"version": [message]}
    assert outsider_api.get(url, {"version": v1.pk}).status_code == 404

    # A sample deleted from the dataset leaves the version's listing too (members still present).
    dataset.samples.get(file_name="2.jpg").delete()
    assert [r["file_name"] for r in api.get(url, {"version": v1.pk}).json()["results"]] == ["1.jpg"]


def test_label_filter_with_another_datasets_label_matches_nothing(api, dataset, make_dataset, run_import, root):
    """The label index is read without a dataset condition: labels are checked against the dataset first."""
    other = make_dataset(name="other-8153")
    put(f"{root}/other/Cat/9.jpg", image_bytes())
    run_import(other, f"{root}/other", "imagenet-folder")
    foreign = other.labels.get(name="Cat")
    own = dataset.labels.get(name="Cat")
    url = f"/api/v1/datasets/{dataset.pk}/samples/"
    assert api.get(url, {"label": foreign.pk}).json()["count"] == 0
    body = api.get(url, {"label": [foreign.pk, own.pk]}).json()
    assert body["count"] == 1 and [r["file_name"] for r in body["results"]] == ["1.jpg"]
