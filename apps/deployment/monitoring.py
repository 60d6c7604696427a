"""Monitoring: call statistics from the gateway, instance resource metrics, alarm rules and the
retention of events (seed-06 §8.6, checklist items 37–40).

Calls are counted per service, version and minute (`CallStat`); an instance's CPU and memory
use come from the run engine's samples of its process tree (`RunSample`, % of its flavor), or
else from the `cpu_usage`/`mem_usage` lines its model server prints every
ATELIER_DEPLOYMENT_METRIC_SECONDS (run-engine `Metric` rows); a custom image's container
reports its own (cgroup) readings through its launcher. Alarm rules are evaluated each
minute over their period; crossing the threshold raises an `Alarm` and a service event,
coming back clears it.
"""
from __future__ import annotations

import bisect
import json
import logging
import urllib.request
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.models import Event
from apps.core.permissions import require_perm
from apps.core.services import audit_record, event_add

from .choices import AlarmMetric, AlarmState, Comparison
from .models import AiAppVersion, Alarm, AlarmRule, CallStat, InferenceService

logger = logging.getLogger(__name__)

# Upper edges of the latency histogram (ms); the last bucket counts everything slower.
LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 40000]
PERIODS = (1, 5, 15, 60)
RANGES = {"1h": 60, "3h": 180, "12h": 720}


def bucket_index(latency_ms: float) -> int:
    return bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)


def percentile_from_buckets(buckets: list[int], pct: float) -> float | None:
    """The bucket edge at which `pct` percent of calls are at or below (None without calls)."""
    total = sum(buckets)
    if not total:
        return None
    needed = pct / 100 * total
    running = 0
    for index, count in enumerate(buckets):
        running += count
        if running >= needed:
            return float(LATENCY_BUCKETS_MS[index]) if index < len(LATENCY_BUCKETS_MS) else float(LATENCY_BUCKETS_MS[-1])
    return float(LATENCY_BUCKETS_MS[-1])


@transaction.atomic
def stats_flush(pending: dict) -> int:
    """Add buffered gateway counts {(service, version id, label, epoch minute): counters} to CallStat."""
    services = set(InferenceService.objects.filter(pk__in={k[0] for k in pending}).values_list("pk", flat=True))
    services = {str(pk) for pk in services}
    versions = set(AiAppVersion.objects.filter(pk__in={k[1] for k in pending}).values_list("pk", flat=True))
    touched = 0
    for (service_id, version_id, label, minute), (total, ok, failed, lat_sum, lat_max, buckets) in pending.items():
        if service_id not in services:  # deleted meanwhile: its statistics went with it
            continue
        at = datetime.fromtimestamp(minute * 60, tz=dt_timezone.utc)
        row, _created = CallStat.objects.select_for_update().get_or_create(
            service_id=service_id, version_label=label, minute=at,
            defaults={"model_version_id": version_id if version_id in versions else None,
                      "latency_buckets": [0] * (len(LATENCY_BUCKETS_MS) + 1)})
        row.total += total
        row.success += ok
        row.failed += failed
        row.latency_sum_ms += lat_sum
        row.latency_max_ms = max(row.latency_max_ms, lat_max)
        old = row.latency_buckets or [0] * len(buckets)
        row.latency_buckets = [a + b for a, b in zip(old, buckets)]
        row.save()
        touched += 1
    return touched


def call_series(service: InferenceService, *, minutes: int = 60, now=None) -> dict:
    """Per-minute calls of the last `minutes`, per version label and for the whole service.

    Returns {"minutes": [datetime…], "versions": {label: {"total": […], "success", "failed",
    "latency_ms", "p95_ms"}}, "service": {same keys}} with every minute present (0 when idle).
    """
    now = now or timezone.now()
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    axis = [start + timedelta(minutes=i) for i in range(minutes)]
    index = {at: i for i, at in enumerate(axis)}
    rows = CallStat.objects.filter(service=service, minute__gte=start, minute__lte=end).order_by("minute")

    def blank():
        return {"total": [0] * minutes, "success": [0] * minutes, "failed": [0] * minutes,
                "latency_ms": [None] * minutes, "p95_ms": [None] * minutes, "_buckets": [None] * minutes,
                "_sum": [0.0] * minutes}

    versions: dict[str, dict] = {}
    whole = blank()
    for row in rows:
        i = index.get(row.minute)
        if i is None:
            continue
        for series in (versions.setdefault(row.version_label, blank()), whole):
            series["total"][i] += row.total
            series["success"][i] += row.success
            series["failed"][i] += row.failed
            series["_sum"][i] += row.latency_sum_ms
            buckets = series["_buckets"][i] or [0] * len(row.latency_buckets)
            series["_buckets"][i] = [a + b for a, b in zip(buckets, row.latency_buckets)]
    for series in [*versions.values(), whole]:
        for i in range(minutes):
            if series["total"][i]:
                series["latency_ms"][i] = round(series["_sum"][i] / series["total"][i], 2)
                series["p95_ms"][i] = percentile_from_buckets(series["_buckets"][i], 95)
        del series["_buckets"], series["_sum"]
    return {"minutes": axis, "versions": versions, "service": whole}


