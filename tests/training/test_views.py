"""Training list pages: the tag filter renders its options and narrows the rows."""
from __future__ import annotations

import pytest

from apps.training.models import Algorithm

pytestmark = pytest.mark.django_db


def test_algorithm_list_page_filters_by_tag(client, owner, workspace):
    Algorithm.objects.create(workspace=workspace, name="tagged", boot_mode="custom", boot_command="python a.py",
                             tags={"team": "vision"})
    Algorithm.objects.create(workspace=workspace, name="plain", boot_mode="custom", boot_command="python a.py")
    client.force_login(owner)
    page = client.get("/training/algorithms/").content.decode()
    assert '<option value="team=vision"' in page
    assert "tagged" in page and "plain" in page
    filtered = client.get("/training/algorithms/", {"tag": "team=vision"}).content.decode()
    assert "tagged" in filtered and ">plain<" not in filtered
    refused = client.get("/training/algorithms/", {"tag": "nonsense"})
    assert refused.status_code == 200
    assert "is not a tag; write key=value" in refused.content.decode()
