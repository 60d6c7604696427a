"""The Data pages in a real browser: the create form's client logic, the sample grid and annotated
preview, live operation progress from a real worker, and plotly charts.

Screenshots go to $ATELIER_SCREENSHOTS (default: the system temp dir) for review.
"""
import os
import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.core.paths import parse
from apps.datasets.operations import operation_execute
from apps.datasets.services import operation_start
from apps.datasets.versions import version_publish

from .conftest import image_bytes, put
from .test_imports import FIXTURES

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


@pytest.fixture
def signed_in(page, asgi_server, owner, login):
    login(page, owner, asgi_server.url)
    return asgi_server.url


def test_create_form_follows_data_type_and_counts(page, signed_in, root):
    page.goto(f"{signed_in}/datasets/new")
    form = page.locator("[data-testid=dataset-create-form]")
    expect(form.locator("[data-extensions]")).to_have_text("Supported formats: .jpg .jpeg .png .bmp")
    form.locator("[name=description]").fill("hello")
    expect(form.locator("[data-testid=char-counter]")).to_have_text("5/256")
    form.locator("[name=labeled]").check()
    expect(form.locator("[name=import_format]")).to_be_visible()
    assert form.locator("[name=import_format]").evaluate("el => el.required")
    options = form.locator("[name=import_format] option").all_text_contents()
    assert "ModelArts imageNet 1.0 (folder per label)" in options and "YOLO" not in options
    form.locator("[name=data_type]").select_option("audio")
    expect(form.locator("[data-extensions]")).to_have_text("Supported formats: .wav")
    assert form.locator("[name=label_type] option").all_text_contents() == [
        "Sound classification", "Speech content", "Speech segmentation"]
    form.locator("[name=label_type]").select_option("audio_content")
    expect(form.locator("[data-labeled-section]")).to_be_hidden()
    form.locator("[name=data_type]").select_option("table")
    expect(form.locator("[data-table-section]")).to_be_visible()
    form.locator("[name=data_type]").select_option("image")
    form.locator("[name=name]").fill("1abc")
    form.locator("[name=input_location]").fill(f"{root}/a")
    form.locator("[name=output_location]").fill(f"{root}/a/out")
    form.locator("[name=labeled]").uncheck()
    page.screenshot(path=str(SHOTS / "datasets-create-form.png"), full_page=True)
    form.locator("button[type=submit]").click()
    expect(page.locator(".field-error").first).to_be_visible()
    expect(page.locator("[data-field=output_location] .field-error")).to_have_text(
        "output location cannot be the same as or a sub-directory of the import path")
    page.screenshot(path=str(SHOTS / "datasets-create-errors.png"), full_page=True)


