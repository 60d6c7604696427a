"""List tables of the accounts pages (see apps.core.tables)."""
from __future__ import annotations

from apps.core.tables import ChoiceFilter, Column, Table, as_bool


class UserTable(Table):
    """Platform admin: every user, searchable by username and email."""

    columns = [
        Column("username", "Username", sort="username", cell="accounts/_user_name_cell.html"),
        Column("email", "Email", sort="email"),
        Column("is_active", "State", sort="is_active", cell="accounts/_user_state_cell.html"),
        Column("workspace_count", "Workspaces", sort="workspace_count", classes="num"),
        Column("last_login", "Last sign-in", sort="last_login", cell="accounts/_datetime_cell.html"),
        Column("date_joined", "Created", sort="date_joined", cell="accounts/_datetime_cell.html"),
    ]
    search_fields = ["username", "email"]
    search_placeholder = "Search username or email"
    filters = [
        ChoiceFilter("state", "State", lookup="is_active", coerce=as_bool,
                     choices=[("true", "Active"), ("false", "Deactivated")]),
        ChoiceFilter("staff", "Role", lookup="is_staff", coerce=as_bool,
                     choices=[("true", "Platform admin"), ("false", "User")]),
    ]
    default_sort = "username"
    default_page_size = 50
    empty_title = "No users match"
    empty_text = "Clear the search or filters to see every user."