def call_totals(service: InferenceService, *, minutes: int = 60) -> dict:
    since = timezone.now() - timedelta(minutes=minutes)
    agg = CallStat.objects.filter(service=service, minute__gte=since).aggregate(
        total=Sum("total"), success=Sum("success"), failed=Sum("failed"), latency=Sum("latency_sum_ms"))
    total = agg["total"] or 0
    return {"total": total, "success": agg["success"] or 0, "failed": agg["failed"] or 0,
            "latency_ms": round(agg["latency"] / total, 2) if total else None}


# The run engine's own samples of an instance's process tree (psutil, as % of its flavor), by metric.
SAMPLE_FIELDS = {"cpu_usage": "cpu_percent", "mem_usage": "memory_percent", "gpu_util": "gpu_percent",
                 "gpu_mem_usage": "gpu_memory_percent"}


# What the container launcher reports of a custom image's container (cgroup readings), and the
# usage metric each becomes once divided by what the run's flavor grants.
CONTAINER_METRICS = {"container_cpu_cores": "cpu_usage", "container_memory_mb": "mem_usage"}


def usage_points(run_ids, since) -> list[tuple[int, str, datetime, float]]:
    """(run id, metric, time, %) of the given instance runs since `since`, oldest first.

    The run engine samples every run's process tree against its flavor, so custom commands get
    the same metrics as the model server; a run without samples (an engine that does not sample)
    falls back to the `ATELIER_METRIC` lines the model server prints. For a custom image that
    tree is only the launcher and the `docker` client, so CPU and memory come from the
    container's own readings the launcher prints instead, as shares of the flavor.
    """
    from apps.runtime.models import Metric, Run, RunSample

    run_ids = list(run_ids)
    contained = _container_points(Metric, Run, run_ids, since)
    points = list(contained)
    contained_runs = {p[0] for p in contained}
    sampled = set()
    for row in (RunSample.objects.filter(run_id__in=run_ids, at__gte=since).order_by("at")
                .values("run_id", "at", *SAMPLE_FIELDS.values())):
        sampled.add(row["run_id"])
        for metric, field in SAMPLE_FIELDS.items():
            if row[field] is None or (row["run_id"] in contained_runs and metric in CONTAINER_METRICS.values()):
                continue
            points.append((row["run_id"], metric, row["at"], float(row[field])))
    rest = [pk for pk in run_ids if pk not in sampled]
    if rest:
        for metric in (Metric.objects.filter(run_id__in=rest, name__in=SAMPLE_FIELDS, created_at__gte=since)
                       .order_by("created_at")):
            points.append((metric.run_id, metric.name, metric.created_at, float(metric.value)))
    points.sort(key=lambda p: p[2])
    return points


def _container_points(Metric, Run, run_ids, since) -> list[tuple[int, str, datetime, float]]:
    """CPU and memory use (% of the flavor) of container instances, from the launcher's metric lines."""
    rows = list(Metric.objects.filter(run_id__in=run_ids, name__in=CONTAINER_METRICS, created_at__gte=since)
                .values_list("run_id", "name", "created_at", "value"))
    if not rows:
        return []
    grants = {pk: (cpus, memory_mb) for pk, cpus, memory_mb in
              Run.objects.filter(pk__in={r[0] for r in rows}).values_list("pk", "flavor__cpus", "flavor__memory_mb")}
    points = []
    for run_id, name, at, value in rows:
        cpus, memory_mb = grants.get(run_id, (None, None))
        if name == "container_cpu_cores":
            points.append((run_id, "cpu_usage", at, round(100.0 * value / max(1, cpus or 1), 2)))
        elif memory_mb:
            points.append((run_id, "mem_usage", at, round(100.0 * value / memory_mb, 2)))
    return points


