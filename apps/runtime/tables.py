"""List tables of the Resources pages and the runs API (see apps.core.tables)."""
from __future__ import annotations

from apps.core.tables import MAX_DYNAMIC_CHOICES, ChoiceFilter, Column, DateFilter, Table, distinct_values

from .choices import JobType, RunStatus


def _worker_choices(queryset):
    hosts = (queryset.exclude(worker=None).order_by("worker__hostname")
             .values_list("worker__hostname", flat=True).distinct()[:MAX_DYNAMIC_CHOICES])
    return [(host, host) for host in hosts]


class RunTable(Table):
    """Runs of the current workspace: status, where, when, how it ended."""

    columns = [
        Column("name", "Run", sort="name", cell="runtime/_run_name_cell.html"),
        Column("status", "Status", sort="status", cell="runtime/_run_status_cell.html"),
        Column("job_type", "Type", sort="job_type", cell="runtime/_run_type_cell.html"),
        Column("pool.name", "Pool", sort="pool__name"),
        Column("flavor.name", "Flavor", sort="flavor__name"),
        Column("worker.hostname", "Worker", sort="worker__hostname", cell="runtime/_run_worker_cell.html"),
        Column("created_at", "Created", sort="created_at", cell="runtime/_datetime_cell.html", classes="nowrap"),
        Column("duration", "Duration", cell="runtime/_run_duration_cell.html", classes="num nowrap"),
    ]
    search_fields = ["name", "command", "owner_type", "status_reason"]
    search_placeholder = "Search name, command or reason"
    filters = [
        ChoiceFilter("status", "Status", lookup="status", choices=RunStatus.choices),
        ChoiceFilter("job_type", "Type", lookup="job_type", choices=JobType.choices),
        ChoiceFilter("pool", "Pool", lookup="pool__name", choices=distinct_values("pool__name")),
        ChoiceFilter("worker", "Worker", lookup="worker__hostname", choices=_worker_choices),
        ChoiceFilter("owner_type", "Owner", lookup="owner_type", choices=distinct_values("owner_type")),
        DateFilter("since", "From", lookup="created_at"),
        DateFilter("until", "To", lookup="created_at", upper=True),
    ]
    default_sort = "-created_at"
    default_page_size = 25
    empty_title = "No runs yet"
    empty_text = "Training jobs, notebooks, services and batch jobs start runs; they are listed here."
    caption = "Runs"
