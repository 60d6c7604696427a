"""Pages: every tab renders for a member, is a 404 for an outsider, forms show inline errors (items 1–9, 28–29, 45–53)."""
import html

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.paths import parse
from apps.datasets.models import Dataset, DatasetOperation, DatasetVersion
from apps.datasets.operations import operation_execute
from apps.datasets.versions import version_publish

from .conftest import image_bytes, put
from .test_imports import FIXTURES


@pytest.fixture
def client_for():
    def make(user):
        client = Client()
        client.force_login(user)
        return client
    return make


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
    assert f'href="/datasets/{detection.pk}/features/#group-title"' in body  # auto-grouping from the All tab
    body = client_for(owner).get(url, {"status": "unlabeled"}).content.decode()
    assert "plain.jpg" in body and "260730932.jpg" not in body
    assert 'data-testid="auto-group"' not in body
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


def test_sample_browser_shows_a_chosen_version(client_for, owner, outsider, detection, run_import, root):
    """Item 46: the browser's version selector narrows the grid and the tab counts; live is the default."""
    v1 = DatasetVersion.objects.get(dataset=detection)
    put(f"{root}/voc/later.jpg", image_bytes(90, 60))
    run_import(detection, f"{root}/voc", "voc")  # added after V001 was published
    client = client_for(owner)
    url = reverse("datasets:detail", args=[detection.pk])
    live = client.get(url).content.decode()
    assert 'data-testid="version-select"' in live and '<option value="">Live dataset</option>' in live
    assert "later.jpg" in live and 'data-testid="version-banner"' not in live
    body = client.get(url, {"version": v1.pk}).content.decode()
    assert f'<option value="{v1.pk}" selected>V001 (current)</option>' in body
    assert 'data-testid="version-banner"' in body and "later.jpg" not in body and "plain.jpg" in body
    assert html.unescape(body).count(">2 samples<") == 1
    # htmx swaps the results and, out of band, the status tabs with the version's counts.
    part = client.get(url, {"version": v1.pk, "status": "unlabeled"}, HTTP_HX_REQUEST="true",
                      HTTP_HX_TARGET="sample-results").content.decode()
    assert 'id="status-tabs"' in part and 'hx-swap-oob="true"' in part and "<html" not in part
    assert ">1 sample<" in part and "plain.jpg" in part
    refused = client.get(url, {"version": 999999})
    assert refused.status_code == 400 and "Version 999999 is not a version of this dataset." in refused.content.decode()
    assert client_for(outsider).get(url, {"version": v1.pk}).status_code == 404


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
