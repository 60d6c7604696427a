"""Edge services (deploy onto a node or pool, delete, react to instance runs), load balancers
and access ports. Edge services have no start/stop/restart: ModelArts offers none for
deployments on its edge nodes and pools (seed-06 §5), so a service is deployed, then deleted."""
from __future__ import annotations

import ipaddress
import json
import posixpath
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.choices import EventLevel
from apps.core.permissions import require_perm
from apps.core.services import audit_record, event_add
from apps.runtime.callbacks import RunChange
from apps.runtime.choices import LIVE_STATUSES, RunStatus
from apps.runtime.models import Flavor, Run
from apps.runtime.logstream import log_read
from apps.runtime.services import run_node_stop, run_stop, run_submit

from ..choices import DeployType, ModelStatus, RequestMode
from ..models import AiAppVersion
from ..serving import instance_command
from .choices import EdgeServiceStatus, MatchType, VolumeType
from .models import AccessPort, EdgeInstance, EdgeNode, EdgePool, EdgeService, LoadBalancer
from .services import _description, _int_in, _name
from .volumes import EXIT_VOLUME, LOG_MARKER as VOLUME_LOG_MARKER

OWNER_TYPE = "deployment.edgeservice"
RULE_PATH_RE = re.compile(r"^/[A-Za-z0-9*/\-]{0,254}$")
VOLUME_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_VOLUMES = 8
MAX_INSTANCES = 16
# seed-06 §7.1 (Table 8-23): at most 10 instances per deploy or modify are recommended, to avoid throttling.
RECOMMENDED_INSTANCES = 10
MAX_STREAMS = 64  # video streams one instance processes concurrently (the spec names no bound)
# An NFS source: host name, IPv4 or [IPv6], a colon, then the absolute export path.
NFS_SOURCE_RE = re.compile(r"^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                           r":(?P<path>/[^\s]*)$")
MEDIA = ("disk", "memory")


def _port_mappings(raw, *, node: EdgeNode | None, instances: int, exclude_service=None) -> list[dict]:
    """At most one mapping (an instance listens on one port): container port, host NIC address and a
    fixed host port or an automatic one from a range. A fixed port serves one instance per node."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, list) or len(raw) > 1:
        raise ValidationError({"port_mappings": ["Give at most one port mapping: an instance listens on one port."]})
    row = raw[0] if isinstance(raw[0], dict) else {}
    container = _int_in(row.get("container_port"), "port_mappings", 1, 65535, "The container port")
    host_ip = (row.get("host_ip") or "0.0.0.0").strip()
    try:
        ipaddress.ip_address(host_ip)
    except ValueError:
        raise ValidationError({"port_mappings": [f"Host NIC address {host_ip!r} is not an IP address."]}) from None
    used = set()
    if node is not None:
        others = EdgeInstance.objects.filter(run__pool=node.pool, run__status__in=LIVE_STATUSES,
                                             host_port__isnull=False)
        if exclude_service is not None:
            others = others.exclude(service=exclude_service)
        used = set(others.values_list("host_port", flat=True))
    if row.get("host_port") not in (None, ""):
        port = _int_in(row.get("host_port"), "port_mappings", 1, 65535, "The host port")
        if instances > 1 and node is not None:
            raise ValidationError({"port_mappings": [f"Host port {port} is fixed: one node can run one instance on "
                                                     "it. Use 1 instance or an automatic port range."]})
        if port in used:
            raise ValidationError({"port_mappings": [f"Host port {port} is already used by another edge service "
                                                     "on this node."]})
        return [{"container_port": container, "host_ip": host_ip, "host_port": port}]
    low = _int_in(row.get("port_min"), "port_mappings", 1, 65535, "The lowest automatic host port")
    high = _int_in(row.get("port_max"), "port_mappings", 1, 65535, "The highest automatic host port")
    if low > high:
        raise ValidationError({"port_mappings": [f"The automatic port range {low}–{high} is empty (lowest > highest)."]})
    free = [p for p in range(low, high + 1) if p not in used]
    if len(free) < instances:
        raise ValidationError({"port_mappings": [f"The range {low}–{high} has {len(free)} free ports for "
                                                 f"{instances} instances."]})
    return [{"container_port": container, "host_ip": host_ip, "port_min": low, "port_max": high,
             "host_ports": free[:instances]}]


VOLUMES_SCRIPT = Path(__file__).with_name("volumes.py")
VOLUME_REASON_PREFIX = "Volume "  # volumes.py's errors start so; a run ended with one is not restarted


def _volumes(raw) -> list[dict]:
    """Host-path and temp-path volumes: a DNS-label name, an absolute mount path inside the instance
    and, for host paths, an absolute normalised path on the node."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, list) or len(raw) > MAX_VOLUMES:
        raise ValidationError({"volumes": [f"Give a list of at most {MAX_VOLUMES} volumes."]})
    out, names, mounts = [], set(), set()
    for index, row in enumerate(raw, start=1):
        where = f"Volume {index}"
        row = row if isinstance(row, dict) else {}
        name = str(row.get("name") or "")
        if not VOLUME_NAME_RE.match(name):
            raise ValidationError({"volumes": [f"{where}: the name uses 1–63 lowercase letters, digits and -, "
                                               "starting and ending with a letter or digit."]})
        if name in names:
            raise ValidationError({"volumes": [f"{where}: the name {name!r} is used twice."]})
        kind = row.get("type")
        if kind not in VolumeType.values:
            raise ValidationError({"volumes": [f"{where}: the type is host_path, temp_path or nfs."]})
        mount = str(row.get("mount_path") or "")
        if not mount.startswith("/") or ".." in mount.split("/") or posixpath.normpath(mount) != mount or len(mount) > 255:
            raise ValidationError({"volumes": [f"{where}: the mount path must be an absolute, normalised path "
                                               "without '..' (at most 255 characters)."]})
        if mount in mounts:
            raise ValidationError({"volumes": [f"{where}: {mount} is mounted twice."]})
        item = {"name": name, "type": kind, "mount_path": mount, "read_only": bool(row.get("read_only"))}
        if kind == VolumeType.TEMP_PATH:
            medium = row.get("medium") or "disk"
            if medium not in MEDIA:
                raise ValidationError({"volumes": [f"{where}: the medium of a temp path is disk or memory."]})
            item["medium"] = medium
        if kind == VolumeType.NFS:
            source = str(row.get("source") or "").strip()
            match = NFS_SOURCE_RE.match(source)
            export = match.group("path") if match else ""
            if not match or ".." in export.split("/") or posixpath.normpath(export) != export or len(source) > 500:
                raise ValidationError({"volumes": [f"{where}: the NFS source is server:/export, e.g. "
                                                   "192.168.0.10:/var/docker/hilens (an absolute, normalised "
                                                   "export path without '..')."]})
            item["source"] = source
        if kind == VolumeType.HOST_PATH:
            host = str(row.get("host_path") or "")
            if not host.startswith("/") or ".." in host.split("/") or posixpath.normpath(host) != host or host == "/":
                raise ValidationError({"volumes": [f"{where}: the host path must be an absolute, normalised path "
                                                   "on the node, not / and without '..'."]})
            item["host_path"] = host
        names.add(name)
        mounts.add(mount)
        out.append(item)
    return out


def _async_start_params(raw, version: AiAppVersion) -> dict[str, str]:
    """The start parameters an asynchronous application defines: unknown names are refused,
    required ones must be given, the others default to the application's value."""
    given = {} if raw in (None, "") else raw
    if not isinstance(given, dict):
        raise ValidationError({"start_params": ["Give start parameters as NAME: value pairs."]})
    defined = {p["name"]: p for p in version.start_params}
    unknown = sorted(set(map(str, given)) - set(defined))
    if unknown:
        offered = ", ".join(defined) or "none"
        raise ValidationError({"start_params": [f"{unknown[0]} is not a start parameter of {version.label} "
                                                f"(it defines: {offered})."]})
    out = {}
    for name, spec in defined.items():
        value = str(given[name]) if name in given else None
        if spec["required"] and not value:
            raise ValidationError({"start_params": [f"{name} is required by {version.label}"
                                                    + (f" ({spec['description']})" if spec["description"] else "")
                                                    + "."]})
        out[name] = value if value is not None else spec["default"]
    return out


def _stream_count(raw, *, is_async: bool) -> int | None:
    if raw in (None, ""):
        if is_async:
            raise ValidationError({"stream_count": ["Give the number of video streams each instance processes "
                                                    f"concurrently (1–{MAX_STREAMS})."]})
        return None
    if not is_async:
        raise ValidationError({"stream_count": ["The number of streams applies to asynchronous AI applications "
                                                "only."]})
    return _int_in(raw, "stream_count", 1, MAX_STREAMS, "The number of streams")


def _start_params(raw) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ValidationError({"start_params": ["Give start parameters as NAME: value pairs."]})
    out = {}
    for name, value in raw.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", str(name)) or str(name).startswith("ATELIER_") \
                or name == "PORT":
            raise ValidationError({"start_params": [f"{name!r} is not a usable variable name (letters, digits, _; "
                                                    "not PORT or ATELIER_…)."]})
        out[str(name)] = str(value)
    return out


@transaction.atomic
def edge_service_deploy(*, user, workspace, name: str, model_version: AiAppVersion, flavor: Flavor,
                        node: EdgeNode | None = None, edge_pool: EdgePool | None = None, instance_count=1,
                        description: str = "", port_mappings=None, volumes=None, start_params=None,
                        stream_count=None) -> EdgeService:
    """Deploy a Normal AI-application version made for edge onto a schedulable node or a pool with one.

    Each instance is a long-lived run on the target's run-engine pool; with a port mapping it
    listens on its host port. At most ATELIER_EDGE_MAX_SERVICES per workspace.

    Asynchronous applications (seed-06 §7.1, Table 8-23) need `stream_count` (1–64) and take the
    start parameters the application defines (defaults filled in, required ones enforced); more
    than RECOMMENDED_INSTANCES instances deploy with a warning event. Every instance gets its start
    parameters as environment variables, plus EDGE_START_PARAMS (JSON) and EDGE_STREAM_COUNT.
    """
    require_perm(user, workspace, "service:create")
    name = _name(name)
    description = _description(description)
    if (node is None) == (edge_pool is None):
        raise ValidationError({"target": ["Choose an edge node or an edge pool (exactly one)."]})
    target = node or edge_pool
    if target.workspace_id != workspace.pk or model_version.app.workspace_id != workspace.pk:
        raise ValidationError({"target": ["The target and the AI application must be in this workspace."]})
    if model_version.status != ModelStatus.NORMAL:
        raise ValidationError({"model_version": [f"{model_version.label} is "
                                                 f"{model_version.get_status_display().lower()}; only Normal "
                                                 "versions can be deployed."]})
    if DeployType.EDGE not in model_version.deploy_types:
        raise ValidationError({"model_version": [f"{model_version.label} was not created for edge services "
                                                 "(its deploy types do not include Edge)."]})
    count = _int_in(instance_count, "instance_count", 1, MAX_INSTANCES, "The instance count")
    if node is not None and not node.schedulable:
        why = ("not activated (or its activation expired)" if node.current_status() == "RUNNING"
               else f"{node.current_status()}")
        raise ValidationError({"target": [f'Edge node "{node.name}" cannot take services: it is {why}.']})
    if edge_pool is not None and not any(n.schedulable for n in edge_pool.nodes.all()):
        raise ValidationError({"target": [f'Edge pool "{edge_pool.name}" has no running, activated node.']})
    if EdgeService.objects.filter(workspace=workspace).count() >= settings.ATELIER_EDGE_MAX_SERVICES:
        raise ValidationError({"name": [f"This workspace has reached its {settings.ATELIER_EDGE_MAX_SERVICES} edge "
                                        "services; delete one first."]})
    if EdgeService.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'An edge service named "{name}" already exists in this workspace.']})
    is_async = model_version.app.request_mode == RequestMode.ASYNC
    streams = _stream_count(stream_count, is_async=is_async)
    mappings = _port_mappings(port_mappings, node=node, instances=count)
    volumes = _volumes(volumes)
    params = _async_start_params(start_params, model_version) if is_async else _start_params(start_params)
    runtime_pool = target.pool
    runtime_pool.flavors.add(flavor)  # an edge pool offers every flavor; the engine checks capacity
    service = EdgeService.objects.create(
        workspace=workspace, name=name, description=description, node=node, edge_pool=edge_pool,
        model_version=model_version, flavor=flavor, instance_count=count, port_mappings=mappings, volumes=volumes,
        start_params=params, stream_count=streams, created_by=user)
    ports: list[int | None] = [None] * count
    if mappings:
        ports = mappings[0].get("host_ports") or [mappings[0]["host_port"]] * count
    edge_env = {"EDGE_START_PARAMS": json.dumps(params, sort_keys=True)}
    if streams is not None:
        edge_env["EDGE_STREAM_COUNT"] = str(streams)
    argv, health_path, inputs, env = instance_command(model_version, [*params.keys(), *edge_env.keys()])
    if volumes:
        # Links at the mount paths inside the run directory, made on the node before the instance starts.
        argv = ["python", str(VOLUMES_SCRIPT), "--volumes", json.dumps(volumes), "--", *argv]
    for port in ports:
        run_env = {**params, **edge_env, **env}
        if port is not None:
            run_env["PORT"] = str(port)  # the run engine listens on a PORT the run names
        run = run_submit(user=user, workspace=workspace, name=f"edge · {name}", command=argv, flavor=flavor,
                         pool=runtime_pool, job_type="inference", env=run_env, inputs=inputs, long_lived=True,
                         health_path=health_path, max_restarts=settings.ATELIER_DEPLOYMENT_INSTANCE_RESTARTS,
                         owner_type=OWNER_TYPE, owner_id=str(service.pk))[0]
        EdgeInstance.objects.create(service=service, run=run, host_port=port)
    event_add(obj=service, message=f"Deploying {count} instance{'s' if count > 1 else ''} of {model_version.label} "
                                   f"on {'node' if node else 'pool'} {target.name}.")
    if is_async and count > RECOMMENDED_INSTANCES:
        event_add(obj=service, level=EventLevel.WARNING,
                  message=f"{count} instances in one deployment: at most {RECOMMENDED_INSTANCES} are recommended "
                          "per deploy or modify, to avoid throttling.")
    audit_record(actor=user, action="edge_service:create", obj=service, workspace=workspace)
    return service


