"""List tables of the training pages."""
import re
from dataclasses import dataclass

from apps.core.tables import ChoiceFilter, Column, DateFilter, Table, TextFilter, distinct_values

from .choices import BootMode, TrainingStatus

# Worker-0's average GPU utilisation below this marks a running job as under-using its GPUs (ModelArts: 50%).
LOW_UTILIZATION_PERCENT = 50

# Tag keys as the services accept them, minus "__" (it would read as a nested JSON lookup).
TAG_KEY = re.compile(r"^(?!.*__)[A-Za-z0-9_-]{1,64}$")
TAG_OPTIONS_SCAN = 500


@dataclass
class TagFilter(ChoiceFilter):
    """`tag=key=value`: rows whose tags hold that pair. Options: the pairs on the newest rows."""

    name: str = "tag"
    label: str = "Tag"
    lookup: str = "tags"

    def parse(self, raw: str):
        key, sep, value = raw.partition("=")
        if not sep or not TAG_KEY.match(key):
            raise ValueError(f'"{raw}" is not a tag; write key=value (keys: letters, digits, - and _).')
        return key, value

    def apply(self, queryset, value):
        key, text = value
        return queryset.filter(**{f"tags__{key}": text})

    def options(self, base) -> list[tuple[str, str]]:
        pairs = set()
        for tags in base.order_by("-pk").values_list("tags", flat=True)[:TAG_OPTIONS_SCAN]:
            pairs.update(f"{k}={v}" for k, v in (tags or {}).items())
        return [(pair, pair) for pair in sorted(pairs)]


class TrainingJobTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell="training/_job_name_cell.html", hideable=False),
        Column("id", "ID", sort="pk", classes="num mono"),
        Column("status", "Status", sort="status", cell="training/_job_status_cell.html"),
        Column("get_boot_mode_display", "Type", sort="boot_mode"),
        Column("experiment.name", "Experiment", sort="experiment__name"),
        Column("algorithm_label", "Algorithm", sort="algorithm__name"),
        Column("pool.name", "Pool", sort="pool__name"),
        Column("node_count", "Nodes", sort="node_count", classes="num"),
        Column("priority", "Priority", sort="priority", classes="num"),
        Column("created_by.username", "Creator", sort="created_by__username"),
        Column("created_at", "Created", sort="created_at", cell="training/_datetime_cell.html", classes="nowrap"),
        Column("pk", "", cell="training/_job_actions_cell.html", classes="num", hideable=False),
    ]
    column_chooser = True
    default_hidden = ("id", "created_by.username")
    search_fields = ["name", "description", "experiment__name", "algorithm__name"]
    search_placeholder = "Search name, experiment or algorithm"
    filters = [
        TextFilter("name", "Name", lookup="name"),
        TextFilter("id", "ID", lookup="pk", exact_int=True),
        ChoiceFilter("type", "Type", lookup="boot_mode", choices=BootMode.choices),
        ChoiceFilter("status", "Status", lookup="status", choices=TrainingStatus.choices),
        ChoiceFilter("algorithm", "Algorithm", lookup="algorithm__name", choices=distinct_values("algorithm__name")),
        ChoiceFilter("pool", "Pool", lookup="pool__name", choices=distinct_values("pool__name")),
        ChoiceFilter("mine", "Created by", lookup="created_by__username",
                     choices=distinct_values("created_by__username"), any_label="Anyone"),
        DateFilter("since", "From", lookup="created_at"),
        DateFilter("until", "To", lookup="created_at", upper=True),
        TagFilter(),
    ]
    default_sort = "-created_at"
    empty_title = "No training jobs yet"
    empty_text = "Create a training job from your code or a built-in algorithm."
    caption = "Training jobs"

    @property
    def rows(self):
        rows = super().rows
        low = low_utilization_jobs([row.obj for row in rows])
        for row in rows:
            row.obj.low_utilization = low.get(row.obj.pk)
        return rows


def low_utilization_jobs(jobs) -> dict[int, float]:
    """{job id: worker-0's average GPU %} of the running GPU jobs below LOW_UTILIZATION_PERCENT.

    Only jobs with GPU samples count: without GPU data there is nothing to judge. One query for
    the worker-0 runs, one aggregate per running GPU job of the page (a page holds at most 100).
    """
    from django.db.models import Avg

    from apps.runtime.models import NodeSample, Run

    running = {job.run_group: job for job in jobs
               if job.status == TrainingStatus.RUNNING and job.run_group and job.flavor.gpus}
    if not running:
        return {}
    out = {}
    for run in Run.objects.filter(group__in=list(running), node_rank=0).exclude(worker=None):
        if run.started_at is None:
            continue
        average = (NodeSample.objects.filter(node_id=run.worker_id, at__gte=run.started_at,
                                             gpu_percent__isnull=False).aggregate(value=Avg("gpu_percent"))["value"])
        if average is not None and average < LOW_UTILIZATION_PERCENT:
            out[running[run.group].pk] = round(average, 1)
    return out


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
        Column("name", "Name", sort="name", cell="training/_algorithm_name_cell.html", hideable=False),
        Column("id", "ID", sort="pk", classes="num mono"),
        Column("get_boot_mode_display", "Boot mode", sort="boot_mode"),
        Column("image", "Image", sort="image", classes="mono"),
        Column("code_dir", "Code folder", sort="code_dir", classes="mono"),
        Column("job_count", "Jobs", sort="job_count", classes="num"),
        Column("description", "Description", sort="description"),
        Column("created_at", "Created", sort="created_at", cell="training/_datetime_cell.html", classes="nowrap"),
        Column("pk", "", cell="training/_algorithm_actions_cell.html", classes="num", hideable=False),
    ]
    column_chooser = True
    default_hidden = ("id", "image")
    search_fields = ["name", "description", "code_dir", "image"]
    filters = [TextFilter("name", "Name", lookup="name"), TextFilter("image", "Image", lookup="image"),
               TextFilter("code_dir", "Code folder", lookup="code_dir"),
               TextFilter("description", "Description", lookup="description"),
               DateFilter("since", "Created from", lookup="created_at"),
               DateFilter("until", "Created to", lookup="created_at", upper=True), TagFilter()]
    default_sort = "-created_at"
    empty_title = "No algorithms yet"
    empty_text = 'Save a job\'s settings with "Save as algorithm", or use the API.'
    caption = "Algorithms"
