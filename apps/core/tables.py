"""Server-side list tables: columns, search, filters, stable sort and pagination from query params.

A section declares one `Table` subclass per list page and renders it with
`templates/components/table.html`::

    class BucketTable(Table):
        columns = [
            Column("name", "Name", sort="name", cell="storage/_bucket_name_cell.html"),
            Column("created_at", "Created", sort="created_at"),
        ]
        search_fields = ["name", "description"]
        filters = [ChoiceFilter("state", "State", lookup="state", choices=BucketState.choices)]
        default_sort = "-created_at"

    def bucket_list(request):
        table = BucketTable(buckets_in(request.workspace), request.GET, id="buckets")
        return render_table(request, "storage/bucket_list.html", {"table": table}, table)

Query parameters: `q` (search), `sort` (a column key, "-" prefix for descending),
`page`, `page_size`, and one parameter per filter (`since`/`until` for date filters).
Unknown or malformed values never raise: they are reported in `table.errors`
({param: [message]}) and ignored, so the page still renders; the REST API turns the
same errors into a 400 (see `Table.filtered`). Sorting always ends with the primary
key, so rows with equal sort values keep one order across pages.
"""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from .choices import AuditResult

# Dynamic filter choices (distinct values of a column) stop here: a select with more
# options than this is unusable, and the query must stay cheap on large tables.
MAX_DYNAMIC_CHOICES = 200


@dataclass(frozen=True)
class Column:
    """One table column.

    `key` is an attribute path on the row ("actor.username"; callables are called),
    `sort` the ORM field used when the user sorts by this column (None: not sortable),
    `cell` an optional template rendering the cell with `row` and `value` in context.
    `hideable` lets the column chooser hide it (keep it False for the name and actions columns).
    """

    key: str
    label: str
    sort: str | None = None
    cell: str | None = None
    classes: str = ""
    hideable: bool = True

    def value_for(self, row):
        value = row
        for part in self.key.split("."):
            if value is None:
                return None
            value = getattr(value, part, None)
            if callable(value):
                value = value()
        return value


class Filter:
    """A query parameter that narrows the queryset; subclasses parse and apply it."""

    name: str
    label: str
    widget: str  # "select" or "date": how table.html renders it

    def parse(self, raw: str):
        """Return the parsed value, or raise ValueError with a message for the user."""
        raise NotImplementedError

    def apply(self, queryset: QuerySet, value) -> QuerySet:
        raise NotImplementedError


@dataclass
class ChoiceFilter(Filter):
    """Equality filter rendered as a select.

    `choices` is a list of (value, label) pairs, or a callable taking the unfiltered
    queryset and returning them (e.g. the distinct actors present). Static choices are
    enforced; dynamic ones are not, because a valid value may sit past the choice cap.
    """

    name: str
    label: str
    lookup: str
    choices: Sequence[tuple[str, str]] | Callable[[QuerySet], Sequence[tuple[str, str]]] = ()
    any_label: str = "Any"
    # Turns the raw text into the lookup's type (int for ids, `as_bool` for booleans);
    # a TypeError/ValueError becomes the user-facing message.
    coerce: Callable[[str], object] | None = None
    widget: str = field(default="select", init=False)

    def parse(self, raw: str):
        if not callable(self.choices):
            allowed = {str(value) for value, _ in self.choices}
            if raw not in allowed:
                raise ValueError(f'"{raw}" is not a valid {self.label.lower()}; choose one of {", ".join(sorted(allowed))}.')
        if self.coerce is None:
            return raw
        try:
            return self.coerce(raw)
        except (TypeError, ValueError):
            raise ValueError(f'"{raw}" is not a valid {self.label.lower()}.') from None

    def apply(self, queryset, value):
        return queryset.filter(**{self.lookup: value})

    def options(self, base: QuerySet) -> list[tuple[str, str]]:
        return list(self.choices(base) if callable(self.choices) else self.choices)


def as_bool(raw: str) -> bool:
    """Coerce for boolean filters: "true"/"false" (and 1/0, yes/no) as the choices spell them."""
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    raise ValueError(raw)


