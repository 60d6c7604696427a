"""The job form's dataset-version picker (datasets item 48): the JSON endpoint behind its filters,
what the form boots with, and the constraint check that agrees with it (CarbonData = Parquet)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.accounts.selectors import SESSION_KEY
from apps.core.choices import Role
from apps.datasets.choices import VersionStatus
from apps.datasets.models import Dataset, DatasetVersion

pytestmark = pytest.mark.django_db

URL = "/training/jobs/dataset-versions"


def make_version(workspace, dataset_name, name, *, label_type="image_classification", format="default",
                 split=False, ratio=None, samples=10, status=VersionStatus.NORMAL):
    dataset, _ = Dataset.objects.get_or_create(
        workspace=workspace, name=dataset_name,
        defaults={"data_type": "table" if label_type == "table" else "image", "label_type": label_type,
                  "input_location": f"storage://data/{dataset_name}/in",
                  "output_location": f"storage://data/{dataset_name}/out"})
    return DatasetVersion.objects.create(dataset=dataset, name=name, label_type=label_type, format=format,
                                         split_enabled=split, train_ratio=ratio, sample_count=samples,
                                         status=status, storage_uri=f"storage://data/{dataset_name}/{name}")


@pytest.fixture
def versions(owner, workspace, outsider):
    from apps.accounts.services import workspace_create

    made = {
        "flowers-split": make_version(workspace, "flowers", "V002", split=True, ratio=0.8, samples=120),
        "flowers-plain": make_version(workspace, "flowers", "V001", samples=1),
        "boxes": make_version(workspace, "boxes", "V001", label_type="object_detection", split=True, ratio=0.75),
        "sales-csv": make_version(workspace, "sales", "V001", label_type="table", format="csv", samples=500),
        "sales-parquet": make_version(workspace, "sales", "V002", label_type="table", format="parquet", samples=500),
    }
    # Never offered: a version still publishing, one of the outsider's workspace, and one of another
    # workspace the owner also belongs to (the job is created in the current workspace).
    make_version(workspace, "flowers", "V003", status=VersionStatus.PUBLISHING)
    make_version(outsider.default_workspace, "secret", "V001")
    make_version(workspace_create(user=owner, name="side project"), "side", "V001")
    return made


def listed(client, **params) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return [v["label"] for v in response.json()["versions"]]


def test_filters_by_label_type_format_and_split(client, owner, versions):
    client.force_login(owner)
    assert listed(client) == ["boxes / V001", "flowers / V001", "flowers / V002", "sales / V002", "sales / V001"]
    assert listed(client, label_type="image_classification") == ["flowers / V001", "flowers / V002"]
    assert listed(client, format="parquet") == ["sales / V002"]
    assert listed(client, format="csv") == ["sales / V001"]
    assert listed(client, format=["default", "parquet"]) == ["boxes / V001", "flowers / V001", "flowers / V002",
                                                             "sales / V002"]
    assert listed(client, split="split") == ["boxes / V001", "flowers / V002"]
    assert listed(client, split="unsplit", format="default") == ["flowers / V001"]
    assert listed(client, label_type="table", split="split") == []
    assert listed(client, label_type="audio_content") == []


def test_options_say_what_each_version_is(client, owner, versions):
    client.force_login(owner)
    body = client.get(URL, {"label_type": "image_classification"}).json()
    assert body["truncated"] is False and body["limit"] == 200
    assert body["versions"] == [
        {"uri": "storage://data/flowers/V001", "label": "flowers / V001",
         "text": "flowers / V001 · image_classification · Default · unsplit · 1 sample",
         "label_type": "image_classification", "format": "default", "split": False, "train_ratio": None,
         "sample_count": 1},
        {"uri": "storage://data/flowers/V002", "label": "flowers / V002",
         "text": "flowers / V002 · image_classification · Default · split 0.8 · 120 samples",
         "label_type": "image_classification", "format": "default", "split": True, "train_ratio": 0.8,
         "sample_count": 120}]
    assert [v["text"] for v in client.get(URL, {"label_type": "table"}).json()["versions"]] == [
        "sales / V002 · table · Parquet · unsplit · 500 samples", "sales / V001 · table · CSV · unsplit · 500 samples"]


def test_bad_filters_answer_400_in_words(client, owner, versions):
    client.force_login(owner)
    cases = [({"format": "carbondata"}, 'Unknown format "carbondata"; choose Default, CSV or Parquet.'),
             ({"split": "both"}, 'Unknown split filter "both"; choose split, unsplit or any.'),
             ({"label_type": "x" * 65}, "A label type has at most 64 characters.")]
    for params, message in cases:
        response = client.get(URL, params)
        assert (response.status_code, response.json()) == (400, {"error": message})


def test_a_cut_list_says_so(client, owner, versions, monkeypatch):
    monkeypatch.setattr("apps.training.dataset_picker.PICKER_LIMIT", 2)
    client.force_login(owner)
    body = client.get(URL).json()
    assert (body["truncated"], body["limit"], len(body["versions"])) == (True, 2, 2)
    narrowed = client.get(URL, {"label_type": "table"}).json()
    assert (narrowed["truncated"], len(narrowed["versions"])) == (False, 2)


def test_workspace_isolation_and_permissions(client, owner, teammate, outsider, workspace, versions):
    from apps.accounts.services import membership_set

    client.force_login(outsider)  # their own workspace: only their version
    assert listed(client) == ["secret / V001"]
    client.force_login(teammate)  # a developer of the owner's workspace, working in their own default one
    assert listed(client) == []
    session = client.session
    session[SESSION_KEY] = workspace.pk
    session.save()
    assert len(listed(client)) == 5
    membership_set(actor=owner, workspace=workspace, user=teammate, role=Role.VIEWER)
    assert client.get(URL).status_code == 403  # viewers cannot create jobs, so they get no picker either
    client.logout()
    assert client.get(URL).status_code == 302


def test_query_count_does_not_grow_with_versions(client, owner, workspace, versions,
                                                 django_assert_max_num_queries):
    for i in range(30):
        make_version(workspace, f"bulk{i}", "V001")
    client.force_login(owner)
    with django_assert_max_num_queries(8):
        assert len(client.get(URL).json()["versions"]) == 35


def test_the_form_boots_with_the_label_types_present(client, owner, outsider, versions):
    client.force_login(owner)
    response = client.get("/training/jobs/new")
    editor = response.context["editor"]
    assert editor["dataset_picker"] == {
        "url": URL, "limit": 200,
        "label_types": [["image_classification", "Image classification"], ["object_detection", "Object detection"],
                        ["table", "Table"]],
        "formats": [["default", "Default"], ["csv", "CSV"], ["parquet", "Parquet"]],
        "splits": [["split", "Split only"], ["unsplit", "Unsplit only"]],
        "constraint_formats": {"Default": "default", "CarbonData": "parquet"},
        "constraint_splits": {"split_only": "split", "unsplit_only": "unsplit"}}
    assert "secret" not in response.content.decode() and "side / V001" not in response.content.decode()
    client.force_login(outsider)
    assert client.get("/training/jobs/new").context["editor"]["dataset_picker"]["label_types"] == [
        ["image_classification", "Image classification"]]


def test_constraint_check_agrees_with_the_picker(owner, versions):
    """A CarbonData constraint is met by a Parquet version (Atelier's columnar format), not by CSV."""
    from apps.training.job_options import dataset_inputs_check

    definitions = [{"name": "data_url", "constraint": {"source": "dataset", "label_type": "table",
                                                       "data_format": ["CarbonData"], "split": "any"}}]
    dataset_inputs_check(owner, definitions, [{"name": "data_url", "uri": "storage://data/sales/V002"}])
    with pytest.raises(ValidationError) as exc:
        dataset_inputs_check(owner, definitions, [{"name": "data_url", "uri": "storage://data/sales/V001"}])
    assert exc.value.message_dict["inputs"] == [
        "data_url: choose a published dataset version (table, CarbonData); storage://data/sales/V001 is not one."]
    both = [{**definitions[0], "constraint": {**definitions[0]["constraint"], "label_type": "",
                                              "data_format": ["Default", "CarbonData"]}}]
    for uri in ("storage://data/sales/V002", "storage://data/flowers/V001"):
        dataset_inputs_check(owner, both, [{"name": "data_url", "uri": uri}])
