"""A published version shows its data as published (item 46): the usage, label status, hard flag,
labels, annotators and attributes recorded at publish (VersionSample, VersionSampleLabel,
VersionSampleAnnotator, VersionSampleAttribute) drive the version's filters,
tab and label counts, the list API's `?version=` and the sample page, whatever the working data
becomes afterwards."""
import html
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.models import (Dataset, DatasetVersion, Label, Sample, SampleAttribute, SampleLabel,
                                  VersionSample, VersionSampleAnnotator, VersionSampleAttribute, VersionSampleLabel)
from apps.datasets.services import label_delete, sample_annotations_replace, samples_delete

from tests.storage.backends import moto_endpoint, storage_backend  # noqa: F401

from .conftest import image_bytes, publish, put


def relabel(owner, sample: Sample, *labels: str) -> None:
    sample.refresh_from_db()
    sample_annotations_replace(user=owner, sample=sample, expected_version=sample.annotation_version,
                               annotations=[{"label": name} for name in labels])


def rework(owner, dataset) -> None:
    """Change the working data after a publish: relabel, unlabel, label, usage and hard flags."""
    by_name = {s.file_name: s for s in dataset.samples.all()}
    relabel(owner, by_name["Cat0.jpg"], "Dog")             # Cat → Dog
    relabel(owner, by_name["Cat1.jpg"])                    # labels deleted: unlabeled now
    relabel(owner, by_name["unlabeled.jpg"], "Bird")       # labeled, with a label created since
    Sample.objects.filter(dataset=dataset).update(usage="TEST", hard=True)


def _names(body: str) -> set[str]:
    return {name for name in [f"Cat{i}.jpg" for i in range(6)] + [f"Dog{i}.jpg" for i in range(5)]
            + ["unlabeled.jpg"] if f'title="{name}"' in body}


def _tab_count(body: str, key: str) -> int:
    tab = body[body.index(f'data-testid="status-tab-{key}"'):]
    tab = tab[:tab.index("</a>")]
    return int(tab.rpartition('<span class="tab-count">')[2].split("<")[0].replace(",", ""))


def _label_count(body: str, name: str) -> int:
    """The count beside a label in the filter list."""
    part = body[body.index("<legend>Labels</legend>"):]
    part = part[part.index(f"<span>{name}</span>"):]
    return int(part.split('data-testid="label-count">', 1)[1].split("<", 1)[0].replace(",", ""))


def test_publish_records_what_the_version_holds(owner, cls_dataset):
    """Each sample's row has its published usage (after the split), status, hard flag, upload
    time and the offset of its manifest line; each label it carries is a VersionSampleLabel."""
    Sample.objects.filter(dataset=cls_dataset, file_name="Dog0.jpg").update(hard=True)
    version = publish(owner, cls_dataset, split_enabled=True, train_ratio=0.6)
    rows = {r.sample.file_name: r for r in VersionSample.objects.filter(version=version).select_related("sample")}
    assert len(rows) == 12
    usages = [r.usage for name, r in rows.items() if name != "unlabeled.jpg"]
    assert sorted(usages) == ["EVAL"] * 4 + ["TRAIN"] * 7  # round(11 * 0.6) = 7 go to training
    assert (rows["unlabeled.jpg"].usage, rows["unlabeled.jpg"].label_status) == ("", "unlabeled")
    assert rows["Cat0.jpg"].label_status == "labeled" and rows["Dog0.jpg"].hard and not rows["Cat0.jpg"].hard
    assert all(r.created_at == r.sample.created_at for r in rows.values())
    for name, row in rows.items():
        assert row.usage == row.sample.usage  # the split was applied to the working data too
    labels = {(r.sample.file_name, r.label.name, r.usage, r.label_status) for r in
              VersionSampleLabel.objects.filter(version=version).select_related("sample", "label")}
    assert {(n, label) for n, label, _, _ in labels} == (
        {(f"Cat{i}.jpg", "Cat") for i in range(6)} | {(f"Dog{i}.jpg", "Dog") for i in range(5)})
    assert all(usage == rows[n].usage and status == "labeled" for n, _, usage, status in labels)

    # The offset points at the sample's own manifest line.
    with get_storage().open(parse(version.manifest_uri)) as fh:
        manifest = fh.read()
    for name, row in rows.items():
        line = json.loads(manifest[row.manifest_offset:].split(b"\n", 1)[0])
        assert line["source"].endswith("/" + name)
        assert line.get("usage", "") == row.usage


