"""List tables of the Models and Services pages (rendered by components/table.html)."""
from __future__ import annotations

from apps.core.tables import ChoiceFilter, Column, Table

from .choices import ServiceStatus


class AiAppTable(Table):
    """AI applications: the columns of seed-06 Table 8-9."""

    columns = [
        Column("name", "AI application", sort="name", cell="deployment/_app_name_cell.html"),
        Column("latest_version", "Latest", cell="deployment/_app_latest_cell.html"),
        Column("latest_status", "Status", cell="deployment/_app_status_cell.html"),
        Column("latest_deploy_types", "Deploy types", cell="deployment/_deploy_types_cell.html"),
        Column("version_count", "Versions", sort="version_count", classes="num"),
        Column("request_mode", "Requests", cell="deployment/_request_mode_cell.html"),
        Column("created_at", "Created", sort="created_at", cell="deployment/_datetime_cell.html", classes="nowrap"),
        Column("description", "Description", cell="deployment/_description_cell.html"),
        Column("pk", "", cell="deployment/_app_actions_cell.html", classes="actions"),
    ]
    search_fields = ["name", "description"]
    search_placeholder = "Search AI applications"
    default_sort = "-created_at"
    empty_title = "No AI applications yet"
    empty_text = "Create one from a model package in storage, a training job or a custom image."
    caption = "AI applications"


class ServiceTable(Table):
    columns = [
        Column("id", "", cell="deployment/_service_select_cell.html", classes="select"),
        Column("name", "Name", sort="name", cell="deployment/_service_name_cell.html"),
        Column("status", "Status", sort="status", cell="deployment/_service_status_cell.html"),
        Column("kind", "AI applications", cell="deployment/_service_versions_cell.html"),
        Column("created_at", "Created", sort="created_at", cell="deployment/_datetime_cell.html", classes="nowrap"),
        Column("description", "Description", cell="deployment/_description_cell.html"),
        Column("pk", "Operations", cell="deployment/_service_actions_cell.html", classes="actions"),
    ]
    search_fields = ["name", "description"]
    search_placeholder = "Search services"
    filters = [ChoiceFilter("status", "Status", lookup="status", choices=ServiceStatus.choices)]
    default_sort = "-created_at"
    empty_title = "No services yet"
    empty_text = "Deploy an AI application version to call it over HTTP, or run it over a folder as a batch."
    caption = "Services"