def resource_series(service: InferenceService, *, minutes: int = 60) -> dict[str, dict[str, list]]:
    """CPU, memory and GPU use (%) per instance over the last `minutes`: {metric: {instance label: [(t, v)]}}."""
    since = timezone.now() - timedelta(minutes=minutes)
    out: dict[str, dict[str, list]] = {name: {} for name in SAMPLE_FIELDS}
    instances = service.instances.select_related("model_version__app")
    labels = {i.run_id: f"#{i.pk} {i.model_version.label if i.model_version else ''}".strip() for i in instances}
    for run_id, metric, at, value in usage_points(labels, since):
        out[metric].setdefault(labels[run_id], []).append((at, value))
    return out


# The metrics of seed-06 §10.1 and their units; NPU metrics exist for parity and have no data here.
QUERY_METRICS = {"cpu_usage": "%", "mem_usage": "%", "gpu_util": "%", "gpu_mem_usage": "%", "npu_util": "%",
                 "npu_mem_usage": "%", "successfully_called_times": "count/min", "failed_called_times": "count/min",
                 "total_called_times": "count/min"}
CALL_FIELDS = {"successfully_called_times": "success", "failed_called_times": "failed", "total_called_times": "total"}


def metric_query(service: InferenceService, model_version, metric: str, since: datetime,
                 until: datetime) -> list[dict]:
    """Per-minute datapoints of one metric of one version of a service (both dimensions of
    seed-06 §10.1): [{"timestamp": epoch ms of the minute, "average": value}], oldest first.
    Call counts are the gateway's; usage is the mean over the version's instances in that minute."""
    points: dict[datetime, list[float]] = {}
    if metric in CALL_FIELDS:
        field = CALL_FIELDS[metric]
        for row in CallStat.objects.filter(service=service, model_version=model_version, minute__gte=since,
                                           minute__lte=until).values("minute", field):
            points.setdefault(row["minute"], []).append(float(row[field]))
        values = {minute: sum(v) for minute, v in points.items()}
    else:
        runs = service.instances.filter(model_version=model_version).values_list("run_id", flat=True)
        for _run, name, at, value in usage_points(runs, since):
            if name == metric and at <= until:
                points.setdefault(at.replace(second=0, microsecond=0), []).append(value)
        values = {minute: round(sum(v) / len(v), 3) for minute, v in points.items()}
    return [{"timestamp": int(minute.timestamp() * 1000), "average": value} for minute, value in sorted(values.items())]


def resource_allocation(service: InferenceService) -> list[dict]:
    """Per service version: what its instances are granted (cores, memory, GPUs of the flavor ×
    instances) and what they use now (mean of each ready instance's latest sample), for the
    Monitoring tab's "available vs used" table (seed-06 §10, item 40)."""
    rows = []
    instances = list(service.instances.filter(draining_since__isnull=True).select_related("run"))
    usage = instance_usage_latest(i.run_id for i in instances)
    for sv in service.versions.select_related("model_version__app", "flavor"):
        count, flavor = sv.instance_count, sv.flavor
        mine = [usage[i.run_id] for i in instances if i.model_version_id == sv.model_version_id and i.run_id in usage]

        def used(metric, granted):
            values = [u[metric] for u in mine if metric in u]
            return round(sum(values) / len(values) / 100 * granted, 2) if values and granted else None

        cpus, memory_gb, gpus = count * flavor.cpus, round(count * flavor.memory_mb / 1024, 2), count * flavor.gpus
        rows.append({"label": sv.model_version.label, "instances": count, "flavor": flavor.name,
                     "cpu": (cpus, used("cpu_usage", cpus)), "memory": (memory_gb, used("mem_usage", memory_gb)),
                     "gpu": (gpus, used("gpu_util", gpus)) if gpus else None})
    return rows


