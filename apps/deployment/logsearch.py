"""The service Logs tab (seed-06 §3.6): search the run logs of a service's instances within a time
window, by keywords.

Query language (case-insensitive):

    error                 lines containing "error"
    time?ut  conn*        `?` is one character, `*` any run of characters, both within a word
    "connection refused"  a phrase, as written (spaces match any run of spaces)
    a b      a AND b      both (adjacent keywords are joined by AND)
    a OR b                either; AND binds tighter than OR:  a OR b c  =  a OR (b AND c)
    (a OR b) c            parentheses group

Time: a line's time is the timestamp it starts with (ISO 8601, or Python logging's
`YYYY-MM-DD HH:MM:SS,mmm`; without a zone it is the console's TIME_ZONE, which workers share);
a line without one takes the time of the line before it, and the first lines of an instance
its start time. The model server stamps its own lines; so does Python logging in user code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from apps.runtime.logstream import log_read
from apps.runtime.models import Run

from .models import InferenceService

# Windows offered by the tab (seed-06 §3.6), besides a custom start and end.
WINDOWS = {"5m": timedelta(minutes=5), "30m": timedelta(minutes=30), "1h": timedelta(hours=1)}
MAX_QUERY_CHARS = 500
# Matches shown at most (the latest ones); the tab says when there were more.
MAX_MATCHES = 500
STAMP_RE = re.compile(r"^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?\s?(Z|[+-]\d{2}:?\d{2})?")


class QueryError(ValueError):
    """A query that does not parse; the message names the problem and the character position."""


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


@dataclass
class Term:
    text: str
    phrase: bool = False
    pattern: re.Pattern = field(init=False, repr=False)

    def __post_init__(self):
        if self.phrase:
            source = r"\s+".join(re.escape(part) for part in self.text.split())
        else:
            source = "".join(r"\S*" if ch == "*" else r"\S" if ch == "?" else re.escape(ch) for ch in self.text)
        self.pattern = re.compile(source, re.IGNORECASE)

    def matches(self, line: str) -> bool:
        return self.pattern.search(line) is not None


@dataclass
class Op:
    kind: str  # "and" or "or"
    children: list


def _tokens(query: str) -> list[tuple[str, str, int]]:
    """(kind, text, position): kind is "word", "phrase", "and", "or", "(" or ")"."""
    tokens, i = [], 0
    while i < len(query):
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append((ch, ch, i + 1))
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError(f"The quote at character {i + 1} is not closed.")
            text = query[i + 1:end]
            if not text.strip():
                raise QueryError(f"The phrase at character {i + 1} is empty.")
            tokens.append(("phrase", text, i + 1))
            i = end + 1
        else:
            start = i
            while i < len(query) and not query[i].isspace() and query[i] not in '()"':
                i += 1
            word = query[start:i]
            kind = {"AND": "and", "OR": "or"}.get(word, "word")
            tokens.append((kind, word, start + 1))
    return tokens


def parse_query(query: str):
    """The query's tree (`Term` / `Op`), or None for an empty query; QueryError when malformed."""
    query = (query or "").strip()
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"The search has {len(query)} characters; at most {MAX_QUERY_CHARS}.")
    tokens = _tokens(query)
    if not tokens:
        return None
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def primary():
        nonlocal pos
        token = peek()
        if token is None:
            raise QueryError("The search ends with an operator; add a keyword after it.")
        kind, text, at = token
        if kind in ("word", "phrase"):
            pos += 1
            return Term(text, phrase=kind == "phrase")
        if kind == "(":
            pos += 1
            node = either()
            if peek() is None or peek()[0] != ")":
                raise QueryError(f"The parenthesis at character {at} is not closed.")
            pos += 1
            return node
        if kind == ")":
            raise QueryError(f"Unexpected ) at character {at}.")
        raise QueryError(f"{text} at character {at} needs a keyword on both sides.")

    def both():
        nonlocal pos
        children = [primary()]
        while (token := peek()) is not None and token[0] not in ("or", ")"):
            if token[0] == "and":
                pos += 1
            children.append(primary())
        return children[0] if len(children) == 1 else Op("and", children)

    def either():
        nonlocal pos
        children = [both()]
        while (token := peek()) is not None and token[0] == "or":
            pos += 1
            children.append(both())
        return children[0] if len(children) == 1 else Op("or", children)

    tree = either()
    if pos < len(tokens):
        kind, text, at = tokens[pos]
        raise QueryError(f"Unexpected {text} at character {at}.")
    return tree


def query_matches(tree, line: str) -> bool:
    if tree is None:
        return True
    if isinstance(tree, Term):
        return tree.matches(line)
    results = (query_matches(child, line) for child in tree.children)
    return all(results) if tree.kind == "and" else any(results)


