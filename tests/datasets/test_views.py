"""Pages: every tab renders for a member, is a 404 for an outsider, forms show inline errors (items 1–9, 28–29, 45–53)."""
import html

import pytest
from django.urls import reverse

from apps.core.paths import parse
from apps.datasets.models import Dataset, DatasetOperation, DatasetVersion
from apps.datasets.operations import operation_execute
from apps.datasets.versions import version_publish

from .conftest import image_bytes, put
from .test_imports import FIXTURES


@pytest.fixture
def detection(make_dataset, run_import, root, owner):
    put(f"{root}/voc/260730932.jpg", image_bytes(767, 959))
    put(f"{root}/voc/260730932.xml", (FIXTURES / "detection_voc.xml").read_text())
    put(f"{root}/voc/plain.jpg", image_bytes(100, 80))
    dataset = make_dataset(label_type="object_detection")
    run_import(dataset, f"{root}/voc", "voc")
    op = version_publish(user=owner, dataset=dataset)
    operation_execute(op.pk)
    return dataset


PAGES = ["detail", "labels", "versions", "operations", "features", "processing", "edit", "delete", "import", "sync",
         "publish", "export"]


@pytest.mark.parametrize("name", PAGES)
def test_pages_render_for_member_and_hide_from_outsider(client_for, owner, outsider, detection, name):
    url = reverse(f"datasets:{name}", args=[detection.pk])
    assert client_for(owner).get(url).status_code == 200
    assert client_for(outsider).get(url).status_code == 404