def distinct_values(field_name: str) -> Callable[[QuerySet], list[tuple[str, str]]]:
    """Choices callable: the distinct non-empty values of `field_name` in the unfiltered rows."""

    def choices(queryset: QuerySet) -> list[tuple[str, str]]:
        values = (
            queryset.exclude(**{field_name: ""})
            .order_by(field_name)
            .values_list(field_name, flat=True)
            .distinct()[:MAX_DYNAMIC_CHOICES]
        )
        return [(v, v) for v in values]

    return choices


@dataclass
class DateFilter(Filter):
    """Lower or upper time bound rendered as a date input.

    Accepts `YYYY-MM-DD` (a whole day in the console's time zone) or an ISO 8601
    datetime. An upper bound given as a date includes that whole day.
    """

    name: str
    label: str
    lookup: str  # a datetime field
    upper: bool = False
    widget: str = field(default="date", init=False)

    def parse(self, raw: str):
        moment = parse_datetime(raw) if "T" in raw or " " in raw else None
        if moment is not None:
            return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        try:
            day = parse_date(raw)
        except ValueError:
            day = None
        if day is None:
            raise ValueError(f'"{raw}" is not a date; use YYYY-MM-DD or an ISO 8601 date and time.')
        if self.upper:
            day += dt.timedelta(days=1)
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

    def apply(self, queryset, value):
        # A date-only upper bound was moved to the next midnight, so it is exclusive.
        return queryset.filter(**{f"{self.lookup}__{'lt' if self.upper else 'gte'}": value})


@dataclass
class TextFilter(Filter):
    """Contains-text filter on one field (case-insensitive), rendered as a small search input.

    With `exact_int`, the value must be a whole number matched exactly (an ID filter).
    """

    name: str
    label: str
    lookup: str
    exact_int: bool = False
    max_length: int = 200
    widget: str = field(default="text", init=False)

    def parse(self, raw: str):
        if len(raw) > self.max_length:
            raise ValueError(f"The {self.label.lower()} filter has more than {self.max_length} characters.")
        if self.exact_int:
            if not raw.isdigit():
                raise ValueError(f'"{raw}" is not a valid {self.label.lower()}; give a whole number.')
            return int(raw)
        return raw

    def apply(self, queryset, value):
        return queryset.filter(**{self.lookup if self.exact_int else f"{self.lookup}__icontains": value})


@dataclass(frozen=True)
class Row:
    obj: object
    cells: list[tuple[Column, object]]


