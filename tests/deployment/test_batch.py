"""Batch services without a worker: the generated CSV mapping, the runner over CSV rows and a
resolved manifest (in-process), and the refusals of the deploy (ModelArts.3551 / 3567, input kinds)."""
from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.deployment.batch import batch_service_create, mapping_default
from apps.deployment.models import InferenceService
from apps.runtime.models import Run
from tests.deployment.conftest import make_version
from tests.deployment.packages import sklearn_package

pytestmark = pytest.mark.django_db

from atelier_modelserver import batch as runner  # noqa: E402  (path set up by packages.py)


def test_the_mapping_gives_each_field_a_column(iris_uri, owner, workspace):
    version = make_version(owner, workspace, iris_uri, name="iris", deploy_types=["batch"])
    mapping = mapping_default(version.api)
    fields = mapping["properties"]["data"]["properties"]["req_data"]["items"]["properties"]
    assert {name: spec["index"] for name, spec in fields.items()} == {
        "sepal_length": 0, "sepal_width": 1, "petal_length": 2, "petal_width": 3}
    assert runner.mapping_apply(mapping, ["5.1", "3.5", "1.4", "0.2"]) == {
        "data": {"req_data": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}}
    fields["petal_width"]["index"] = 9  # out of range: the field is left out, as documented
    assert "petal_width" not in runner.mapping_apply(mapping, ["1", "2", "3", "4"])["data"]["req_data"][0]


def test_runner_over_csv_rows_and_a_failing_file(tmp_path, iris_uri, owner, workspace):
    version = make_version(owner, workspace, iris_uri, name="iris", deploy_types=["batch"])
    package = sklearn_package(tmp_path / "pkg")
    data = tmp_path / "in"
    data.mkdir()
    (data / "flowers.csv").write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    (data / "broken.csv").write_text("5.1,not-a-number,1.4,0.2\n")
    out = tmp_path / "out"
    code = runner.main(["--input", str(data), "--input-uri", "storage://data/in", "--output", str(out),
                        "--output-uri", "storage://data/out", "--task-id", "t1", "--package", str(package),
                        "--name", "iris", "--api", json.dumps(version.api),
                        "--mapping", json.dumps(mapping_default(version.api))])
    assert code == 0
    lines = [json.loads(line) for line in (out / "infer-result-t1.manifest").read_text().splitlines()]
    assert lines == [
        {"source": "storage://data/in/broken.csv", "result": "FAILED",
         "error_message": "row 1: column 1 value 'not-a-number' is not number"},
        {"source": "storage://data/in/flowers.csv", "result": "SUCCESSFUL",
         "inference-loc": "storage://data/out/infer-result-t1/flowers.csv_result.txt"},
    ]
    rows = [json.loads(line) for line in (out / "infer-result-t1" / "flowers.csv_result.txt").read_text().splitlines()]
    assert [r["data"]["resp_data"][0]["predict_result"] for r in rows] == ["setosa", "virginica"]
    assert not (out / "infer-result-t1" / "broken.csv_result.txt").exists()


def test_runner_splits_large_manifests(tmp_path, monkeypatch):
    from tests.deployment.packages import fixture_package

    package = fixture_package("echo", tmp_path)
    data = tmp_path / "in"
    data.mkdir()
    for n in range(5):
        (data / f"r{n}.json").write_text(json.dumps({"data": {"req_data": [{"x": n, "y": 1}]}}))
    monkeypatch.setattr(runner, "MANIFEST_SPLIT_LINES", 2)
    out = tmp_path / "out"
    runner.main(["--input", str(data), "--input-uri", "storage://d/in", "--output", str(out), "--output-uri",
                 "storage://d/out", "--task-id", "t2", "--package", str(package), "--name", "echo",
                 "--api", json.dumps({"request": {"Content-type": "application/json"}})])
    assert sorted(p.name for p in out.glob("*.manifest")) == ["infer-result-t2_1.manifest", "infer-result-t2_2.manifest",
                                                              "infer-result-t2_3.manifest"]
    result = json.loads((out / "infer-result-t2" / "r3.json_result.txt").read_text())
    assert result["data"]["resp_data"][0]["sum"] == 4


