"""The sidebar: console sections in their fixed order.

A section is listed only when its app has registered the named URL (a section appears
when it works) and the user's role may view it. Sections are grouped under small headings
(Build, Deploy, Platform) in the sidebar; `group` is empty for the top entry.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from .permissions import has_perm


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    url_name: str
    permission: str  # "<resource>:view" in the current workspace; "staff" for platform admin
    icon: str  # a symbol of static/core/icons.svg
    group: str = ""
    staff_too: bool = False  # platform staff see it even without a role in the workspace


# One line per section for the overview's quick links.
DESCRIPTIONS = {
    "data": "Datasets, samples, versions and imports",
    "labeling": "Labeling jobs and the annotation workbench",
    "autolearn": "Train a model without writing code",
    "notebooks": "JupyterLab instances on the pools",
    "training": "Training jobs, experiments and metrics",
    "models": "AI applications and their versions",
    "services": "Online and batch inference services",
    "workflows": "MLOps pipelines and their runs",
    "hub": "Shared algorithms, models and datasets",
    "storage": "Buckets, folders and files",
    "resources": "Pools, flavors, worker nodes and runs",
    "audit": "Who did what, when, with which result",
    "admin": "Users, workspaces and platform settings",
}


SECTIONS = [
    Section("overview", "Overview", "core:overview", "workspace:view", "grid"),
    Section("data", "Data", "datasets:list", "dataset:view", "database", "Build"),
    Section("labeling", "Labeling", "labeling:list", "labeling:view", "tag", "Build"),
    Section("autolearn", "Auto-learning", "autolearn:list", "autolearn:view", "zap", "Build"),
    Section("notebooks", "Notebooks", "notebooks:list", "notebook:view", "book", "Build"),
    Section("training", "Training", "training:list", "trainjob:view", "activity", "Build"),
    Section("models", "Models", "deployment:model_list", "model:view", "box", "Deploy"),
    Section("services", "Services", "deployment:service_list", "service:view", "server", "Deploy"),
    Section("workflows", "Workflows", "workflows:list", "workflow:view", "share", "Deploy"),
    Section("hub", "AI Hub", "hub:list", "hub:view", "globe", "Deploy"),
    Section("storage", "Storage", "storage:browser", "storage:view", "folder", "Platform"),
    Section("resources", "Resources", "runtime:overview", "resource:view", "cpu", "Platform"),
    Section("audit", "Audit log", "core:audit_log", "audit:view", "audit", "Platform", staff_too=True),
    Section("admin", "Admin", "accounts:admin_users", "staff", "shield", "Platform"),
]


def sections_for(request) -> list[dict]:
    """Sidebar entries for this request, each with its URL and whether it is the current one."""
    items = []
    path = request.path
    for section in SECTIONS:
        try:
            url = reverse(section.url_name)
        except NoReverseMatch:
            continue
        if section.permission == "staff":
            allowed = request.user.is_staff
        else:
            allowed = (section.staff_too and request.user.is_staff) or has_perm(
                request.user, getattr(request, "workspace", None), section.permission
            )
        if not allowed:
            continue
        # A section owns every page under its first path segment ("/storage/…").
        root = "/" + url.strip("/").split("/")[0] + "/"
        active = path == url or (url != "/" and path.startswith(root))
        items.append({"key": section.key, "label": section.label, "url": url, "icon": section.icon,
                      "group": section.group, "description": DESCRIPTIONS.get(section.key, ""), "active": active})
    return items
