"""The OpenAPI schema documents paginated lists exactly: real list responses of the accounts,
datasets, labeling, training, deployment, runtime and storage APIs validate against the
generated schema (page wrapper, item fields, no undocumented keys), and no GET list that pages
its rows is documented as a bare array.
"""
from __future__ import annotations

import copy
import inspect
import io
import re

import pytest
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from apps.core.paths import parse
from apps.core.storage import get_storage
from tests.deployment.packages import FIXTURES

PAGES = re.compile(r"paginat|_page\(")


@pytest.fixture(scope="module")
def spec():
    return SchemaGenerator().get_schema(request=None, public=True)


def _closed(node):
    """The schema with every object closed (`additionalProperties: false` where it says nothing),
    so an undocumented key in a response fails validation instead of passing silently."""
    if isinstance(node, dict):
        node = {key: _closed(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_closed(value) for value in node]
    return node


def _response_schema(spec, path: str) -> dict:
    return spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def schema_mismatches(spec, path: str, body) -> list[str]:
    """Where `body` breaks the documented 200 response of GET `path` (empty when it matches)."""
    root = {"components": _closed(copy.deepcopy(spec["components"])), **_response_schema(spec, path)}
    errors = sorted(OAS30ReadValidator(root, format_checker=oas30_format_checker).iter_errors(body), key=str)
    return [f"{path} {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_paginated_lists_document_the_wrapper_and_page_parameters(spec):
    for name in ("PaginatedDatasetList", "PaginatedTrainingJobList", "PaginatedAiAppList", "PaginatedWorkspaceList"):
        wrapper = spec["components"]["schemas"][name]
        assert wrapper["required"] == ["count", "next", "previous", "results"]
        assert wrapper["properties"]["results"]["type"] == "array"
    for path in ("/api/v1/datasets/", "/api/v1/training/jobs/", "/api/v1/deployment/models/"):
        params = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"page", "page_size"} <= params, path
    objects = spec["components"]["schemas"]["PaginatedEntryList"]
    assert objects["required"] == ["path", "parent", "count", "next", "previous", "results"]


def test_no_get_list_that_pages_is_documented_as_a_bare_array(spec):
    bare = []
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        content = (get or {}).get("responses", {}).get("200", {}).get("content", {})
        if content.get("application/json", {}).get("schema", {}).get("type") == "array":
            bare.append(path)
    assert "/api/v1/datasets/{id}/labels/" in bare  # a dataset's labels are few and unpaged
    for path in bare:
        view = resolve(re.sub(r"\{[^}]+\}", "1", path)).func.view_class
        # Every paging view calls a paginator (directly or through its app's _page/_paginate helper);
        # such a view must declare pagination_class so the schema shows the wrapper.
        assert not PAGES.search(inspect.getsource(view.get)), f"{path} pages its rows but is documented as an array"


def _put(uri: str, content: str) -> None:
    get_storage().save(parse(uri), io.BytesIO(content.encode()))


def test_real_list_responses_validate_against_the_schema(spec, api, owner, workspace):
    from apps.datasets.services import dataset_create
    from apps.deployment import services as deployment
    from apps.labeling.services import job_create
    from apps.runtime.models import Flavor, Pool
    from apps.storage.services import bucket_create

    bucket_create(user=owner, workspace=workspace, name="schema-data")
    _put("storage://schema-data/code/train.py", "print('hi')\n")
    # The deployment tests' echo package: a model/ folder the import accepts.
    package = FIXTURES / "echo"
    for file in sorted(p for p in package.rglob("*") if p.is_file()):
        _put(f"storage://schema-data/echo/{file.relative_to(package).as_posix()}", file.read_text())
    dataset = dataset_create(user=owner, workspace=workspace, name="flowers", data_type="image",
                   label_type="image_classification", input_location=parse("storage://schema-data/flowers-in"),
                   output_location=parse("storage://schema-data/flowers-out"))
    job_create(user=owner, workspace=workspace, name="flowers-labeling", dataset=dataset,
               labeling_type="image_classification", labels=[{"name": "rose", "color": "#e6194b"}])
    pool = Pool.objects.get_or_create(name="local", defaults={"job_types": ["training", "inference"]})[0]
    Flavor.objects.get_or_create(name="cpu-1c-1g", defaults={"cpus": 1, "memory_mb": 1024})[0].pools.add(pool)
    algorithm = api.post("/api/v1/training/algorithms/", {
        "name": "algo", "code_dir": "storage://schema-data/code", "boot_file": "train.py",
        "hyperparameters": [{"name": "lr", "type": "Float", "default": 0.01, "constraint": None,
                             "required": False, "description": "learning rate"}]}, format="json")
    assert algorithm.status_code == 201, algorithm.json()
    job = api.post("/api/v1/training/jobs/", {
        "name": "job-1", "pool": "local", "flavor": "cpu-1c-1g", "experiment": "new", "experiment_name": "exp-1",
        "algorithm": algorithm.json()["id"], "code_dir": "storage://schema-data/code", "boot_file": "train.py"},
        format="json")
    assert job.status_code == 201, job.json()
    version = deployment.ai_app_create(user=owner, workspace=workspace, name="echo",
                                       source_uri="storage://schema-data/echo", deploy_types=["online"])
    assert api.post("/api/v1/tokens/", {"name": "ci"}, format="json").status_code == 201

    lists = {
        "/api/v1/workspaces/": "/api/v1/workspaces/",
        "/api/v1/workspaces/{workspace_pk}/members/": f"/api/v1/workspaces/{workspace.pk}/members/",
        "/api/v1/tokens/": "/api/v1/tokens/",
        "/api/v1/datasets/": "/api/v1/datasets/",
        "/api/v1/training/algorithms/": "/api/v1/training/algorithms/",
        "/api/v1/training/jobs/": "/api/v1/training/jobs/",
        "/api/v1/training/experiments/": "/api/v1/training/experiments/",
        "/api/v1/deployment/models/": "/api/v1/deployment/models/",
        "/api/v1/deployment/models/{id}/versions/": f"/api/v1/deployment/models/{version.app_id}/versions/",
        "/api/v1/deployment/versions/{id}/events/": f"/api/v1/deployment/versions/{version.pk}/events/",
        "/api/v1/deployment/services/": "/api/v1/deployment/services/",
        "/api/v1/labeling/jobs/": "/api/v1/labeling/jobs/",
        "/api/v1/runtime/pools/": "/api/v1/runtime/pools/",
        "/api/v1/runtime/flavors/": "/api/v1/runtime/flavors/",
        "/api/v1/storage/buckets/": "/api/v1/storage/buckets/",
        "/api/v1/storage/objects/": "/api/v1/storage/objects/?path=storage://schema-data",
    }
    mismatches = []
    for documented, url in lists.items():
        response = api.get(url)
        assert response.status_code == 200, (url, response.json())
        body = response.json()
        if documented != "/api/v1/deployment/services/":  # no service was deployed: an empty page
            assert body["count"] >= 1 and body["results"], (url, body)
        mismatches += schema_mismatches(spec, documented, body)
    assert mismatches == [], "\n".join(mismatches)