def _volume_failure(run: Run) -> str:
    """What volumes.py said on the node before the instance could start (its `[edge volumes] Volume …`
    line in the run's log); a generic sentence when the log does not have it."""
    try:
        lines = log_read(run, limit=200).lines
    except Exception:  # an unreadable log must not hide the failure itself
        lines = []
    for line in reversed(lines):
        _, marker, message = line.partition(VOLUME_LOG_MARKER)
        if marker and message.strip().startswith(VOLUME_REASON_PREFIX):
            return message.strip()
    return f"{VOLUME_REASON_PREFIX}setup failed on the node (exit code {EXIT_VOLUME}); see the instance's log."


def _volume_failed(run_id: int) -> None:
    """An instance's volumes could not be realised: retrying cannot create a folder or install an NFS
    client, so the automatic restart (already queued by the engine) is stopped and the run's reason
    becomes the volume error, which `edge_service_refresh` reports as the service's."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return
    reason = _volume_failure(run)[:500]
    with transaction.atomic():
        if run.status in LIVE_STATUSES:
            run_node_stop(run, reason=reason, level=EventLevel.ERROR)
        else:
            Run.objects.filter(pk=run.pk).update(status_reason=reason)


def edge_service_refresh(service: EdgeService) -> str:
    """Running once every instance is ready, abnormal once one failed for good (or could not get its
    volumes), else deploying."""
    runs = list(Run.objects.filter(edge_instance__service=service))
    volume = next((r for r in runs if r.is_terminal and r.status_reason.startswith(VOLUME_REASON_PREFIX)), None)
    if volume is not None:
        status, reason = EdgeServiceStatus.ABNORMAL, volume.status_reason
    elif runs and all(r.status == RunStatus.RUNNING and r.ready_at for r in runs):
        status, reason = EdgeServiceStatus.RUNNING, ""
    elif any(r.status in (RunStatus.FAILED, RunStatus.LOST, RunStatus.STOPPED) and r.restart_count >= r.max_restarts
             for r in runs):
        failed = next(r for r in runs if r.status in (RunStatus.FAILED, RunStatus.LOST, RunStatus.STOPPED))
        status, reason = EdgeServiceStatus.ABNORMAL, failed.status_reason or f"An instance {failed.status}."
    else:
        status, reason = EdgeServiceStatus.DEPLOYING, ""
    if (status, reason) != (service.status, service.status_reason):
        EdgeService.objects.filter(pk=service.pk).update(status=status, status_reason=reason[:1000])
        if status != service.status:
            event_add(obj=service, message=f"Edge service is {EdgeServiceStatus(status).label.lower()}."
                                           + (f" {reason}" if reason else ""))
        service.status, service.status_reason = status, reason
    return status


def edge_service_on_run_change(change: RunChange) -> None:
    """Run-engine callback (registered in DeploymentConfig.ready)."""
    service = EdgeService.objects.filter(pk=change.owner_id).first()
    if service is None:
        return
    if change.kind == "status" and change.status == RunStatus.FAILED and change.exit_code == EXIT_VOLUME:
        _volume_failed(change.run_id)
    edge_service_refresh(service)


@transaction.atomic
def edge_service_delete(*, user, service: EdgeService) -> None:
    """Stop the instances and delete the service; load-balancer rules and access ports naming it go first."""
    require_perm(user, service.workspace, "service:delete")
    if service.access_ports.exists():
        raise ValidationError({"service": [f'"{service.name}" has access ports: delete them first.']})
    used = [lb.name for lb in LoadBalancer.objects.filter(workspace=service.workspace)
            if any(rule.get("service") == service.pk for rule in lb.rules)]
    if used:
        raise ValidationError({"service": [f'Load balancer "{used[0]}" forwards to "{service.name}": '
                                           "delete it or its rule first."]})
    for run in Run.objects.filter(edge_instance__service=service, status__in=LIVE_STATUSES):
        try:
            run_stop(user=user, run=run, reason="The edge service was deleted.")
        except ValidationError:
            pass
    audit_record(actor=user, action="edge_service:delete", obj=service, workspace=service.workspace)
    # Runs stay (their logs and history); the instance rows go with the service.
    service.delete()


# ---------------------------------------------------------------------------------------------
# Load balancers and access ports
# ---------------------------------------------------------------------------------------------


def _rules(raw, workspace, *, node, edge_pool) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError({"rules": ["Add at least one forwarding rule."]})
    out = []
    for index, row in enumerate(raw, start=1):
        where = f"Rule {index}"
        row = row if isinstance(row, dict) else {}
        match = row.get("match")
        if match not in MatchType.values:
            raise ValidationError({"rules": [f"{where}: the match type is prefix, exact or regex."]})
        path = str(row.get("path") or "")
        if not path:
            raise ValidationError({"rules": [f"{where}: the path is required."]})
        if not path.startswith("/"):
            raise ValidationError({"rules": [f"{where}: the path must start with /."]})
        if len(path) > 255:
            raise ValidationError({"rules": [f"{where}: the path is {len(path)} characters; at most 255."]})
        if not RULE_PATH_RE.match(path):
            raise ValidationError({"rules": [f"{where}: the path may only use letters, digits, *, / and -."]})
        if match == MatchType.REGEX:
            try:
                re.compile(path)
            except re.error as exc:
                raise ValidationError({"rules": [f"{where}: the path is not a valid regular expression ({exc})."]}) \
                    from None
        service = EdgeService.objects.filter(workspace=workspace, pk=row.get("service") or 0).first()
        if service is None:
            raise ValidationError({"rules": [f"{where}: choose an edge service of this workspace."]})
        if (node is not None and service.node_id != node.pk) or (edge_pool is not None
                                                                 and service.edge_pool_id != edge_pool.pk):
            raise ValidationError({"rules": [f'{where}: edge service "{service.name}" does not run on this '
                                             "load balancer's target."]})
        port = _int_in(row.get("container_port") or (service.port_mappings[0]["container_port"]
                                                     if service.port_mappings else 8080),
                       "rules", 1, 65535, f"{where}: the container port")
        out.append({"match": match, "path": path, "service": service.pk, "container_port": port})
    return out


@transaction.atomic
def load_balancer_create(*, user, workspace, name: str, listen_port, rules, node: EdgeNode | None = None,
                         edge_pool: EdgePool | None = None, sticky: bool = False,
                         description: str = "") -> LoadBalancer:
    """An HTTP round-robin listener (optionally sticky by client IP) on a node or a pool's masters,
    run by their agents. Listen ports are unique per target."""
    require_perm(user, workspace, "service:create")
    name = _name(name)
    description = _description(description)
    if (node is None) == (edge_pool is None):
        raise ValidationError({"target": ["Choose an edge node or an edge pool (exactly one)."]})
    port = _int_in(listen_port, "listen_port", 1, 65535, "The listen port")
    clash = LoadBalancer.objects.filter(node=node) if node else LoadBalancer.objects.filter(edge_pool=edge_pool)
    if clash.filter(listen_port=port).exists():
        raise ValidationError({"listen_port": [f"Port {port} is already a listen port of another load balancer "
                                               "on this target."]})
    if LoadBalancer.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'A load balancer named "{name}" already exists in this workspace.']})
    rules = _rules(rules, workspace, node=node, edge_pool=edge_pool)
    lb = LoadBalancer.objects.create(workspace=workspace, name=name, description=description, node=node,
                                     edge_pool=edge_pool, listen_port=port, sticky=bool(sticky), rules=rules)
    audit_record(actor=user, action="load_balancer:create", obj=lb, workspace=workspace)
    return lb


@transaction.atomic
def load_balancer_delete(*, user, lb: LoadBalancer) -> None:
    require_perm(user, lb.workspace, "service:delete")
    audit_record(actor=user, action="load_balancer:delete", obj=lb, workspace=lb.workspace)
    lb.delete()


@transaction.atomic
def access_port_create(*, user, workspace, name: str, service: EdgeService, ports) -> AccessPort:
    """A ClusterIP access port of an edge service: ≥ 1 TCP port → container port pairs."""
    require_perm(user, workspace, "service:create")
    name = _name(name)
    if service.workspace_id != workspace.pk:
        raise ValidationError({"service": ["Choose an edge service of this workspace."]})
    if not isinstance(ports, list) or not ports:
        raise ValidationError({"ports": ["Add at least one port configuration."]})
    out = []
    for index, row in enumerate(ports, start=1):
        row = row if isinstance(row, dict) else {}
        if (row.get("protocol") or "TCP") != "TCP":
            raise ValidationError({"ports": [f"Port {index}: only TCP is supported."]})
        out.append({"protocol": "TCP",
                    "port": _int_in(row.get("port"), "ports", 1, 65535, f"Port {index}: the access port"),
                    "container_port": _int_in(row.get("container_port"), "ports", 1, 65535,
                                              f"Port {index}: the container port")})
    if AccessPort.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'An access port named "{name}" already exists in this workspace.']})
    port = AccessPort.objects.create(workspace=workspace, name=name, service=service, ports=out)
    audit_record(actor=user, action="access_port:create", obj=port, workspace=workspace)
    return port


@transaction.atomic
def access_port_delete(*, user, port: AccessPort) -> None:
    require_perm(user, port.workspace, "service:delete")
    audit_record(actor=user, action="access_port:delete", obj=port, workspace=port.workspace)
    port.delete()