def test_sample_grid_filters_and_annotated_preview(page, signed_in, make_dataset, run_import, root):
    put(f"{root}/voc/260730932.jpg", image_bytes(767, 959, color=(90, 120, 160), fmt="JPEG"))
    put(f"{root}/voc/260730932.xml", (FIXTURES / "detection_voc.xml").read_text())
    for i in range(5):
        put(f"{root}/voc/plain{i}.jpg", image_bytes(120, 90, color=(40 * i, 180, 90), fmt="JPEG"))
    dataset = make_dataset(label_type="object_detection")
    run_import(dataset, f"{root}/voc", "voc")
    page.goto(f"{signed_in}/datasets/{dataset.pk}/")
    grid = page.locator("[data-testid=sample-grid]")
    expect(grid.locator("li")).to_have_count(6)
    assert grid.locator("img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(page.locator("[data-testid=status-tab-labeled] .tab-count")).to_have_text("1")
    page.screenshot(path=str(SHOTS / "datasets-sample-grid.png"), full_page=True)
    page.locator("label.ds-label-check", has_text="bag").locator("input").check()
    expect(grid.locator("li")).to_have_count(1)
    assert "label=" in page.url  # htmx pushed the filter into the address
    grid.locator("li input[data-select-item]").check()
    expect(page.locator("[data-select-count]")).to_have_text("1")
    grid.locator("a.ds-card-link").click()
    canvas = page.locator("[data-testid=annotated-image]")
    expect(canvas.locator("rect")).to_have_count(1)
    expect(canvas.locator("g.ds-shape")).to_have_count(5)
    page.screenshot(path=str(SHOTS / "datasets-sample-preview.png"), full_page=True)


def test_operation_progress_updates_live(page, signed_in, celery_worker, make_dataset, root, owner):
    for i in range(40):
        put(f"{root}/many/{i:03d}.png", image_bytes(64, 64, color=(i * 5, 80, 80)))
    put(f"{root}/many/broken.png", b"definitely not a png")
    dataset = make_dataset()
    op = operation_start(user=owner, dataset=dataset, kind="import", params={"path": f"{root}/many", "format": "raw"})
    page.goto(f"{signed_in}/datasets/{dataset.pk}/operations/{op.pk}/")
    expect(page.locator("[data-testid=operation-status]")).to_have_attribute("data-status", "queued")
    celery_worker(queues=["pool.local"])
    expect(page.locator("[data-testid=operation-status]")).to_have_attribute("data-status", "succeeded", timeout=60000)
    expect(page.locator("[data-testid=operation-progress]")).to_have_text("41 / 41 items · 1 error")
    page.reload()
    expect(page.locator("[data-testid=error-table]")).to_contain_text("broken.png")
    expect(page.locator("[data-testid=error-table]")).to_contain_text("CORRUPT_IMAGE")
    page.screenshot(path=str(SHOTS / "datasets-operation.png"), full_page=True)


def test_feature_histograms_and_version_comparison(page, signed_in, make_dataset, run_import, root, owner):
    for i in range(6):
        put(f"{root}/src/Dark/{i}.png", image_bytes(40 + i * 10, 30, color=(20 + 10 * i, 20, 20)))
        put(f"{root}/src/Light/{i}.png", image_bytes(60, 30 + i * 5, color=(200, 230 - 10 * i, 230)))
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    versions = []
    for _ in range(2):
        op = version_publish(user=owner, dataset=dataset)
        operation_execute(op.pk)
        op.refresh_from_db()
        versions.append(op.version)
        from apps.datasets.analysis import analysis_start

        operation_execute(analysis_start(user=owner, version=op.version).pk)
    query = "&".join(f"version={v.pk}" for v in versions) + "&metric=brightness&metric=resolution&usage=all"
    # plotly.min.js is 4.6 MB: on a busy machine the first load can take longer than the default wait.
    page.goto(f"{signed_in}/datasets/{dataset.pk}/features/?{query}", timeout=60000)
    charts = page.locator("[data-testid=feature-charts] .ds-chart")
    expect(charts).to_have_count(2)
    expect(charts.first.locator(".main-svg").first).to_be_visible(timeout=60000)
    expect(charts.first.locator("g.trace.bars")).to_have_count(2)  # one histogram per version
    expect(page.locator("[data-testid=analysis-history] tbody tr")).to_have_count(2)
    page.screenshot(path=str(SHOTS / "datasets-features.png"), full_page=True)
    page.goto(f"{signed_in}/datasets/{dataset.pk}/versions/")
    page.locator("[data-testid=version-table] input[name=compare]").first.check()
    page.locator("[data-testid=version-table] input[name=compare]").nth(1).check()
    with page.expect_navigation(timeout=60000):
        page.get_by_role("button", name="Compare selected").click()
    expect(page.locator("[data-testid=compare-chart] .main-svg").first).to_be_visible(timeout=60000)
    expect(page.locator("[data-testid=compare-chart] g.trace.bars")).to_have_count(2)
    page.screenshot(path=str(SHOTS / "datasets-versions.png"), full_page=True)


def test_dataset_list_row_expands_to_locations(page, signed_in, make_dataset, run_import, root):
    put(f"{root}/src/Cat/1.jpg", image_bytes())
    put(f"{root}/src/2.jpg", image_bytes())
    first = make_dataset()
    run_import(first, f"{root}/src", "imagenet-folder")
    make_dataset(name="audio-set", data_type="audio", label_type="audio_classification", description="sounds")
    page.goto(f"{signed_in}/datasets/")
    rows = page.locator("[data-testid=dataset-row]")
    expect(rows).to_have_count(2)
    row = rows.filter(has_text="dataset-8153")
    expect(row.locator("[data-testid=progress]")).to_have_text("50.00% (1/2)")
    details = page.locator(f"#dataset-details-{first.pk}")
    expect(details).to_be_hidden()
    row.locator("[data-row-toggle]").click()
    expect(details).to_be_visible()
    expect(details).to_contain_text(first.output_location)
    page.screenshot(path=str(SHOTS / "datasets-list.png"), full_page=True)


def test_sample_browser_switches_to_a_version(page, signed_in, make_dataset, run_import, root, owner):
    """Item 46: the detail shows the current version, read-only, by default; the switcher moves to
    the working data (where import lives) and back, keeping the filters."""
    for i in range(3):
        put(f"{root}/cls/Cat/cat{i}.jpg", image_bytes(120, 90, color=(60 * i, 90, 160), fmt="JPEG"))
    dataset = make_dataset()
    run_import(dataset, f"{root}/cls", "imagenet-folder")
    op = version_publish(user=owner, dataset=dataset)
    assert operation_execute(op.pk) == "succeeded"
    put(f"{root}/cls/Dog/dog0.jpg", image_bytes(120, 90, color=(200, 200, 40), fmt="JPEG"))
    run_import(dataset, f"{root}/cls", "imagenet-folder")
    page.goto(f"{signed_in}/datasets/{dataset.pk}/")
    grid = page.locator("[data-testid=sample-grid]")
    select = page.locator("[data-testid=version-select]")
    banner = page.locator("[data-testid=version-banner]")
    import_button = page.locator(".page-actions").get_by_role("link", name="Import", exact=True)
    expect(grid.locator("li")).to_have_count(3)
    expect(select.locator("option:checked")).to_have_text("V001 — current version")
    expect(page.locator("[data-testid=switcher-current-badge]")).to_have_text("Current version")
    expect(banner).to_contain_text("Version V001")
    expect(banner).to_contain_text("read-only")
    expect(page.locator("[data-testid=status-tab-all] .tab-count")).to_have_text("3")
    expect(import_button).to_have_count(0)
    expect(page.locator("[data-testid=auto-group]")).to_have_count(0)
    # The filters narrow the version's samples in place (htmx).
    page.locator("label.ds-label-check", has_text="Dog").locator("input").check()
    expect(page.locator("[data-testid=sample-total]")).to_have_text("0 samples")
    page.locator("label.ds-label-check", has_text="Dog").locator("input").uncheck()
    expect(grid.locator("li")).to_have_count(3)
    page.screenshot(path=str(SHOTS / "datasets-detail-current-version.png"), full_page=True)

    select.select_option(label="Working data (unpublished changes)")
    expect(page).to_have_url(re.compile(r"version=working"))
    expect(grid.locator("li")).to_have_count(4)
    expect(banner).to_have_count(0)
    expect(page.locator("[data-testid=working-banner]")).to_contain_text("Working data")
    expect(page.locator("[data-testid=status-tab-all] .tab-count")).to_have_text("4")
    expect(import_button).to_be_visible()
    expect(page.locator("[data-testid=auto-group]")).to_be_visible()
    page.screenshot(path=str(SHOTS / "datasets-detail-working-data.png"), full_page=True)
    page.locator("label.ds-label-check", has_text="Dog").locator("input").check()
    expect(grid.locator("li")).to_have_count(1)
    assert "version=working" in page.url  # filtering keeps the data chosen

    select.select_option(label="V001 — current version")  # the Dog filter comes along
    expect(banner).to_contain_text("Version V001")
    expect(page.locator("[data-testid=sample-total]")).to_have_text("0 samples")
    page.locator("[data-testid=working-link]").click()
    expect(grid.locator("li")).to_have_count(4)
    expect(select.locator("option:checked")).to_have_text("Working data (unpublished changes)")


def test_text_and_table_lists_labels_history_and_add_data(page, signed_in, make_dataset, run_import, root, owner):
    """The list views of text and table datasets, the label page, the task history and the labeling
    job's "Add data" form with its storage path picker, each looked at in a screenshot."""
    from apps.labeling.services import job_create

    put(f"{root}/txt/a.txt", "今天天气很好\tpositive\nterrible service, never again\tnegative\n" + "x" * 400 + "\tpositive\n")
    text = make_dataset(name="reviews", data_type="text", label_type="text_classification")
    run_import(text, f"{root}/txt", "text-cls-combined")
    page.goto(f"{signed_in}/datasets/{text.pk}/")
    expect(page.locator("[data-testid=sample-list] tbody tr")).to_have_count(3)
    expect(page.locator("[data-testid=sample-list]")).to_contain_text("今天天气很好")
    page.screenshot(path=str(SHOTS / "datasets-text-list.png"), full_page=True)
    put(f"{root}/tbl/a.csv", "city,population,founded\nParis,2161000,0250-01-01\nLyon,513000,0043-01-01\n")
    table = make_dataset(name="cities", data_type="table", label_type="table", input_location=parse(f"{root}/tbl"),
                         output_location=parse(f"{root}/tbl-out"))
    operation_execute(table.operations.get().pk)
    page.goto(f"{signed_in}/datasets/{table.pk}/")
    row = page.locator("[data-testid=sample-list] tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.num").last).to_have_text("2")  # the CSV's rows, not an empty labels cell
    page.screenshot(path=str(SHOTS / "datasets-table-list.png"), full_page=True)
    row.get_by_role("link", name="a.csv").click()
    expect(page.locator("[data-testid=table-preview]")).to_contain_text("Paris")
    page.goto(f"{signed_in}/datasets/{text.pk}/labels/")
    expect(page.locator("[data-testid=label-table] tbody tr")).to_have_count(2)
    page.screenshot(path=str(SHOTS / "datasets-labels.png"), full_page=True)
    page.goto(f"{signed_in}/datasets/{text.pk}/operations/")
    expect(page.locator("table")).to_contain_text("Import")
    page.screenshot(path=str(SHOTS / "datasets-history.png"), full_page=True)
    job = job_create(user=owner, workspace=text.workspace, name="review-job", dataset=text,
                     labeling_type="text_classification")
    page.goto(f"{signed_in}/labeling/{job.pk}/data")
    form = page.locator("[data-testid=add-data-form]")
    expect(form.locator("[name=upload_path]")).to_be_visible()
    expect(form.locator("[data-path-picker-open]")).to_have_count(2)  # import path and upload path
    expect(page.locator("[data-testid=import-history] time").first).to_have_text(re.compile(r"^\d{4}/\d\d/\d\d "))
    page.screenshot(path=str(SHOTS / "labeling-add-data.png"), full_page=True)