class Table:
    """Declarative list table; instantiate with the scoped queryset and `request.GET`."""

    columns: Sequence[Column] = ()
    search_fields: Sequence[str] = ()
    search_placeholder: str = "Search"
    filters: Sequence[Filter] = ()
    default_sort: str = ""  # a column key, "-" prefix for descending
    page_sizes: Sequence[int] = (10, 25, 50, 100)
    default_page_size: int = 25
    empty_title: str = "Nothing here yet"
    empty_text: str = ""
    row_template: str | None = None  # overrides the per-cell rendering of a whole <tr>
    caption: str = ""
    # Column chooser: a "Columns" menu in the toolbar; the columns a user hides are remembered per
    # user and table in the browser (localStorage, static/core/column_chooser.js). Needs per-cell
    # rendering (no row_template). `default_hidden` lists column keys hidden until a user shows them.
    column_chooser: bool = False
    default_hidden: Sequence[str] = ()

    def __init__(self, queryset: QuerySet, params: QueryDict | dict, *, id: str = "table"):
        self.id = id
        self.base = queryset
        self.params = params
        self.errors: dict[str, list[str]] = {}
        self.search = (params.get("q") or "").strip()
        self.sort_key, self.sort_desc = self._parse_sort(params.get("sort") or "")
        self.filter_values: dict[str, object] = {}
        self.raw_filter_values: dict[str, str] = {}
        for flt in self.filters:
            raw = (params.get(flt.name) or "").strip()
            if not raw:
                continue
            self.raw_filter_values[flt.name] = raw
            try:
                self.filter_values[flt.name] = flt.parse(raw)
            except ValueError as exc:
                self._error(flt.name, str(exc))
        self.page_size = self._parse_page_size(params.get("page_size"))

    # ---- parsing -------------------------------------------------------------------------

    def _error(self, param: str, message: str) -> None:
        self.errors.setdefault(param, []).append(message)

    def _sortable(self) -> dict[str, Column]:
        return {c.key: c for c in self.columns if c.sort}

    def _parse_sort(self, raw: str) -> tuple[str, bool]:
        default_key, default_desc = self.default_sort.lstrip("-"), self.default_sort.startswith("-")
        if not raw:
            return default_key, default_desc
        key, desc = raw.lstrip("-"), raw.startswith("-")
        if key not in self._sortable():
            names = ", ".join(sorted(self._sortable())) or "none"
            self._error("sort", f'Cannot sort by "{key}"; sortable columns: {names}.')
            return default_key, default_desc
        return key, desc

    def _parse_page_size(self, raw) -> int:
        if raw in (None, ""):
            return self.default_page_size
        try:
            size = int(raw)
        except (TypeError, ValueError):
            size = None
        if size not in self.page_sizes:
            allowed = ", ".join(str(s) for s in self.page_sizes)
            self._error("page_size", f'Page size "{raw}" is not offered; choose one of {allowed}.')
            return self.default_page_size
        return size

    # ---- queries -------------------------------------------------------------------------

    def ordering(self) -> list[str]:
        """ORM ordering for the current sort, ending with the primary key for stability."""
        column = self._sortable().get(self.sort_key)
        if column is None:
            return ["-pk"]
        sign = "-" if self.sort_desc else ""
        return [f"{sign}{column.sort}", f"{sign}pk"]

    def search_q(self) -> Q:
        """Every whitespace-separated term must match at least one search field."""
        condition = Q()
        for term in self.search.split():
            any_field = Q()
            for name in self.search_fields:
                any_field |= Q(**{f"{name}__icontains": term})
            condition &= any_field
        return condition

    @functools.cached_property
    def queryset(self) -> QuerySet:
        """Filtered, searched and sorted rows (invalid parameters are ignored)."""
        qs = self.base
        for flt in self.filters:
            if flt.name in self.filter_values:
                qs = flt.apply(qs, self.filter_values[flt.name])
        if self.search and self.search_fields:
            qs = qs.filter(self.search_q())
        return qs.order_by(*self.ordering())

    def filtered(self) -> QuerySet:
        """For the REST API: the rows, or TableParamsError (with `.fields`) when a parameter is bad."""
        if self.errors:
            raise TableParamsError(self.errors)
        return self.queryset

    @functools.cached_property
    def page(self) -> Page:
        # get_page clamps a missing, malformed or out-of-range page number to a real page.
        return Paginator(self.queryset, self.page_size).get_page(self.params.get("page"))

    # ---- rendering helpers ---------------------------------------------------------------

    @property
    def rows(self) -> list[Row]:
        return [Row(obj, [(c, c.value_for(obj)) for c in self.columns]) for obj in self.page.object_list]

    @property
    def headers(self) -> list[dict]:
        """Per column: label, and for sortable ones the `sort` value a click selects."""
        out = []
        for column in self.columns:
            active = column.sort is not None and column.key == self.sort_key
            if column.sort is None:
                next_sort, aria = None, None
            elif active:
                next_sort = column.key if self.sort_desc else f"-{column.key}"
                aria = "descending" if self.sort_desc else "ascending"
            else:
                next_sort, aria = column.key, None
            out.append({"column": column, "label": column.label, "sortable": column.sort is not None,
                        "active": active, "desc": active and self.sort_desc, "next_sort": next_sort,
                        "aria_sort": aria})
        return out

    @property
    def chooser_columns(self) -> list[dict]:
        """The columns the chooser lists: key, label and whether hidden by default."""
        return [{"key": c.key, "label": c.label or c.key, "default_hidden": c.key in self.default_hidden}
                for c in self.columns if c.hideable and c.label]

    @property
    def current_sort(self) -> str:
        return f"{'-' if self.sort_desc else ''}{self.sort_key}" if self.sort_key else ""

    @functools.cached_property
    def filter_widgets(self) -> list[dict]:
        widgets = []
        for flt in self.filters:
            widget = {"name": flt.name, "label": flt.label, "widget": flt.widget,
                      "value": self.raw_filter_values.get(flt.name, "")}
            if isinstance(flt, ChoiceFilter):
                widget["options"] = flt.options(self.base)
                widget["any_label"] = flt.any_label
            widgets.append(widget)
        return widgets

    @property
    def is_filtered(self) -> bool:
        return bool(self.search or self.filter_values)

    @property
    def results_id(self) -> str:
        return f"{self.id}-results"

    @property
    def form_id(self) -> str:
        return f"{self.id}-form"

    @property
    def error_messages(self) -> list[str]:
        return [message for messages in self.errors.values() for message in messages]


