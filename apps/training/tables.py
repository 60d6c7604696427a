"""List tables of the training pages."""
from apps.core.tables import ChoiceFilter, Column, DateFilter, Table, distinct_values

from .choices import TrainingStatus


class TrainingJobTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell="training/_job_name_cell.html"),
        Column("status", "Status", sort="status", cell="training/_job_status_cell.html"),
        Column("experiment.name", "Experiment", sort="experiment__name"),
        Column("algorithm_label", "Algorithm"),
        Column("pool.name", "Pool", sort="pool__name"),
        Column("node_count", "Nodes", sort="node_count", classes="num"),
        Column("priority", "Priority", sort="priority", classes="num"),
        Column("created_at", "Created", sort="created_at", cell="training/_datetime_cell.html", classes="nowrap"),
        Column("pk", "", cell="training/_job_actions_cell.html", classes="num"),
    ]
    search_fields = ["name", "description", "experiment__name", "algorithm__name"]
    search_placeholder = "Search name, experiment or algorithm"
    filters = [
        ChoiceFilter("status", "Status", lookup="status", choices=TrainingStatus.choices),
        ChoiceFilter("pool", "Pool", lookup="pool__name", choices=distinct_values("pool__name")),
        ChoiceFilter("mine", "Created by", lookup="created_by__username",
                     choices=distinct_values("created_by__username"), any_label="Anyone"),
        DateFilter("since", "From", lookup="created_at"),
        DateFilter("until", "To", lookup="created_at", upper=True),
    ]
    default_sort = "-created_at"
    empty_title = "No training jobs yet"
    empty_text = "Create a training job from your code or a built-in algorithm."
    caption = "Training jobs"


class ExperimentTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell="training/_experiment_name_cell.html"),
        Column("job_count", "Jobs", sort="job_count", classes="num"),
        Column("description", "Description"),
        Column("created_at", "Created", sort="created_at", cell="training/_datetime_cell.html", classes="nowrap"),
        Column("modified_at", "Modified", sort="modified_at", cell="training/_datetime_cell.html", classes="nowrap"),
    ]
    search_fields = ["name", "description"]
    default_sort = "-modified_at"
    empty_title = "No experiments yet"
    empty_text = "Experiments are created from the training job form."
    caption = "Experiments"


class AlgorithmTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell="training/_algorithm_name_cell.html"),
        Column("boot_mode", "Boot mode", sort="boot_mode"),
        Column("code_dir", "Code folder", sort="code_dir", classes="mono"),
        Column("job_count", "Jobs", sort="job_count", classes="num"),
        Column("description", "Description"),
        Column("created_at", "Created", sort="created_at", cell="training/_datetime_cell.html", classes="nowrap"),
    ]
    search_fields = ["name", "description", "code_dir", "image"]
    filters = [DateFilter("since", "Created from", lookup="created_at"),
               DateFilter("until", "Created to", lookup="created_at", upper=True)]
    default_sort = "-created_at"
    empty_title = "No algorithms yet"
    empty_text = 'Save a job\'s settings with "Save as algorithm", or use the API.'
    caption = "Algorithms"
