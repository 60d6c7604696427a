"""List tables of the Data section (rendered by components/table.html)."""
from __future__ import annotations

from apps.core.tables import ChoiceFilter, Column, Table

from .choices import DataType, LabelType, OperationKind, OperationStatus


class DatasetTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell="datasets/_dataset_name_cell.html"),
        Column("current_version.name", "Current version"),
        Column("progress_text", "Labeling progress", cell="datasets/_progress_cell.html"),
        Column("created_at", "Created", sort="created_at", cell="datasets/_datetime_cell.html"),
        Column("description", "Description", classes="truncate"),
        Column("actions", "Actions", classes="actions", cell="datasets/_dataset_actions_cell.html"),
    ]
    search_fields = ["name", "description", "uid"]
    search_placeholder = "Search datasets by name, ID or description"
    filters = [
        ChoiceFilter("data_type", "Data type", lookup="data_type", choices=DataType.choices),
        ChoiceFilter("label_type", "Label type", lookup="label_type", choices=LabelType.choices),
    ]
    default_sort = "-created_at"
    row_template = "datasets/_dataset_row.html"
    empty_title = "No datasets yet"
    empty_text = "Create a dataset from a storage folder, then import, label, publish and export it."
    caption = "Datasets"


class OperationTable(Table):
    columns = [
        Column("uid", "Task ID", cell="datasets/_operation_id_cell.html"),
        Column("kind", "Kind", sort="kind", cell="datasets/_operation_kind_cell.html", classes="ds-kind-cell"),
        Column("version.name", "Version"),
        Column("created_at", "Created", sort="created_at", cell="datasets/_datetime_cell.html"),
        Column("run_time", "Run time", classes="num nowrap"),  # values read hh:mm:ss (spec item 36)
        Column("progress", "Progress", cell="datasets/_operation_progress_cell.html"),
        Column("error_count", "Errors", sort="error_count", classes="num"),
        Column("status", "Status", sort="status", cell="datasets/_operation_status_cell.html", classes="nowrap"),
    ]
    search_fields = ["uid"]
    search_placeholder = "Search by task ID"
    filters = [
        ChoiceFilter("kind", "Kind", lookup="kind", choices=OperationKind.choices),
        ChoiceFilter("status", "Status", lookup="status", choices=OperationStatus.choices),
    ]
    default_sort = "-created_at"
    empty_title = "No operations yet"
    empty_text = "Imports, syncs, publishing, exports and analyses show up here with their progress and errors."
    caption = "Task history"