def _terms(tree) -> list[Term]:
    if tree is None:
        return []
    if isinstance(tree, Term):
        return [tree]
    return [term for child in tree.children for term in _terms(child)]


def highlight(tree, line: str) -> list[tuple[str, bool]]:
    """The line cut into (text, is_match) pieces: every keyword occurrence is a match."""
    spans = sorted((m.start(), m.end()) for term in _terms(tree) for m in term.pattern.finditer(line)
                   if m.end() > m.start())
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, at = [], 0
    for start, end in merged:
        if start > at:
            pieces.append((line[at:start], False))
        pieces.append((line[start:end], True))
        at = end
    if at < len(line):
        pieces.append((line[at:], False))
    return pieces or [("", False)]


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


def line_time(line: str) -> datetime | None:
    """The timestamp a log line starts with (aware), or None."""
    match = STAMP_RE.match(line)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    try:
        value = datetime.fromisoformat(f"{day}T{clock}" + (f".{fraction.ljust(6, '0')}" if fraction else ""))
    except ValueError:
        return None
    if zone:
        zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
        return datetime.fromisoformat(value.isoformat() + zone)
    return timezone.make_aware(value, timezone.get_default_timezone())


def window_bounds(window: str, start: str = "", end: str = "", *, now=None) -> tuple[datetime, datetime]:
    """(since, until) of a named window or a custom one (`start`/`end` as datetime-local values)."""
    now = now or timezone.now()
    if window in WINDOWS:
        return now - WINDOWS[window], now
    if window != "custom":
        raise ValidationError({"window": [f"Choose {', '.join(WINDOWS)} or custom."]})
    bounds = []
    for name, value in (("start", start), ("end", end)):
        try:
            parsed = datetime.fromisoformat((value or "").strip())
        except ValueError:
            raise ValidationError({name: [f"Give the {name} as a date and time (YYYY-MM-DDTHH:MM)."]}) from None
        bounds.append(parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed))
    if bounds[0] >= bounds[1]:
        raise ValidationError({"end": ["The end must come after the start."]})
    return bounds[0], bounds[1]


# ---------------------------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------------------------


def service_log_runs(service: InferenceService):
    """The instance runs of a service, newest first (past instances too: their runs remain)."""
    from .serving import OWNER_TYPE

    return (Run.objects.filter(owner_type=OWNER_TYPE, owner_id=str(service.pk))
            .select_related("service_instance__model_version__app").order_by("-created_at", "-id"))


@dataclass
class LogMatch:
    run_id: int
    label: str
    number: int
    time: datetime | None
    pieces: list[tuple[str, bool]]


@dataclass
class LogSearch:
    matches: list[LogMatch]
    more: bool  # older matches were left out
    scanned_lines: int


def run_label(run: Run) -> str:
    instance = getattr(run, "service_instance", None)
    version = instance.model_version.label if instance is not None and instance.model_version else run.name
    return f"Instance run {run.pk} · {version}"


def service_log_search(service: InferenceService, *, query: str = "", since: datetime, until: datetime,
                       run_id: int | None = None) -> LogSearch:
    """Lines of the service's instance logs in [since, until] that match `query`, oldest first,
    at most MAX_MATCHES (the latest). Raises QueryError for a malformed query."""
    tree = parse_query(query)
    runs = service_log_runs(service).filter(Q(finished_at__isnull=True) | Q(finished_at__gte=since),
                                            created_at__lte=until)
    if run_id is not None:
        runs = runs.filter(pk=run_id)
    found: list[LogMatch] = []
    scanned = 0
    for run in runs[:50]:
        if not run.log_uri:
            continue
        chunk = log_read(run, limit=settings.ATELIER_DEPLOYMENT_LOG_SEARCH_LINES)
        if chunk.first == 1:
            known = run.started_at or run.created_at
        else:  # the tail of a long log: its first stamped line dates the lines before it
            known = next((stamp for stamp in map(line_time, chunk.lines) if stamp is not None), None)
        label = run_label(run)
        for number, line in enumerate(chunk.lines, start=chunk.first):
            scanned += 1
            stamp = line_time(line)
            if stamp is not None:
                known = stamp
            if known is None or not since <= known <= until or not query_matches(tree, line):
                continue
            found.append(LogMatch(run.pk, label, number, known, highlight(tree, line)))
    found.sort(key=lambda m: (m.time, m.run_id, m.number))
    more = len(found) > MAX_MATCHES
    return LogSearch(matches=found[-MAX_MATCHES:], more=more, scanned_lines=scanned)
