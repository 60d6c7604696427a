"""List tables of the edge pages (rendered by components/table.html, like the other Services lists)."""
from __future__ import annotations

from apps.core.tables import ChoiceFilter, Column, Table, as_bool

from .choices import Accelerator, EdgeServiceStatus

CELLS = "deployment/edge_cells/"


class EdgeNodeTable(Table):
    """Edge nodes. Status is derived from heartbeats (`EdgeNode.status`), so it is shown, not sorted;
    the last heartbeat column sorts by the same signal."""

    columns = [
        Column("id", "", cell=CELLS + "node_select.html", classes="select", hideable=False),
        Column("name", "Name", sort="name", cell=CELLS + "node_name.html", hideable=False),
        Column("status", "Status", cell=CELLS + "node_status.html"),
        Column("activated_until", "Activation", sort="activated_until", cell=CELLS + "node_activation.html"),
        Column("get_accelerator_display", "Accelerator", sort="accelerator"),
        Column("host", "Host", sort="host", cell=CELLS + "text.html", classes="mono"),
        Column("edge_pool", "Pool", sort="edge_pool__name", cell=CELLS + "node_pool.html"),
        Column("service_count", "Services", sort="service_count", classes="num"),
        Column("last_heartbeat", "Last heartbeat", sort="last_heartbeat", cell=CELLS + "heartbeat.html",
               classes="nowrap"),
    ]
    search_fields = ["name", "description", "host"]
    search_placeholder = "Search edge nodes"
    filters = [ChoiceFilter("accelerator", "Accelerator", lookup="accelerator", choices=Accelerator.choices),
               ChoiceFilter("frozen", "Frozen", lookup="frozen", choices=[("true", "Frozen"), ("false", "Not frozen")],
                            coerce=as_bool)]
    default_sort = "name"  # a sortable column: the toolbar sends it back with every search and refresh
    empty_title = "No edge nodes yet"
    empty_text = "Create a node, then start the edge agent on the machine with its one-time token."
    caption = "Edge nodes"
    column_chooser = True

    def __init__(self, *args, can_select: bool = True, **kwargs):
        # The selection column (activation) is only for workspace admins.
        if not can_select:
            self.columns = [c for c in self.columns if c.key != "id"]
        super().__init__(*args, **kwargs)


class EdgeServiceTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell=CELLS + "service_name.html", hideable=False),
        Column("status", "Status", sort="status", cell="deployment/_service_status_cell.html"),
        Column("model_version.label", "AI application"),
        Column("node", "Target", cell=CELLS + "service_target.html"),
        Column("model_version.app.get_request_mode_display", "Request mode"),
        Column("edge_pool", "Deploy mode", cell=CELLS + "service_mode.html"),
        Column("instance_count", "Instances", sort="instance_count", classes="num"),
        Column("created_at", "Created", sort="created_at", cell="deployment/_datetime_cell.html", classes="nowrap"),
    ]
    search_fields = ["name", "description"]
    search_placeholder = "Search edge services"
    filters = [ChoiceFilter("status", "Status", lookup="status", choices=EdgeServiceStatus.choices)]
    default_sort = "-created_at"
    empty_title = "No edge services yet"
    empty_text = "Enrol and activate an edge node, then deploy an AI application version made for edge onto it."
    caption = "Edge services"
    column_chooser = True


class EdgePoolTable(Table):
    """Edge pools with their masters and workers (workers are added and removed in place)."""

    columns = [
        Column("name", "Name", sort="name", cell=CELLS + "name.html", hideable=False),
        Column("masters", "Masters", cell=CELLS + "pool_masters.html"),
        Column("workers", "Workers", cell=CELLS + "pool_workers.html"),
        Column("node_count", "Nodes", sort="node_count", classes="num"),
        Column("max_workers", "Max workers", sort="max_workers", classes="num"),
        Column("created_at", "Created", sort="created_at", cell="deployment/_datetime_cell.html", classes="nowrap"),
        Column("pk", "", cell=CELLS + "pool_actions.html", classes="actions", hideable=False),
    ]
    search_fields = ["name", "description"]
    search_placeholder = "Search edge pools"
    default_sort = "-created_at"
    empty_title = "No edge pools yet"
    empty_text = "Group enrolled edge nodes into a pool (1–3 masters and workers) to deploy onto all of them."
    caption = "Edge pools"


class LoadBalancerTable(Table):
    columns = [
        Column("name", "Name", sort="name", cell=CELLS + "name.html", hideable=False),
        Column("node", "Target", cell=CELLS + "lb_target.html"),
        Column("listen_port", "Listen port", sort="listen_port", classes="num"),
        Column("protocol", "Protocol"),
        Column("sticky", "Policy", sort="sticky", cell=CELLS + "lb_policy.html"),
        Column("rules", "Rules", cell=CELLS + "lb_rules.html"),
        Column("pk", "", cell=CELLS + "lb_actions.html", classes="actions", hideable=False),
    ]
    search_fields = ["name", "description"]
    search_placeholder = "Search load balancers"
    default_sort = "name"
    empty_title = "No load balancers yet"
    empty_text = "A load balancer listens on a node (or a pool's masters) and forwards HTTP to an edge service."
    caption = "Load balancers"