def instance_usage_latest(run_ids) -> dict[int, dict[str, float]]:
    """The latest CPU and memory use (%) of each instance run in the last 10 minutes."""
    latest: dict[int, dict[str, float]] = {}
    for run_id, metric, _at, value in usage_points(run_ids, timezone.now() - timedelta(minutes=10)):
        latest.setdefault(run_id, {})[metric] = round(value, 1)
    return latest


# ---------------------------------------------------------------------------------------------
# Alarm rules
# ---------------------------------------------------------------------------------------------


def _rule_clean(*, service, model_version, name, metric, comparison, threshold, period_minutes, notify,
                notify_target) -> dict:
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not 1 <= len(name) <= 64:
        errors["name"] = ["Give the rule a name of 1–64 characters."]
    if metric not in AlarmMetric.values:
        errors["metric"] = [f"Choose one of: {', '.join(AlarmMetric.labels)}."]
    if comparison not in Comparison.values:
        errors["comparison"] = ["Choose >, >=, < or <=."]
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        errors["threshold"] = ["The threshold is a number."]
    try:
        period_minutes = int(period_minutes)
        if period_minutes not in PERIODS:
            raise ValueError
    except (TypeError, ValueError):
        errors["period_minutes"] = [f"The period is one of {', '.join(str(p) for p in PERIODS)} minutes."]
    if model_version is not None and not service.versions.filter(model_version=model_version).exists():
        errors["model_version"] = ["Choose a version the service deploys, or none for the whole service."]
    notify_target = (notify_target or "").strip()
    if notify and not notify_target:
        errors["notify_target"] = ["Give e-mail addresses (comma-separated) or a webhook URL to notify."]
    if errors:
        raise ValidationError(errors)
    return dict(name=name, metric=metric, comparison=comparison, threshold=threshold, period_minutes=period_minutes,
                notify=bool(notify), notify_target=notify_target, model_version=model_version)


@transaction.atomic
def alarm_rule_create(*, user, service: InferenceService, name: str, metric: str, comparison: str, threshold,
                      period_minutes=1, model_version=None, notify: bool = False, notify_target: str = "") -> AlarmRule:
    """Add an alarm rule on the service or one of its versions (service:update)."""
    require_perm(user, service.workspace, "service:update")
    fields = _rule_clean(service=service, model_version=model_version, name=name, metric=metric,
                         comparison=comparison, threshold=threshold, period_minutes=period_minutes, notify=notify,
                         notify_target=notify_target)
    rule = AlarmRule.objects.create(workspace=service.workspace, service=service, created_by=user, **fields)
    event_add(obj=service, message=f'Alarm rule "{rule.name}" added: {rule.get_metric_display()} '
                                   f"{rule.comparison} {rule.threshold:g} over {rule.period_minutes} min.")
    audit_record(actor=user, action="service:update", obj=service, detail={"alarm_rule": rule.name})
    return rule


@transaction.atomic
def alarm_rule_delete(*, user, rule: AlarmRule) -> None:
    require_perm(user, rule.workspace, "service:update")
    name, service = rule.name, rule.service
    rule.delete()
    event_add(obj=service, message=f'Alarm rule "{name}" deleted.')
    audit_record(actor=user, action="service:update", obj=service, detail={"alarm_rule_deleted": name})


def metric_value(rule: AlarmRule, *, now=None) -> float | None:
    """The rule's metric over its period: calls per minute (mean), mean latency, or mean usage %."""
    now = now or timezone.now()
    end = now.replace(second=0, microsecond=0)
    since = end - timedelta(minutes=rule.period_minutes)
    if rule.metric in (AlarmMetric.CPU, AlarmMetric.MEMORY, AlarmMetric.GPU, AlarmMetric.GPU_MEMORY):
        runs = rule.service.instances.all()
        if rule.model_version_id:
            runs = runs.filter(model_version_id=rule.model_version_id)
        values = [value for _run, metric, _at, value in
                  usage_points(runs.values_list("run_id", flat=True), now - timedelta(minutes=rule.period_minutes))
                  if metric == rule.metric]
        return sum(values) / len(values) if values else None
    stats = CallStat.objects.filter(service=rule.service, minute__gte=since, minute__lt=end)
    if rule.model_version_id:
        stats = stats.filter(model_version_id=rule.model_version_id)
    agg = stats.aggregate(total=Sum("total"), success=Sum("success"), failed=Sum("failed"), lat=Sum("latency_sum_ms"))
    if rule.metric == AlarmMetric.LATENCY:
        return round(agg["lat"] / agg["total"], 3) if agg["total"] else None
    field = {AlarmMetric.TOTAL: "total", AlarmMetric.SUCCESS: "success", AlarmMetric.FAILED: "failed"}[rule.metric]
    return (agg[field] or 0) / rule.period_minutes