def test_version_view_filters_and_counts_by_published_values(client_for, owner, cls_dataset):
    version = publish(owner, cls_dataset)
    rework(owner, cls_dataset)
    client = client_for(owner)
    url = reverse("datasets:detail", args=[cls_dataset.pk])
    cat, dog = Label.objects.get(dataset=cls_dataset, name="Cat"), Label.objects.get(dataset=cls_dataset, name="Dog")

    body = client.get(url).content.decode()  # the current version is the default
    assert _tab_count(body, "all") == 12 and _tab_count(body, "labeled") == 11
    assert _tab_count(body, "unlabeled") == 1
    assert (_label_count(body, "Cat"), _label_count(body, "Dog"), _label_count(body, "Bird")) == (6, 5, 0)
    banner = html.unescape(body[body.index('data-testid="version-banner"'):])
    assert "Labels, label status, usage and hard examples are as published" in banner[:banner.index("</div>")]
    assert "as they are now" not in banner[:banner.index("</div>")]

    assert _names(client.get(url, {"label": cat.pk}).content.decode()) == {f"Cat{i}.jpg" for i in range(6)}
    both = client.get(url, {"label": [cat.pk, dog.pk], "status": "labeled"}).content.decode()
    assert len(_names(both)) == 11 and "11 samples" in both
    assert _names(client.get(url, {"status": "unlabeled"}).content.decode()) == {"unlabeled.jpg"}
    assert _names(client.get(url, {"usage": "TEST"}).content.decode()) == set()
    assert len(_names(client.get(url, {"usage": "NONE"}).content.decode())) == 12
    assert _names(client.get(url, {"hard": "yes"}).content.decode()) == set()
    assert _names(client.get(url, {"label": cat.pk, "hard": "no", "usage": "NONE"}).content.decode()) == {
        f"Cat{i}.jpg" for i in range(6)}

    # Each card shows the version's labels, not the working ones; links open the sample in the version.
    listed = client.get(url, {"name": "Cat0"}).content.decode()
    card = listed[listed.index('data-testid="published-labels"'):]
    card = card[:card.index("</li>")]
    assert ">Cat</span>" in card and ">Dog<" not in card and "TEST" not in card and "hard" not in card
    cat0 = cls_dataset.samples.get(file_name="Cat0.jpg")
    assert f'{reverse("datasets:sample", args=[cls_dataset.pk, cat0.pk])}?version={version.pk}"' in listed

    # The working data shows the changes.
    working = client.get(url, {"version": "working"}).content.decode()
    assert _tab_count(working, "unlabeled") == 1 and _label_count(working, "Dog") == 6
    assert _label_count(working, "Bird") == 1 and _label_count(working, "Cat") == 4
    assert len(_names(client.get(url, {"version": "working", "usage": "TEST"}).content.decode())) == 12

    # A sample deleted since leaves the version's view and counts.
    samples_delete(user=owner, dataset=cls_dataset, sample_ids=[cat0.pk])
    body = client.get(url).content.decode()
    assert _tab_count(body, "all") == 11 and _label_count(body, "Cat") == 5


def test_version_page_query_count_is_bounded(client_for, owner, cls_dataset, django_assert_max_num_queries):
    publish(owner, cls_dataset)
    rework(owner, cls_dataset)
    client = client_for(owner)
    url = reverse("datasets:detail", args=[cls_dataset.pk])
    cat = Label.objects.get(dataset=cls_dataset, name="Cat")
    for params in ({}, {"label": cat.pk, "status": "labeled"}, {"view": "list"}):
        client.get(url, params)  # warm the count caches, as a second page view finds them
        # 13: session, user, workspace, dataset, the version check, the page's rows, its samples, their
        # published labels, the label list, annotators, attributes, the versions, the header's workspace;
        # 14 with a label filter, whose ids are checked against the dataset. The 12 samples share one
        # page, so a query per sample would show here.
        with django_assert_max_num_queries(14 if "label" in params else 13):
            response = client.get(url, params)
        assert response.status_code == 200


