"""The job page's log pieces: per-node log download (one node or all as a zip), the full log in the
browser, expiring share links, and the resource-usage series of the Resources tab.

A share link is a signed, timestamped token naming one run (one node's log). It opens that log
without signing in until ATELIER_TRAINING_LOG_SHARE_SECONDS (1 h) have passed, then answers 404
like any unknown URL; it grants nothing else. Logs are read through the run engine's reader, so
S3 storage and a still-running node work the same way.
"""
from __future__ import annotations

import tempfile
import zipfile
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.runtime.downloads import file_body
from apps.runtime.logstream import open_log

from . import charts, selectors

SHARE_SALT = "atelier.training.log-share"
# Copy buffer of the zip download: a log of any size goes through in pieces of this many bytes.
ZIP_CHUNK = 1 << 20


def _node(job, rank: int):
    run = next((r for r in selectors.job_runs(job) if r.node_rank == int(rank)), None)
    if run is None:
        raise Http404("No such node.")
    return run


def _log_response(request, run, *, filename: str, inline: bool) -> StreamingHttpResponse:
    response = StreamingHttpResponse(file_body(request, open_log(run)), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def log_filename(job, rank: int) -> str:
    """`<job>-worker-<i>.log`, the per-node log file name."""
    return f"{job.name}-worker-{rank}.log"


@login_required
@require_GET
def node_log(request, pk, rank):
    """One node's whole log: a download, or shown in the browser with ?view=full (the "Full log" link)."""
    job = selectors.training_job_get_for_user(request.user, pk)
    run = _node(job, rank)
    return _log_response(request, run, filename=log_filename(job, run.node_rank),
                         inline=request.GET.get("view") == "full")


@login_required
@require_GET
def logs_zip(request, pk):
    """Every node's log in one zip (`<job>-logs.zip` holding `<job>-worker-<i>.log`)."""
    job = selectors.training_job_get_for_user(request.user, pk)
    runs = list(selectors.job_runs(job))
    if not runs:
        raise Http404("The job has not started any node yet.")
    # Spooled to disk past 16 MiB: large logs never sit in the web process's memory whole.
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for run in runs:
            with archive.open(log_filename(job, run.node_rank), "w", force_zip64=True) as target:
                fh = open_log(run)
                if fh is None:
                    continue
                with fh:
                    while chunk := fh.read(ZIP_CHUNK):
                        target.write(chunk)
    size = spool.seek(0, 2)
    spool.seek(0)
    response = StreamingHttpResponse(file_body(request, spool), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{job.name}-logs.zip"'
    response["Content-Length"] = str(size)
    return response


def share_token_make(run) -> str:
    """A signed token for one run's log; `share_token_run` accepts it for ATELIER_TRAINING_LOG_SHARE_SECONDS."""
    return signing.dumps({"run": run.pk}, salt=SHARE_SALT, compress=True)


def share_token_run(token: str):
    """The run a share token names, or Http404 when it is forged, expired or the run is gone."""
    from apps.runtime.models import Run

    try:
        data = signing.loads(token, salt=SHARE_SALT, max_age=settings.ATELIER_TRAINING_LOG_SHARE_SECONDS)
    except signing.BadSignature:  # SignatureExpired is a BadSignature: both read as "no such page"
        raise Http404("This log link is invalid or has expired.") from None
    run = Run.objects.filter(pk=data.get("run"), owner_type="training.trainingjob").first()
    if run is None:
        raise Http404("This log link is invalid or has expired.")
    return run


@login_required
@require_POST
def log_share(request, pk, rank):
    """Make a share link for one node's log (needs trainjob:view); answers {url, expires_at}.

    Audited: the link lets anyone holding it read the log without an account until it expires."""
    job = selectors.training_job_get_for_user(request.user, pk)
    require_perm(request.user, job.workspace, "trainjob:view")
    run = _node(job, rank)
    audit_record(actor=request.user, action="trainjob:share_log", obj=job,
                 detail={"node": run.task_name, "expires_in_seconds": settings.ATELIER_TRAINING_LOG_SHARE_SECONDS})
    url = request.build_absolute_uri(reverse("training:shared_log", args=[share_token_make(run)]))
    expires = timezone.now() + timedelta(seconds=settings.ATELIER_TRAINING_LOG_SHARE_SECONDS)
    return JsonResponse({"url": url, "expires_at": expires.isoformat(), "node": run.task_name,
                         "expires_in_seconds": settings.ATELIER_TRAINING_LOG_SHARE_SECONDS})


@require_GET
def shared_log(request, token):
    """The log a share link names, shown as text without signing in; 404 once the link expired."""
    from .models import TrainingJob

    run = share_token_run(token)
    job = TrainingJob.objects.filter(pk=run.owner_id).only("name").first()
    if job is None:
        raise Http404("This log link is invalid or has expired.")
    response = _log_response(request, run, filename=log_filename(job, run.node_rank), inline=True)
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


def resource_nodes(job, runs) -> list[dict]:
    """Per node: its label, worker and the usage figure of the last ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS."""
    from apps.runtime.models import RunSample

    since = timezone.now() - timedelta(hours=settings.ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS)
    nodes = []
    for run in runs:
        # Newest 20 000 points per node (about 2.3 days at the default 10 s): bounded page size.
        samples = list(RunSample.objects.filter(run=run, at__gte=since).order_by("-at")[:20000])[::-1]
        nodes.append({"rank": run.node_rank, "label": run.task_name,
                      "worker": run.worker.hostname if run.worker_id and run.worker else "",
                      "count": len(samples), "figure": charts.run_usage_figure(samples, title=run.task_name)})
    return nodes


@login_required
@require_GET
def job_resources(request, pk):
    """The Resources tab's data as JSON, polled by the page while the tab is open."""
    job = selectors.training_job_get_for_user(request.user, pk)
    runs = list(selectors.job_runs(job))
    return JsonResponse({"status": job.status, "nodes": resource_nodes(job, runs)})