def _crossed(rule: AlarmRule, value: float) -> bool:
    return {">": value > rule.threshold, ">=": value >= rule.threshold, "<": value < rule.threshold,
            "<=": value <= rule.threshold}[rule.comparison]


def alarms_evaluate(*, now=None) -> dict[str, int]:
    """Beat task body: evaluate every enabled rule of a running service; raise and clear alarms."""
    from .choices import SERVING

    now = now or timezone.now()
    counts = {"evaluated": 0, "raised": 0, "cleared": 0}
    rules = AlarmRule.objects.filter(enabled=True, service__status__in=SERVING).select_related("service",
                                                                                                 "model_version__app")
    for rule in rules:
        try:
            with transaction.atomic():
                outcome = _evaluate(rule, now)
        except Exception:
            logger.exception("alarm rule %s failed to evaluate", rule.pk)
            continue
        counts["evaluated"] += 1
        if outcome:
            counts[outcome] += 1
    return counts


def _evaluate(rule: AlarmRule, now) -> str | None:
    value = metric_value(rule, now=now)
    AlarmRule.objects.filter(pk=rule.pk).update(last_value=value, last_evaluated_at=now)
    if value is None:
        return None
    scope = f" of {rule.model_version.label}" if rule.model_version_id else ""
    if _crossed(rule, value) and rule.state == AlarmState.OK:
        message = (f'Alarm "{rule.name}": {rule.get_metric_display()}{scope} is {value:g} '
                   f"({rule.comparison} {rule.threshold:g} over {rule.period_minutes} min).")
        AlarmRule.objects.filter(pk=rule.pk).update(state=AlarmState.ALARM)
        Alarm.objects.create(rule=rule, service=rule.service, raised_at=now, value=value, message=message)
        event_add(obj=rule.service, message=message, level=EventLevel.WARNING)
        if rule.notify:
            transaction.on_commit(lambda: _notify(rule, message))
        return "raised"
    if not _crossed(rule, value) and rule.state == AlarmState.ALARM:
        AlarmRule.objects.filter(pk=rule.pk).update(state=AlarmState.OK)
        Alarm.objects.filter(rule=rule, cleared_at__isnull=True).update(cleared_at=now)
        event_add(obj=rule.service, message=f'Alarm "{rule.name}" cleared: {rule.get_metric_display()}{scope} is '
                                            f"{value:g}.")
        return "cleared"
    return None


def _notify(rule: AlarmRule, message: str) -> None:
    """E-mail the addresses, or POST JSON to the webhook URL; a failure becomes a service event."""
    target = rule.notify_target
    try:
        if target.startswith(("http://", "https://")):
            data = json.dumps({"service": str(rule.service_id), "rule": rule.name, "message": message}).encode()
            request = urllib.request.Request(target, data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - an address the user configured
                pass
        else:
            send_mail(f"[Atelier] {message[:120]}", message, None, [a.strip() for a in target.split(",") if a.strip()])
    except Exception as exc:
        event_add(obj=rule.service, level=EventLevel.ERROR,
                  message=f'Alarm "{rule.name}": notifying {target} failed: {exc}')


def events_cleanup(*, now=None) -> dict[str, int]:
    """Delete AI-application events older than 3 months and service events older than 1 month."""
    from django.contrib.contenttypes.models import ContentType

    now = now or timezone.now()
    deleted = {}
    for model, days in ((AiAppVersion, settings.ATELIER_DEPLOYMENT_MODEL_EVENT_DAYS),
                        (InferenceService, settings.ATELIER_DEPLOYMENT_SERVICE_EVENT_DAYS)):
        kind = ContentType.objects.get_for_model(model)
        count, _ = Event.objects.filter(content_type=kind, created_at__lt=now - timedelta(days=days)).delete()
        deleted[model._meta.model_name] = count
    return deleted