def test_version_view_keeps_the_published_labels(page, signed_in, make_dataset, run_import, root, owner):
    """Item 46: after relabeling the working data, the current version still filters, counts and
    shows its samples by the labels and usage it was published with; a sample opens as published."""
    from apps.datasets.models import Label
    from apps.datasets.services import sample_annotations_replace

    for label, count in (("Cat", 2), ("Dog", 2)):
        for i in range(count):
            put(f"{root}/cls/{label}/{label.lower()}{i}.jpg", image_bytes(120, 90, color=(60 * i, 90, 160), fmt="JPEG"))
    dataset = make_dataset()
    run_import(dataset, f"{root}/cls", "imagenet-folder")
    op = version_publish(user=owner, dataset=dataset)
    assert operation_execute(op.pk) == "succeeded"
    cat0 = dataset.samples.get(file_name="cat0.jpg")
    sample_annotations_replace(user=owner, sample=cat0, expected_version=cat0.annotation_version,
                               annotations=[{"label": "Dog"}])
    dataset.samples.update(usage="TEST")
    page.goto(f"{signed_in}/datasets/{dataset.pk}/")
    banner = page.locator("[data-testid=version-banner]")
    expect(banner).to_contain_text("Labels, label status, usage and hard examples are as published")
    dog = page.locator("label.ds-label-check", has_text="Dog")
    expect(dog.locator("[data-testid=label-count]")).to_have_text("2")
    dog.locator("input").check()  # htmx: the grid narrows in place, by the published labels
    expect(page.locator("[data-testid=sample-total]")).to_have_text("2 samples")
    grid = page.locator("[data-testid=sample-grid]")
    expect(grid.locator("li", has_text="cat0.jpg")).to_have_count(0)
    dog.locator("input").uncheck()
    expect(page.locator("[data-testid=sample-total]")).to_have_text("4 samples")
    card = grid.locator("li", has_text="cat0.jpg")
    expect(card.locator("[data-testid=published-labels]")).to_have_text("Cat")
    expect(grid.get_by_text("TEST")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "datasets-detail-published-values.png"), full_page=True)
    card.locator("a.ds-card-link").click()
    expect(page.locator("[data-testid=version-banner]")).to_contain_text(
        "Label status, usage and annotations are as published.")
    expect(page.locator("[data-testid=annotation-list]")).to_contain_text("Cat")
    expect(page.locator("[data-testid=annotation-list]")).not_to_contain_text("Dog")
    page.screenshot(path=str(SHOTS / "datasets-sample-published.png"), full_page=True)
    page.locator("[data-testid=working-link]").click()
    expect(page.locator("[data-testid=annotation-list]")).to_contain_text("Dog")
    expect(page.locator("[data-testid=sample-status]")).to_contain_text("TEST")
    assert Label.objects.filter(dataset=dataset).count() == 2