def test_api_version_lists_and_filters_published_values(owner, cls_dataset, outsider_api):
    from rest_framework.test import APIClient

    version = publish(owner, cls_dataset, split_enabled=True, train_ratio=0.6)
    rework(owner, cls_dataset)
    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/v1/datasets/{cls_dataset.pk}/samples/"
    cat = Label.objects.get(dataset=cls_dataset, name="Cat")
    everything = api.get(url, {"version": version.pk, "page_size": 100}).json()
    assert everything["count"] == 12
    rows = {r["file_name"]: r for r in everything["results"]}
    assert rows["Cat0.jpg"]["labels"] == ["Cat"] and rows["Cat1.jpg"]["labels"] == ["Cat"]
    assert rows["Cat1.jpg"]["label_status"] == "labeled" and rows["unlabeled.jpg"]["labels"] == []
    assert {r["usage"] for r in rows.values()} == {"TRAIN", "EVAL", ""} and not any(r["hard"] for r in rows.values())
    assert api.get(url, {"version": version.pk, "label": cat.pk}).json()["count"] == 6
    assert api.get(url, {"version": version.pk, "usage": "TEST"}).json()["count"] == 0
    assert api.get(url, {"version": version.pk, "usage": "TRAIN"}).json()["count"] == 7
    assert api.get(url, {"version": version.pk, "label": cat.pk, "usage": "EVAL"}).json()["count"] == sum(
        1 for n, r in rows.items() if n.startswith("Cat") and r["usage"] == "EVAL")
    assert api.get(url, {"version": version.pk, "hard": "yes"}).json()["count"] == 0
    assert api.get(url, {"version": version.pk, "status": "unlabeled"}).json()["count"] == 1
    # The working data, the API's default, is as it is now.
    working = {r["file_name"]: r for r in api.get(url, {"page_size": 100}).json()["results"]}
    assert working["Cat0.jpg"]["labels"] == ["Dog"] and working["Cat0.jpg"]["usage"] == "TEST"
    assert api.get(url, {"usage": "TEST"}).json()["count"] == 12
    assert outsider_api.get(url, {"version": version.pk}).status_code == 404


def test_a_deleted_label_leaves_the_version_view(client_for, owner, cls_dataset):
    """The label filter offers the dataset's labels: one deleted since has no rows left to filter."""
    version = publish(owner, cls_dataset)
    label_delete(user=owner, label=Label.objects.get(dataset=cls_dataset, name="Dog"))
    assert not VersionSampleLabel.objects.filter(version=version, label__name="Dog").exists()
    body = client_for(owner).get(reverse("datasets:detail", args=[cls_dataset.pk])).content.decode()
    assert _tab_count(body, "labeled") == 11  # the status stays as published
    assert _label_count(body, "Cat") == 6


