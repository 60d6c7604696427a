"""The job list table (item 9): name with team badge, dataset, progress, to-be-confirmed count,
created time, remarks, description and the row operations."""
from apps.core.tables import ChoiceFilter, Column, Table
from apps.datasets.choices import LabelType

from .choices import LABELING_TYPES


class JobTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell="labeling/_job_name_cell.html"),
        Column("dataset.name", "Dataset", sort="dataset__name"),
        Column("labeling_type", "Progress (labeled/total)", cell="labeling/_job_progress_cell.html"),
        Column("pk", "To be confirmed", cell="labeling/_job_confirm_cell.html", classes="num"),
        Column("created_at", "Created", sort="created_at", cell="labeling/_datetime_cell.html", classes="nowrap"),
        Column("remarks", "Remarks", cell="labeling/_text_cell.html"),
        Column("description", "Description", cell="labeling/_text_cell.html"),
        Column("pk", "Operations", cell="labeling/_job_actions_cell.html", classes="nowrap"),
    ]
    search_fields = ["name", "dataset__name", "description"]
    search_placeholder = "Search jobs"
    filters = [ChoiceFilter("type", "Type", lookup="labeling_type", any_label="All types",
                            choices=[(t, LabelType(t).label) for t in LABELING_TYPES])]
    default_sort = "-created_at"
    empty_title = "No labeling jobs yet"
    empty_text = "Create a labeling job to label a dataset's images, text, audio or video."
    caption = "Labeling jobs"