@pytest.fixture
def data_bucket(owner, workspace):
    from apps.storage.services import bucket_create

    bucket_create(user=owner, workspace=workspace, name="data")
    storage = get_storage()
    storage.save(StoragePath("data", "in/a.csv"), io.BytesIO(b"1,2,3,4\n"))
    storage.save(StoragePath("data", "notes.txt"), io.BytesIO(b"x"))
    storage.mkdir(StoragePath("data", "out"))
    storage.mkdir(StoragePath("data", "in/sub"))
    return "data"


def test_deploy_refusals(owner, workspace, iris_uri, data_bucket, cpu_flavor, local_pool, outsider):
    version = make_version(owner, workspace, iris_uri, name="iris", deploy_types=["batch"])
    online_only = make_version(owner, workspace, iris_uri, app=version.app, deploy_types=["online"])
    base = dict(user=owner, workspace=workspace, name="b", model_version=version, flavor=cpu_flavor, pool=local_pool)
    cases = [
        (dict(input_uri="storage://data/missing", output_uri="storage://data/out"), "input_uri",
         "ModelArts.3551: storage path storage://data/missing does not exist."),
        (dict(input_uri="storage://data/notes.txt", output_uri="storage://data/out"), "input_uri",
         "The input is a folder or a .manifest file."),
        (dict(input_uri="storage://data/in", output_uri="storage://data/nope"), "output_uri",
         "ModelArts.3551: storage path storage://data/nope does not exist."),
        (dict(input_uri="storage://data/in", output_uri="storage://data/in/sub"), "output_uri",
         "Choose an output folder outside the input folder."),
        (dict(input_uri="storage://data/in", output_uri="storage://data/out", model_version=online_only), "versions",
         "Version 1: iris 0.0.2 was not created for batch services."),
    ]
    for overrides, field, message in cases:
        with pytest.raises(ValidationError) as caught:
            batch_service_create(**{**base, **overrides})
        assert caught.value.message_dict[field] == [message], overrides
    assert not InferenceService.objects.exists() and not Run.objects.exists()


def test_a_manifest_is_resolved_into_staged_folders(owner, workspace, iris_uri, data_bucket, cpu_flavor, local_pool):
    version = make_version(owner, workspace, iris_uri, name="iris", deploy_types=["batch"])
    storage = get_storage()
    storage.save(StoragePath("data", "list.manifest"), io.BytesIO(
        b'{"source": "storage://data/in/a.csv"}\n{"source": "obs://data/notes.txt"}\n'
        b'{"source": "https://files.example.test/x.csv?sig=1"}\n'))
    service = batch_service_create(user=owner, workspace=workspace, name="m", model_version=version,
                                   input_uri="storage://data/list.manifest", output_uri="storage://data/out",
                                   flavor=cpu_flavor, pool=local_pool, instance_count=2)
    runs = list(Run.objects.filter(service_instance__service=service).order_by("pk"))
    assert len(runs) == 2 and service.input_kind == "manifest"
    inputs = {item["name"]: item["uri"] for item in runs[0].inputs}
    # A folder is staged whole; a file at the bucket root (next to the output) on its own.
    assert inputs["src_0"] == "storage://data/in" and inputs["src_1"] == "storage://data/notes.txt"
    sources = json.loads(storage.open(StoragePath("data", f"atelier-batch/{service.pk}/{service.task_id}/"
                                                          "sources.json")).read())
    assert sources == [
        {"source": "storage://data/in/a.csv", "local": "src_0/a.csv", "name": "a.csv"},
        {"source": "obs://data/notes.txt", "local": "src_1/notes.txt", "name": "notes.txt"},
        {"source": "https://files.example.test/x.csv?sig=1", "local": "https://files.example.test/x.csv?sig=1",
         "name": "x.csv"},
    ]
    assert runs[1].command[runs[1].command.index("--shard") + 1] == "1"
    assert runs[0].outputs == [{"name": "result", "uri": "storage://data/out", "preload": False}]