def test_version_view_filters_annotators_and_attributes_as_published(client_for, owner, cls_dataset):
    """Annotator and attribute filters, and their choices, read what the version recorded; relabeling
    and regrouping the working data afterwards changes only the working view."""
    from rest_framework.test import APIClient

    by_name = {s.file_name: s for s in cls_dataset.samples.all()}
    SampleAttribute.objects.create(dataset=cls_dataset, sample=by_name["Cat0.jpg"], name="group", value="1")
    version = publish(owner, cls_dataset)
    assert set(VersionSampleAnnotator.objects.filter(version=version).values_list("annotated_by", flat=True)) == {
        "human"}
    assert VersionSampleAnnotator.objects.filter(version=version).count() == 11
    assert list(VersionSampleAttribute.objects.filter(version=version).values_list("sample__file_name", "name",
                                                                                   "value")) == [
        ("Cat0.jpg", "group", "1")]
    relabel(owner, by_name["Cat0.jpg"], "Dog")  # now annotated by the owner
    SampleAttribute.objects.filter(sample=by_name["Cat0.jpg"]).update(value="2")
    SampleAttribute.objects.create(dataset=cls_dataset, sample=by_name["Dog0.jpg"], name="size", value="big")

    client = client_for(owner)
    url = reverse("datasets:detail", args=[cls_dataset.pk])
    me = owner.get_username()
    assert len(_names(client.get(url, {"annotator": "human"}).content.decode())) == 11
    assert _names(client.get(url, {"annotator": me}).content.decode()) == set()
    assert _names(client.get(url, {"attr": "group=1"}).content.decode()) == {"Cat0.jpg"}
    assert _names(client.get(url, {"attr": "group=2"}).content.decode()) == set()
    assert _names(client.get(url, {"attr": "group=1", "label": by_name["Cat0.jpg"].annotations.get().label_id,
                                   "status": "labeled"}).content.decode()) == set()  # Cat0 is Dog in the working data
    context = client.get(url).context
    assert (context["annotators"], context["attribute_names"]) == (["human"], ["group"])
    banner = html.unescape(client.get(url).content.decode())
    assert "so are annotators and sample attributes" in banner

    working = {"version": "working"}
    assert _names(client.get(url, {**working, "annotator": me}).content.decode()) == {"Cat0.jpg"}
    assert _names(client.get(url, {**working, "attr": "group=2"}).content.decode()) == {"Cat0.jpg"}
    context = client.get(url, working).context
    assert context["annotators"] == sorted(["human", me]) and context["attribute_names"] == ["group", "size"]

    api = APIClient()
    api.force_authenticate(owner)
    api_url = f"/api/v1/datasets/{cls_dataset.pk}/samples/"
    assert api.get(api_url, {"version": version.pk, "annotator": "human"}).json()["count"] == 11
    assert api.get(api_url, {"version": version.pk, "attr": "group=1"}).json()["count"] == 1
    assert api.get(api_url, {"version": version.pk, "attr": "size=big"}).json()["count"] == 0
    assert api.get(api_url, {"annotator": me}).json()["count"] == 1


def test_sample_page_in_a_version_shows_the_published_annotations(client_for, owner, outsider, cls_dataset):
    version = publish(owner, cls_dataset)
    rework(owner, cls_dataset)
    cat0 = cls_dataset.samples.get(file_name="Cat0.jpg")
    client = client_for(owner)
    url = reverse("datasets:sample", args=[cls_dataset.pk, cat0.pk])
    body = html.unescape(client.get(url, {"version": version.pk}).content.decode())
    status = body[body.index('data-testid="sample-status"'):]
    assert "Labeled" in status[:status.index("</p>")] and "TEST" not in status[:status.index("</p>")]
    assert "Label status, usage and annotations are as published." in body
    annotations = body[body.index('data-testid="annotation-list"'):]
    assert "<strong>Cat</strong>" in annotations and "<strong>Dog</strong>" not in annotations
    # Without the version: the working sample.
    working = html.unescape(client.get(url).content.decode())
    assert "<strong>Dog</strong>" in working and 'data-testid="version-banner"' not in working

    # Rows published before offsets were recorded: the published labels, the current annotations, said so.
    VersionSample.objects.filter(version=version, sample=cat0).update(manifest_offset=None)
    body = html.unescape(client.get(url, {"version": version.pk}).content.decode())
    assert "labels (Cat) are as published; the annotations shown are the current ones" in body

    # Bad or foreign versions.
    refused = client.get(url, {"version": "abc"})
    assert refused.status_code == 400 and '"abc" is not a version id' in html.unescape(refused.content.decode())
    assert client.get(url, {"version": 999999}).status_code == 404
    assert client_for(outsider).get(url, {"version": version.pk}).status_code == 404
    unlabeled = cls_dataset.samples.get(file_name="unlabeled.jpg")
    VersionSample.objects.filter(version=version, sample=unlabeled).delete()
    body = client.get(reverse("datasets:sample", args=[cls_dataset.pk, unlabeled.pk]), {"version": version.pk})
    assert "does not contain this sample" in body.content.decode()