def test_list_shows_progress_and_actions(client_for, owner, detection):
    response = client_for(owner).get(reverse("datasets:list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "50.00% (1/2)" in body and detection.uid in body and "V001" in body
    for action in ("Import", "Publish", "Export", "Delete", "Modify", "Version management", "Data features"):
        assert action in body
    assert detection.output_location in body  # shown in the expandable row
    assert "GMT+" in body or "GMT-" in body


def test_sample_preview_draws_annotations(client_for, owner, detection):
    sample = detection.samples.get(file_name="260730932.jpg")
    response = client_for(owner).get(reverse("datasets:sample", args=[detection.pk, sample.pk]))
    body = response.content.decode()
    assert 'viewBox="0 0 767 959"' in body
    assert '<rect x="108" y="101" width="143" height="137">' in body
    assert body.count("<polygon") == 1 and body.count("<polyline") == 1 and "<circle" in body
    thumb = client_for(owner).get(reverse("datasets:sample_thumbnail", args=[detection.pk, sample.pk]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    original = client_for(owner).get(reverse("datasets:sample_file", args=[detection.pk, sample.pk]))
    assert original.status_code == 200 and original["Content-Disposition"].startswith("inline")


def test_sample_filters_and_tabs(client_for, owner, detection):
    bag = detection.labels.get(name="bag")
    url = reverse("datasets:detail", args=[detection.pk])
    body = client_for(owner).get(url, {"label": bag.pk}).content.decode()
    assert "260730932.jpg" in body and "plain.jpg" not in body
    body = client_for(owner).get(url, {"status": "unlabeled"}).content.decode()
    assert "plain.jpg" in body and "260730932.jpg" not in body
    response = client_for(owner).get(url, {"hard": "perhaps"})
    assert response.status_code == 400 and '"hard" is yes or no.' in html.unescape(response.content.decode())


def test_create_form_errors_inline_and_success(client_for, owner, root):
    client = client_for(owner)
    data = {"name": "1abc", "description": "", "data_type": "image", "label_type": "image_classification",
            "input_location": f"{root}/data/a", "output_location": f"{root}/data/a/out"}
    response = client.post(reverse("datasets:create"), data)
    body = response.content.decode()
    assert response.status_code == 400
    assert "starts with a letter" in body
    assert "output location cannot be the same as or a sub-directory of the import path" in body
    assert Dataset.objects.count() == 0
    data.update(name="dataset-8153", output_location=f"{root}/out")
    response = client.post(reverse("datasets:create"), data)
    dataset = Dataset.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("datasets:detail", args=[dataset.pk])


def test_create_form_offers_types_and_counter(client_for, owner):
    body = client_for(owner).get(reverse("datasets:create")).content.decode()
    for data_type in ("Image", "Audio", "Text", "Video", "Free format", "Table"):
        assert f">{data_type}</option>" in body
    assert 'data-counter="256"' in body and 'maxlength="256"' in body
    assert ".jpg .jpeg .png .bmp" in body  # extension list handed to the form script (json_script)


def test_version_pages_set_current_and_delete_keep_files(client_for, owner, detection):
    from apps.core.storage import get_storage

    client = client_for(owner)
    v1 = DatasetVersion.objects.get(dataset=detection)
    op = version_publish(user=owner, dataset=detection)
    operation_execute(op.pk)
    body = client.get(reverse("datasets:versions", args=[detection.pk])).content.decode()
    assert body.count('data-testid="current-badge"') == 1 and "V002" in body
    client.post(reverse("datasets:version_current", args=[detection.pk, v1.pk]))
    detection.refresh_from_db()
    assert detection.current_version == v1
    wrong = client.post(reverse("datasets:version_delete", args=[detection.pk, v1.pk]), {"confirm_name": "v001"})
    assert wrong.status_code == 400 and DatasetVersion.objects.filter(pk=v1.pk).exists()
    client.post(reverse("datasets:version_delete", args=[detection.pk, v1.pk]), {"confirm_name": "V001"})
    assert not DatasetVersion.objects.filter(pk=v1.pk).exists()
    assert get_storage().exists(parse(v1.manifest_uri))
    compare = client.get(reverse("datasets:versions", args=[detection.pk]),
                         {"compare": [str(v.pk) for v in detection.versions.all()]}).content.decode()
    assert 'data-testid="compare-chart"' in compare


def test_operation_page_lists_errors_and_csv(client_for, owner, make_dataset, run_import, root):
    put(f"{root}/imgs/ok.jpg", image_bytes())
    put(f"{root}/imgs/bad.png", b"nope")
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/imgs", "raw")
    client = client_for(owner)
    body = client.get(reverse("datasets:operation", args=[dataset.pk, op.pk])).content.decode()
    assert "CORRUPT_IMAGE" in body and "bad.png" in body and "The file has an image extension but is not an image." in body
    assert "Imported 1 sample (0 labeled), 1 error." in body
    report = client.get(reverse("datasets:operation_errors", args=[dataset.pk, op.pk])).content.decode()
    assert report.splitlines()[0] == "file,line,rule,message"
    assert report.splitlines()[1].endswith("bad.png,,CORRUPT_IMAGE,The file has an image extension but is not an image.")


def test_sync_asks_for_confirmation_first(client_for, owner, make_dataset):
    dataset = make_dataset()
    client = client_for(owner)
    body = client.get(reverse("datasets:sync", args=[dataset.pk])).content.decode()
    assert "are removed from the dataset" in body and "No file in storage is deleted." in body
    assert DatasetOperation.objects.filter(dataset=dataset, kind="sync").count() == 0
    response = client.post(reverse("datasets:sync", args=[dataset.pk]))
    op = DatasetOperation.objects.get(dataset=dataset, kind="sync")
    assert response["Location"] == reverse("datasets:operation", args=[dataset.pk, op.pk])


def test_delete_needs_typed_name(client_for, owner, outsider, make_dataset):
    dataset = make_dataset()
    assert client_for(outsider).post(reverse("datasets:delete", args=[dataset.pk]),
                                     {"confirm_name": dataset.name}).status_code == 404
    response = client_for(owner).post(reverse("datasets:delete", args=[dataset.pk]), {"confirm_name": "nope"})
    assert response.status_code == 400 and Dataset.objects.filter(pk=dataset.pk).exists()
    client_for(owner).post(reverse("datasets:delete", args=[dataset.pk]), {"confirm_name": dataset.name})
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_list_query_count_is_bounded(client_for, owner, make_dataset, django_assert_max_num_queries):
    for i in range(5):
        make_dataset(name=f"ds-{i}")
    client = client_for(owner)
    client.get(reverse("datasets:list"))
    with django_assert_max_num_queries(12):
        client.get(reverse("datasets:list"))


def test_version_page_shows_its_own_data(client_for, owner, outsider, detection):
    version = DatasetVersion.objects.get(dataset=detection)
    url = reverse("datasets:version", args=[detection.pk, version.pk])
    body = client_for(owner).get(url).content.decode()
    assert "2 samples as published" in body and "260730932.jpg" in body and "plain.jpg" in body
    assert body.count(">yes<") == 2
    detection.samples.filter(file_name="plain.jpg").delete()
    body = client_for(owner).get(url).content.decode()
    assert body.count(">yes<") == 1 and "removed" in body
    assert client_for(outsider).get(url).status_code == 404


def _shows(body: str) -> set[str]:
    """The file names of the samples a detail page lists."""
    return {name for name in ("260730932.jpg", "plain.jpg", "later.jpg") if f'title="{name}"' in body}


def test_detail_shows_the_current_version_by_default(client_for, owner, detection, run_import, root):
    """Item 46: with a current version the detail shows its samples, read-only, with the same
    filters, tabs and pages; `?version=working` shows the working data with its actions."""
    v1 = DatasetVersion.objects.get(dataset=detection)
    detection.refresh_from_db()
    assert detection.current_version == v1  # publishing made it current
    put(f"{root}/voc/later.jpg", image_bytes(90, 60))
    run_import(detection, f"{root}/voc", "voc")  # added after V001 was published
    client = client_for(owner)
    url = reverse("datasets:detail", args=[detection.pk])
    body = client.get(url).content.decode()
    assert _shows(body) == {"260730932.jpg", "plain.jpg"}
    banner = body[body.index('data-testid="version-banner"'):]
    banner = html.unescape(banner[:banner.index("</div></div>")])
    assert "V001</a></strong> (the current version)" in banner
    assert "read-only" in banner and 'href="?version=working"' in banner
    assert f'<option value="{v1.pk}" selected>V001 — current version</option>' in html.unescape(body)
    assert '<option value="working">Working data (unpublished changes)</option>' in body
    assert 'data-testid="switcher-current-badge"' in body
    # Changing data is for the working data: no import, sync or auto-grouping here; exports take the version.
    for href in (reverse("datasets:import", args=[detection.pk]), reverse("datasets:sync", args=[detection.pk])):
        assert f'href="{href}"' not in body
    assert 'data-testid="auto-group"' not in body
    assert f'{reverse("datasets:export", args=[detection.pk])}?version={v1.pk}"' in body
    tab = body[body.index('data-testid="status-tab-all"'):]
    assert tab[:tab.index("</a>")].endswith('<span class="tab-count">2</span>')

    # The browser's filters and tabs narrow the version's samples (later.jpg is unlabeled too).
    unlabeled = client.get(url, {"status": "unlabeled"}).content.decode()
    assert _shows(unlabeled) == {"plain.jpg"}
    assert _shows(client.get(url, {"name": "later"}).content.decode()) == set()
    bag = detection.labels.get(name="bag")
    labeled = client.get(url, {"label": bag.pk}).content.decode()
    assert _shows(labeled) == {"260730932.jpg"}
    part = client.get(url, {"status": "unlabeled", "version": ""}, HTTP_HX_REQUEST="true",
                      HTTP_HX_TARGET="sample-results").content.decode()
    assert "<html" not in part and 'hx-swap-oob="true"' in part and _shows(part) == {"plain.jpg"}
    assert '<span class="tab-count">1</span>' in part  # the version's unlabeled count, not the working 2

    working = client.get(url, {"version": "working"}).content.decode()
    assert _shows(working) == {"260730932.jpg", "plain.jpg", "later.jpg"}
    assert 'data-testid="version-banner"' not in working and 'data-testid="working-banner"' in working
    assert '<option value="working" selected>' in working
    assert f'href="{reverse("datasets:import", args=[detection.pk])}"' in working
    assert f'href="{reverse("datasets:sync", args=[detection.pk])}"' in working
    assert _shows(client.get(url, {"version": "working", "name": "later"}).content.decode()) == {"later.jpg"}
    # The filter form keeps the choice; the switcher keeps the filters.
    assert '<input type="hidden" name="version" value="working">' in working
    filtered = client.get(url, {"version": "working", "status": "unlabeled"}).content.decode()
    assert '<input type="hidden" name="status" value="unlabeled">' in filtered.split('data-testid="data-switcher"')[1]


def test_detail_pages_through_the_current_version(client_for, owner, make_dataset):
    """Item 46: the current version's samples come page by page like the working data's."""
    from apps.datasets.models import Sample, VersionSample

    dataset = make_dataset()
    samples = Sample.objects.bulk_create([Sample(dataset=dataset, dedupe_key=f"k{i}", file_name=f"s{i:02}.jpg",
                                                 format_category="image") for i in range(35)])
    version = DatasetVersion.objects.create(dataset=dataset, name="V001", label_type="image_classification",
                                            status="normal", sample_count=32)
    VersionSample.objects.bulk_create([VersionSample(version=version, sample=s, created_at=s.created_at)
                                       for s in samples[:32]])
    Dataset.objects.filter(pk=dataset.pk).update(current_version=version)
    client = client_for(owner)
    url = reverse("datasets:detail", args=[dataset.pk])
    first = client.get(url).content.decode()
    assert "32 samples" in first and "1–30 of 32" in first and 'href="?&page=2"' in first
    second = client.get(url, {"page": 2}).content.decode()
    assert "31–32 of 32" in second and second.count('data-select-item>') == 2
    assert "s33.jpg" not in first + second and "s34.jpg" not in first + second
    working = client.get(url, {"version": "working", "page": 2}).content.decode()
    assert "31–35 of 35" in working and 'href="?version=working&page=1"' in working


def test_detail_follows_the_version_set_as_current(client_for, owner, detection):
    """Item 46: "Set as current version" changes what the detail shows; another version opens by id."""
    v1 = DatasetVersion.objects.get(dataset=detection)
    op = version_publish(user=owner, dataset=detection)
    operation_execute(op.pk)
    v2 = DatasetVersion.objects.get(dataset=detection, name="V002")
    client = client_for(owner)
    url = reverse("datasets:detail", args=[detection.pk])
    body = html.unescape(client.get(url).content.decode())
    assert f'<option value="{v2.pk}" selected>V002 — current version</option>' in body
    assert f'<option value="{v1.pk}">V001</option>' in body
    client.post(reverse("datasets:version_current", args=[detection.pk, v1.pk]))
    versions_page = client.get(reverse("datasets:versions", args=[detection.pk])).content.decode()
    row = versions_page[versions_page.index('data-version="V001"'):]
    assert 'data-testid="current-badge">Current version</span>' in row[:row.index("</tr>")]
    body = html.unescape(client.get(url).content.decode())
    assert f'<option value="{v1.pk}" selected>V001 — current version</option>' in body
    other = html.unescape(client.get(url, {"version": v2.pk}).content.decode())
    assert f'<option value="{v2.pk}" selected>V002</option>' in other
    assert 'data-testid="version-banner"' in other and 'data-testid="switcher-current-badge"' not in other


def test_detail_without_a_current_version_shows_the_working_data(client_for, owner, make_dataset, run_import, root):
    put(f"{root}/cls/Cat/1.jpg", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/cls", "imagenet-folder")
    body = client_for(owner).get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    assert 'data-testid="data-switcher"' not in body and 'data-testid="version-banner"' not in body
    assert 'data-testid="working-banner"' not in body and "1.jpg" in body
    assert f'href="{reverse("datasets:import", args=[dataset.pk])}"' in body


def test_detail_version_ids_are_checked(client_for, owner, outsider, detection, make_dataset, run_import, root):
    """Item 46: another dataset's or workspace's version is a 404, a version that is not Normal a
    message in words, a table dataset does not switch, and an outsider sees nothing."""
    v1 = DatasetVersion.objects.get(dataset=detection)
    client = client_for(owner)
    url = reverse("datasets:detail", args=[detection.pk])
    put(f"{root}/cls/Cat/1.jpg", image_bytes())
    other = make_dataset(name="other-8153")
    run_import(other, f"{root}/cls", "imagenet-folder")
    operation_execute(version_publish(user=owner, dataset=other).pk)
    foreign = DatasetVersion.objects.get(dataset=other)
    theirs = Dataset.objects.create(workspace=outsider.default_workspace, name="theirs", data_type="image",
                                    label_type="object_detection", input_location=f"{root}/t-in",
                                    output_location=f"{root}/t-out")
    their_version = DatasetVersion.objects.create(dataset=theirs, name="V001", label_type="object_detection",
                                                  status="normal")
    for bad in (foreign.pk, their_version.pk, 999999, 0):
        assert client.get(url, {"version": bad}).status_code == 404, bad
    failed = DatasetVersion.objects.create(dataset=detection, name="V009", label_type="object_detection",
                                           status="failed")
    refused = client.get(url, {"version": failed.pk})
    body = html.unescape(refused.content.decode())
    assert refused.status_code == 400 and "Version V009 is failed; only a published (Normal) version can be browsed." in body
    assert _shows(body) == {"260730932.jpg", "plain.jpg"}  # the working data, beside the message
    refused = client.get(url, {"version": "abc"})
    assert refused.status_code == 400
    assert '"abc" is not a version id; use "working" for the working data.' in html.unescape(refused.content.decode())
    assert client_for(outsider).get(url, {"version": v1.pk}).status_code == 404
    assert client_for(outsider).get(url).status_code == 404

    put(f"{root}/tab/a.csv", "a,b\n1,2\n")
    table = make_dataset(name="table-8153", data_type="table", label_type="table", input_location=parse(f"{root}/tab"))
    DatasetVersion.objects.create(dataset=table, name="V001", label_type="table", status="normal")
    table_url = reverse("datasets:detail", args=[table.pk])
    body = client.get(table_url).content.decode()
    assert 'data-testid="data-switcher"' not in body and 'data-testid="version-banner"' not in body
    refused = client.get(table_url, {"version": table.versions.get().pk})
    assert refused.status_code == 400 and "Table datasets do not switch versions" in refused.content.decode()


def test_auto_grouping_is_offered_from_the_all_tab_only(client_for, owner, detection, make_dataset):
    """Item 31: the All tab of the working data, unfiltered, of an image classification, detection or
    segmentation dataset offers auto-grouping; its form takes 2 to 200 groups."""
    client = client_for(owner)
    url = reverse("datasets:detail", args=[detection.pk])
    link = f'href="{reverse("datasets:features", args=[detection.pk])}#group-title" data-testid="auto-group"'
    assert link in client.get(url, {"version": "working"}).content.decode()
    assert link in client.get(url, {"version": "working", "status": "all"}).content.decode()
    bag = detection.labels.get(name="bag")
    for params in ({"status": "unlabeled"}, {"status": "labeled"}, {"status": "to_confirm"}, {"label": bag.pk},
                   {"name": "plain"}, {}):  # other tabs, a filter, the (current) version
        assert 'data-testid="auto-group"' not in client.get(url, {"version": "working", **params}
                                                            if params else {}).content.decode(), params
    for label_type, data_type in (("image_classification", "image"), ("image_segmentation", "image")):
        dataset = make_dataset(name=f"ds-{label_type}".replace("_", "-"), label_type=label_type, data_type=data_type)
        assert 'data-testid="auto-group"' in client.get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    for label_type, data_type in (("text_classification", "text"), ("audio_classification", "audio"),
                                  ("free_format", "free_format")):
        dataset = make_dataset(name=f"ds-{label_type}".replace("_", "-"), label_type=label_type, data_type=data_type)
        assert 'data-testid="auto-group"' not in client.get(reverse("datasets:detail", args=[dataset.pk])
                                                            ).content.decode(), label_type

    # The link opens the grouping form; its bounds are field errors and start nothing.
    features = reverse("datasets:features", args=[detection.pk])
    assert 'data-testid="group-form"' in client.get(features).content.decode()
    for groups in (1, 201, "2.5"):
        refused = client.post(features, {"action": "group", "groups": groups, "handling": "attribute",
                                         "attribute": "cluster"})
        body = html.unescape(refused.content.decode())
        assert refused.status_code == 400, groups
        assert ("greater than or equal to 2" in body if groups == 1 else "less than or equal to 200" in body
                if groups == 201 else "Enter a whole number." in body)
    assert not DatasetOperation.objects.filter(dataset=detection, kind="auto_group").exists()
    for groups in (2, 200):
        assert client.post(features, {"action": "group", "groups": groups, "handling": "attribute",
                                      "attribute": "cluster"}).status_code == 302
    assert sorted(op.params["groups"] for op in DatasetOperation.objects.filter(dataset=detection,
                                                                                kind="auto_group")) == [2, 200]


def test_export_page_lists_the_export_history(client_for, owner, detection, root):
    """Item 52: Task ID / Created / Method / Path / Exported sample total / Status under the export form."""
    url = reverse("datasets:export", args=[detection.pk])
    assert "No export yet." in client_for(owner).get(url).content.decode()
    response = client_for(owner).post(url, {"method": "storage", "path": f"{root}/exp", "format": "default",
                                            "filter": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    op = DatasetOperation.objects.get(dataset=detection, kind="export")
    operation_execute(op.pk)
    page = client_for(owner).get(url).content.decode()
    history = page[page.index('data-testid="export-history"'):]
    row = history[history.index("<tbody>"):history.index("</tbody>")]
    for text in (op.uid, "Storage directory", f"{root}/exp", '<td class="num">2</td>', "Succeeded", "<time "):
        assert text in row, text


def test_processing_form_picks_augmentation_operators_from_checkboxes(client_for, owner, detection):
    url = reverse("datasets:processing", args=[detection.pk])
    page = client_for(owner).get(url).content.decode()
    assert page.count('name="operators"') >= 18  # spec item 30: at least 18 operators, each a checkbox
    refused = client_for(owner).post(url, {"operation": "augment", "copies": 1})
    assert refused.status_code == 400 and "Choose at least one operator" in refused.content.decode()
    response = client_for(owner).post(url, {"operation": "augment", "operators": ["flip_horizontal", "rotate_90"],
                                            "copies": 2})
    assert response.status_code == 302
    op = DatasetOperation.objects.get(dataset=detection, kind="processing")
    assert (op.params["operators"], op.params["copies"]) == (["flip_horizontal", "rotate_90"], 2)


def test_export_into_the_output_location_warns_and_into_the_input_is_refused(client_for, owner, detection):
    """Item 50: a save path in the dataset's output location is allowed with a warning; the input
    location is refused on the field (a later sync would import the export as new samples)."""
    url = reverse("datasets:export", args=[detection.pk])
    refused = client_for(owner).post(url, {"method": "storage", "format": "default", "filter": "",
                                           "path": detection.input_location.rstrip("/") + "/exp"})
    assert refused.status_code == 400
    assert "The save path cannot be the dataset&#x27;s input location" in refused.content.decode()
    response = client_for(owner).post(url, {"method": "storage", "format": "default", "filter": "",
                                            "path": detection.output_location.rstrip("/") + "/exp"}, follow=True)
    assert "The save path is inside the dataset&#x27;s output location." in response.content.decode()
    assert DatasetOperation.objects.filter(dataset=detection, kind="export").count() == 1


def test_segmentation_preview_overlays_the_mask_colour(client_for, owner, make_dataset, run_import, root):
    """Item 17: a voc-seg polygon is drawn filled with its `mask_color`, the colour of the mask PNG."""
    put(f"{root}/seg/image_0006.jpg", image_bytes(230, 300))
    put(f"{root}/seg/image_0006.xml", (FIXTURES / "segmentation_voc.xml").read_text())
    dataset = make_dataset(name="seg", label_type="image_segmentation")
    run_import(dataset, f"{root}/seg", "voc-seg")
    sample = dataset.samples.get()
    page = client_for(owner).get(reverse("datasets:sample", args=[dataset.pk, sample.pk])).content.decode()
    assert 'class="ds-mask" style="fill: rgb(193,243,53)"' in page


def test_local_upload_stores_files_in_the_chosen_storage_path(client_for, owner, detection, root):
    """Spec §5.5: the upload dialog's "storage path for uploaded data" (with the path picker)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    page = client_for(owner).get(reverse("datasets:import", args=[detection.pk])).content.decode()
    assert 'name="storage_path"' in page and "data-path-picker" in page
    url = reverse("datasets:upload", args=[detection.pk])
    refused = client_for(owner).post(url, {"files": [SimpleUploadedFile("u.png", image_bytes())], "format": "raw",
                                           "storage_path": detection.output_location}, follow=True)
    assert ("Storage path for uploaded data: The storage path for uploaded data cannot be the dataset&#x27;s output "
            "location") in refused.content.decode()
    assert not DatasetOperation.objects.filter(dataset=detection, kind="import", params__source="upload").exists()
    response = client_for(owner).post(url, {"files": [SimpleUploadedFile("u.png", image_bytes())], "format": "raw",
                                            "storage_path": f"{root}/uploads"})
    assert response.status_code == 302
    op = DatasetOperation.objects.get(dataset=detection, kind="import", params__source="upload")
    assert op.params["path"].startswith(f"{root}/uploads/upload-")


def test_import_is_reachable_from_its_five_entry_points(client_for, owner, workspace, root):
    """Item 11: the create form, the list's row action "Import", the detail's "Import" and "Sync data
    source", and a labeling job's "Add data" each lead, link by link, to an import (or sync) operation."""
    from apps.labeling.services import job_create

    put(f"{root}/src/Cat/1.jpg", image_bytes())
    put(f"{root}/more/2.jpg", image_bytes(color=(10, 200, 10)))
    client = client_for(owner)

    def follow(page_url: str, href: str, data: dict) -> DatasetOperation:
        """`href` is linked from `page_url`; its form, posted with `data`, starts one operation."""
        assert f'href="{href}"' in client.get(page_url).content.decode(), (page_url, href)
        assert client.get(href).status_code == 200
        before = set(DatasetOperation.objects.values_list("pk", flat=True))
        response = client.post(href, data)
        assert response.status_code == 302, response.content.decode()[:2000]
        return DatasetOperation.objects.exclude(pk__in=before).get()

    # 1. The create form: data already in the input location is imported at creation.
    op = follow(reverse("datasets:list"), reverse("datasets:create"), {
        "name": "entry-8153", "description": "", "data_type": "image", "label_type": "image_classification",
        "input_location": f"{root}/src", "output_location": f"{root}/out"})
    dataset = Dataset.objects.get(name="entry-8153")
    assert (op.dataset, op.kind, op.params["path"]) == (dataset, "import", f"{root}/src")
    import_url = reverse("datasets:import", args=[dataset.pk])
    # 2. The dataset list's row action "Import".
    op = follow(reverse("datasets:list"), import_url, {"path": f"{root}/more", "format": "raw"})
    assert (op.dataset, op.kind, op.params["path"]) == (dataset, "import", f"{root}/more")
    # 3. The detail page's "Import" (working data: the dataset has no current version).
    detail = reverse("datasets:detail", args=[dataset.pk])
    op = follow(detail, import_url, {"path": f"{root}/more", "format": "raw"})
    assert (op.dataset, op.kind) == (dataset, "import")
    # 4. The detail page's "Sync data source" (its page warns first; the POST starts it).
    op = follow(detail, reverse("datasets:sync", args=[dataset.pk]), {})
    assert (op.dataset, op.kind) == (dataset, "sync")
    # 5. The labeling job's "Add data".
    job = job_create(user=owner, workspace=workspace, name="entry-job", dataset=dataset,
                     labeling_type="image_classification", labels=[{"name": "Cat"}])
    op = follow(reverse("labeling:detail", args=[job.pk]), reverse("labeling:data", args=[job.pk]),
                {"source": "storage", "labeled": "unlabeled", "path": f"{root}/more", "format": "raw"})
    assert (op.dataset, op.kind, op.params["path"]) == (dataset, "import", f"{root}/more")
