"""The job form's dataset-version picker in a real browser (datasets item 48): a free input's
filters narrow the versions, picking one fills the storage path, and an algorithm's input
constraint presets and locks the filters. Screenshots go to $ATELIER_SCREENSHOTS."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.datasets.choices import VersionStatus
from apps.training.models import Algorithm

from .test_dataset_picker import make_version

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))
PLACEHOLDER = "— or a dataset version —"
FLOWERS_SPLIT = "flowers / V002 · image_classification · Default · split 0.8 · 120 samples"
FLOWERS_PLAIN = "flowers / V001 · image_classification · Default · unsplit · 1 sample"
BOXES = "boxes / V001 · object_detection · Default · split 0.75 · 10 samples"
SALES_CSV = "sales / V001 · table · CSV · unsplit · 500 samples"
SALES_PARQUET = "sales / V002 · table · Parquet · unsplit · 500 samples"


def test_filters_narrow_the_versions_and_the_constraint_locks_them(page, asgi_server, login, owner, workspace,
                                                                    outsider):
    make_version(workspace, "flowers", "V002", split=True, ratio=0.8, samples=120)
    make_version(workspace, "flowers", "V001", samples=1)
    make_version(workspace, "boxes", "V001", label_type="object_detection", split=True, ratio=0.75)
    make_version(workspace, "sales", "V001", label_type="table", format="csv", samples=500)
    make_version(workspace, "sales", "V002", label_type="table", format="parquet", samples=500)
    make_version(workspace, "flowers", "V003", status=VersionStatus.PUBLISHING)
    make_version(outsider.default_workspace, "secret", "V001")
    algorithm = Algorithm.objects.create(
        workspace=workspace, name="classifier", boot_mode="preset", engine="python", code_dir="storage://data/code",
        boot_file="train.py", inputs=[{"name": "images", "description": "", "acquisition": "hyperparameter",
                                       "constraint": {"source": "dataset", "label_type": "image_classification",
                                                      "data_format": ["Default"], "split": "split_only"}}])
    columnar = Algorithm.objects.create(
        workspace=workspace, name="columnar", boot_mode="preset", engine="python", code_dir="storage://data/code",
        boot_file="train.py", inputs=[{"name": "rows", "description": "", "acquisition": "hyperparameter",
                                       "constraint": {"source": "dataset", "label_type": "",
                                                      "data_format": ["Default", "CarbonData"], "split": "any"}}])
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/training/jobs/new")

    # A free input (no algorithm): the picker with its three filters, every published version of
    # this workspace, none of another workspace and none still publishing.
    page.click("[data-testid=inputs-editor] [data-add=inputs]")
    row = page.locator("[data-testid=inputs-editor] .editor-row").first
    row.locator("[data-role=name]").fill("data_url")
    versions = row.locator("[data-role=dataset] option")
    expect(versions).to_have_text([PLACEHOLDER, BOXES, FLOWERS_PLAIN, FLOWERS_SPLIT, SALES_PARQUET, SALES_CSV])
    labels = row.get_by_label("channel label type filter")
    formats = row.get_by_label("channel format filter")
    splits = row.get_by_label("channel split filter")
    expect(labels.locator("option")).to_have_text(["Any label type", "Image classification", "Object detection",
                                                   "Table"])
    expect(formats.locator("option")).to_have_text(["Any format", "Default", "CSV", "Parquet"])
    expect(splits.locator("option")).to_have_text(["Any split", "Split only", "Unsplit only"])
    for select in (labels, formats, splits):
        expect(select).to_be_enabled()
    expect(row.locator("[data-role=dataset-note]")).to_have_text("5 versions match.")

    formats.select_option(label="Parquet")
    expect(versions).to_have_text([PLACEHOLDER, SALES_PARQUET])
    formats.select_option(label="CSV")
    expect(versions).to_have_text([PLACEHOLDER, SALES_CSV])
    formats.select_option(label="Any format")
    splits.select_option(label="Split only")
    expect(versions).to_have_text([PLACEHOLDER, BOXES, FLOWERS_SPLIT])
    labels.select_option(label="Image classification")
    expect(versions).to_have_text([PLACEHOLDER, FLOWERS_SPLIT])
    expect(row.locator("[data-role=dataset-note]")).to_have_text("1 version matches.")
    labels.select_option(label="Table")
    expect(versions).to_have_text(["no matching published version"])
    splits.select_option(label="Unsplit only")
    expect(versions).to_have_text([PLACEHOLDER, SALES_PARQUET, SALES_CSV])

    # Picking a version fills the storage path; the channel is what the form submits.
    row.locator("[data-role=dataset]").select_option(label=SALES_CSV)
    expect(row.locator("[data-role=uri]")).to_have_value("storage://data/sales/V001")
    assert json.loads(page.locator("input[name=inputs]").input_value()) == [
        {"name": "data_url", "uri": "storage://data/sales/V001", "acquisition": "hyperparameter"}]
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "training-job-form-dataset-picker.png"), full_page=True)
    page.locator("[data-testid=inputs-editor]").screenshot(path=str(SHOTS / "training-job-form-dataset-filters.png"))

    # An algorithm whose input requires a split, Default-format image-classification version: those
    # filters are preset and locked, saying why, and only the matching version is offered.
    page.select_option("select[name=algorithm]", str(algorithm.pk))
    row = page.locator("[data-testid=inputs-editor] [data-channel=images]")
    versions = row.locator("[data-role=dataset] option")
    expect(versions).to_have_text([PLACEHOLDER, FLOWERS_SPLIT])
    expect(row.locator("[data-role=dataset-note]")).to_have_text(
        "1 version matches. Greyed filters are set by the algorithm's input constraint.")
    for name, value in (("label type", "image_classification"), ("format", "default"), ("split", "split")):
        select = row.get_by_label(f"images {name} filter")
        expect(select).to_be_disabled()
        expect(select).to_have_value(value)
        expect(select).to_have_attribute("title", "Set by the algorithm's input constraint")
    row.locator("[data-role=dataset]").select_option(label=FLOWERS_SPLIT)
    expect(row.locator("[data-role=uri]")).to_have_value("storage://data/flowers/V002")
    page.locator("[data-testid=inputs-editor]").screenshot(
        path=str(SHOTS / "training-job-form-dataset-filters-locked.png"))

    # Default or CarbonData (= Parquet): the format filter stays free between those two, CSV is not offered.
    page.select_option("select[name=algorithm]", str(columnar.pk))
    row = page.locator("[data-testid=inputs-editor] [data-channel=rows]")
    versions = row.locator("[data-role=dataset] option")
    expect(versions).to_have_text([PLACEHOLDER, BOXES, FLOWERS_PLAIN, FLOWERS_SPLIT, SALES_PARQUET])
    formats = row.get_by_label("rows format filter")
    expect(formats).to_be_enabled()
    assert formats.locator("option").evaluate_all("options => options.filter(o => o.disabled).map(o => o.text)") == [
        "CSV"]
    expect(row.get_by_label("rows label type filter")).to_be_enabled()
    formats.select_option(label="Parquet")
    expect(versions).to_have_text([PLACEHOLDER, SALES_PARQUET])


def test_a_cut_list_and_a_refused_filter_are_said(page, asgi_server, login, owner, workspace):
    """The answer's own words reach the user: "showing the first N" when the server cut the list, and
    the reason when it refused a filter (both answers rewritten in flight: the cap is 200 versions)."""
    make_version(workspace, "flowers", "V001")

    def rewrite(route):
        if "split=split" in route.request.url:
            route.fulfill(status=400, json={"error": 'Unknown split filter "split"; choose split, unsplit or any.'})
        else:
            route.fulfill(json={**route.fetch().json(), "truncated": True})

    page.route("**/training/jobs/dataset-versions?*", rewrite)
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/training/jobs/new")
    page.click("[data-testid=inputs-editor] [data-add=inputs]")
    row = page.locator("[data-testid=inputs-editor] .editor-row").first
    note = row.locator("[data-role=dataset-note]")
    expect(note).to_have_text("Showing the first 200 versions; narrow the filters to find the others.")
    row.get_by_label("channel split filter").select_option(label="Split only")
    expect(note).to_have_text('Unknown split filter "split"; choose split, unsplit or any.')
    expect(note).to_have_class("field-error")
    expect(row.locator("[data-role=dataset] option")).to_have_text(["no version listed"])