def test_detection_sample_page_draws_the_published_boxes(client_for, owner, make_dataset, run_import, root):
    from .test_imports import FIXTURES

    put(f"{root}/voc/260730932.jpg", image_bytes(767, 959))
    put(f"{root}/voc/260730932.xml", (FIXTURES / "detection_voc.xml").read_text())
    dataset = make_dataset(label_type="object_detection")
    run_import(dataset, f"{root}/voc", "voc")
    version = publish(owner, dataset)
    sample = dataset.samples.get()
    published = sorted(sample.annotations.values_list("label__name", flat=True))
    relabel(owner, sample)  # every box deleted from the working data
    body = client_for(owner).get(reverse("datasets:sample", args=[dataset.pk, sample.pk]),
                                 {"version": version.pk}).content.decode()
    drawn = sorted(part.split('"', 1)[0] for part in body.split('data-label="')[1:])
    assert drawn == published and len(drawn) > 0


@pytest.mark.django_db
def test_a_versions_sample_is_read_from_its_manifest_line_on_either_backend(storage_backend):
    """The line is read from its offset (a seek locally, a ranged GET on S3), not from the file's
    start; an offset past the end or a missing manifest gives None, not an error."""
    import io

    from apps.datasets import versions

    storage_backend.bucket_create("versions")
    lines = [json.dumps({"source": f"s3://versions/img/{i}.jpg", "annotation": [
        {"type": "modelarts/image_classification", "name": f"class{i}", "annotated-by": "alice"}]})
        for i in range(2000)]
    data = "".join(line + "\n" for line in lines).encode()
    storage_backend.save(parse("storage://versions/v1/set.manifest"), io.BytesIO(data))
    version = DatasetVersion(manifest_uri="storage://versions/v1/set.manifest", label_type="image_classification",
                             dataset_id=0)
    offset = data.index(lines[1700].encode())
    opened = []
    real_open = type(storage_backend).open
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(storage_backend), "open",
                      lambda self, path, offset=0: opened.append(offset) or real_open(self, path, offset))
        found = versions.published_annotations(version, VersionSample(manifest_offset=offset))
    assert opened == [offset]
    assert [(a.label.name, a.annotated_by) for a in found] == [("class1700", "alice")]
    assert versions.published_annotations(version, VersionSample(manifest_offset=len(data) + 10)) is None
    gone = DatasetVersion(manifest_uri="storage://versions/v1/gone.manifest", label_type="image_classification",
                          dataset_id=0)
    assert versions.published_annotations(gone, VersionSample(manifest_offset=0)) is None