class TableParamsError(ValueError):
    """Raised by `Table.filtered()`; `fields` maps each bad query parameter to its messages."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__(next(iter(fields.values()))[0])


RESULTS_PARTIAL = "components/table.html#table-results"


def render_table(request, template_name: str, context: dict, table: Table, *, status: int = 200):
    """Render the full page, or only the table's results when htmx asked for them.

    The search box, filters, sort links and pagination target `#<table.id>-results`,
    so that is the one htmx target answered with the partial.
    """
    htmx = getattr(request, "htmx", None)
    if htmx and htmx.target == table.results_id:
        return render(request, RESULTS_PARTIAL, {**context, "table": table}, status=status)
    return render(request, template_name, {**context, "table": table}, status=status)


# ---- the audit log ----------------------------------------------------------------------


def _workspace_choices(queryset: QuerySet) -> list[tuple[str, str]]:
    rows = (
        queryset.exclude(workspace=None)
        .order_by("workspace__name")
        .values_list("workspace_id", "workspace__name")
        .distinct()[:MAX_DYNAMIC_CHOICES]
    )
    return [(str(pk), name) for pk, name in rows]


class AuditTable(Table):
    """The audit log of one workspace (workspace admins)."""

    columns = [
        Column("created_at", "Time", sort="created_at", cell="core/_audit_time_cell.html", classes="nowrap"),
        Column("actor_name", "Actor", sort="actor_name", cell="core/_audit_actor_cell.html"),
        Column("action", "Action", sort="action", cell="core/_audit_action_cell.html"),
        Column("object_repr", "Object", sort="object_repr", cell="core/_audit_object_cell.html"),
        Column("result", "Result", sort="result", cell="core/_audit_result_cell.html"),
        Column("ip", "IP address", cell="core/_audit_ip_cell.html", classes="nowrap"),
        Column("pk", "", cell="core/_audit_detail_cell.html", classes="num"),
    ]
    search_fields = ["actor_name", "action", "object_type", "object_id", "object_repr"]
    search_placeholder = "Search actor, action or object"
    filters = [
        ChoiceFilter("actor", "Actor", lookup="actor_name", choices=distinct_values("actor_name")),
        ChoiceFilter("action", "Action", lookup="action", choices=distinct_values("action")),
        ChoiceFilter("result", "Result", lookup="result", choices=AuditResult.choices),
        ChoiceFilter("object_type", "Object type", lookup="object_type", choices=distinct_values("object_type")),
        DateFilter("since", "From", lookup="created_at"),
        DateFilter("until", "To", lookup="created_at", upper=True),
    ]
    default_sort = "-created_at"
    default_page_size = 50
    empty_title = "No audit entries yet"
    empty_text = "Every create, update, delete, start and stop in this workspace is recorded here."
    caption = "Audit log"


class PlatformAuditTable(AuditTable):
    """The audit log across every workspace (platform staff): adds the workspace column and filter."""

    columns = [
        *AuditTable.columns[:2],
        Column("workspace.name", "Workspace", sort="workspace__name"),
        *AuditTable.columns[2:],
    ]
    filters = [
        ChoiceFilter("workspace", "Workspace", lookup="workspace_id", choices=_workspace_choices, coerce=int),
        *AuditTable.filters,
    ]
    empty_text = "Every create, update, delete, start and stop on the platform is recorded here."


def audit_table_for(user, queryset: QuerySet, params, *, id: str = "audit") -> AuditTable:
    """The table matching what the user may see: every workspace for staff, one otherwise."""
    table_class = PlatformAuditTable if getattr(user, "is_staff", False) else AuditTable
    return table_class(queryset, params, id=id)