@pytest.mark.django_db(transaction=True)
def test_migration_fills_the_rows_of_existing_versions(owner):
    """0008 on a database whose versions recorded membership only: their rows get the samples'
    values at migration time, their labels VersionSampleLabel rows, and `stats` says when."""
    executor = MigrationExecutor(connection)
    before, after = [("datasets", "0007_annotation_dataset_index")], [("datasets", "0008_version_published_values")]
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before[0]).apps
        OldDataset, OldVersion = old.get_model("datasets", "Dataset"), old.get_model("datasets", "DatasetVersion")
        OldSample, OldLabel = old.get_model("datasets", "Sample"), old.get_model("datasets", "Label")
        OldAnnotation, OldEntry = old.get_model("datasets", "Annotation"), old.get_model("datasets", "VersionSample")
        dataset = OldDataset.objects.create(workspace_id=owner.default_workspace.pk, name="old", data_type="image",
                                            label_type="image_classification", input_location="storage://b/in",
                                            output_location="storage://b/out", uid="a" * 18)
        cat = OldLabel.objects.create(dataset=dataset, name="Cat")
        labeled = OldSample.objects.create(id="1" * 32, dataset=dataset, dedupe_key="1", file_name="1.jpg",
                                           label_status="labeled", usage="TRAIN", hard=True)
        plain = OldSample.objects.create(id="2" * 32, dataset=dataset, dedupe_key="2", file_name="2.jpg")
        OldAnnotation.objects.create(sample=labeled, dataset=dataset, label=cat, type="image_classification",
                                     created_at=labeled.created_at)
        version = OldVersion.objects.create(dataset=dataset, name="V001", label_type="image_classification",
                                            status="normal", sample_count=2, stats={"labels": {"Cat": 1}})
        OldEntry.objects.bulk_create([OldEntry(version=version, sample=labeled),
                                      OldEntry(version=version, sample=plain)])
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    rows = {r.sample_id: r for r in VersionSample.objects.filter(version_id=version.pk)}
    assert (rows["1" * 32].usage, rows["1" * 32].label_status, rows["1" * 32].hard) == ("TRAIN", "labeled", True)
    assert (rows["2" * 32].usage, rows["2" * 32].label_status, rows["2" * 32].hard) == ("", "unlabeled", False)
    assert rows["1" * 32].created_at == Sample.objects.get(pk="1" * 32).created_at
    assert all(r.manifest_offset is None for r in rows.values())
    assert list(VersionSampleLabel.objects.filter(version_id=version.pk).values_list("sample_id", "label_id",
                                                                                     "usage")) == [
        ("1" * 32, cat.pk, "TRAIN")]
    stats = DatasetVersion.objects.get(pk=version.pk).stats
    assert stats["labels"] == {"Cat": 1} and stats["values_as_of"].endswith("UTC")
    assert SampleLabel.objects.filter(sample_id="1" * 32).count() == 1
    assert Dataset.objects.filter(pk=dataset.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_migration_fills_annotators_and_attributes_of_existing_versions(owner):
    """0009 on a database whose versions did not record annotators and attributes: they get the
    samples' ones at migration time, and `stats` says when."""
    executor = MigrationExecutor(connection)
    before = [("datasets", "0008_version_published_values")]
    after = [("datasets", "0009_version_annotators_attributes")]
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before[0]).apps
        OldDataset, OldVersion = old.get_model("datasets", "Dataset"), old.get_model("datasets", "DatasetVersion")
        OldSample, OldEntry = old.get_model("datasets", "Sample"), old.get_model("datasets", "VersionSample")
        OldAnnotation = old.get_model("datasets", "Annotation")
        OldAttribute = old.get_model("datasets", "SampleAttribute")
        dataset = OldDataset.objects.create(workspace_id=owner.default_workspace.pk, name="old", data_type="image",
                                            label_type="image_classification", input_location="storage://b/in",
                                            output_location="storage://b/out", uid="b" * 18)
        first = OldSample.objects.create(id="3" * 32, dataset=dataset, dedupe_key="3", file_name="3.jpg")
        second = OldSample.objects.create(id="4" * 32, dataset=dataset, dedupe_key="4", file_name="4.jpg")
        for by in ("alice", "alice", "bob"):
            OldAnnotation.objects.create(sample=first, dataset=dataset, type="image_classification",
                                         annotated_by=by, created_at=first.created_at)
        OldAttribute.objects.create(dataset=dataset, sample=second, name="group", value="7")
        version = OldVersion.objects.create(dataset=dataset, name="V001", label_type="image_classification",
                                            status="normal", sample_count=2, stats={"labels": {}})
        OldEntry.objects.bulk_create([OldEntry(version=version, sample=s, created_at=s.created_at)
                                      for s in (first, second)])
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert sorted(VersionSampleAnnotator.objects.filter(version_id=version.pk).values_list(
        "sample_id", "annotated_by")) == [("3" * 32, "alice"), ("3" * 32, "bob")]
    assert list(VersionSampleAttribute.objects.filter(version_id=version.pk).values_list(
        "sample_id", "name", "value")) == [("4" * 32, "group", "7")]
    assert DatasetVersion.objects.get(pk=version.pk).stats["annotators_as_of"].endswith("UTC")
