"""REST API of the edge module under /api/v1/deployment/edge/ (included by deployment's api/urls.py).

Users: nodes, pools, edge services, load balancers and access ports (list, create, read,
delete, node actions). Agents: `enroll` (spends a one-time token) and `heartbeat`
(authenticated with the agent key as `Authorization: Agent <key>`); they use no user session.
"""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import workspace_current
from apps.core.api import error_response
from apps.core.permissions import require_perm
from apps.runtime.models import Flavor

from ..models import AiAppVersion
from . import selectors, serving, services


def _workspace(request):
    workspace = workspace_current(request)
    if workspace is None:
        raise exceptions.ValidationError({"workspace": ["You belong to no workspace; join one first."]})
    return workspace


class EdgeNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    activation = serializers.CharField()
    activated_until = serializers.DateTimeField(allow_null=True)
    accelerator = serializers.CharField()
    host = serializers.CharField()
    os = serializers.CharField()
    arch = serializers.CharField()
    agent_version = serializers.CharField()
    upgrade_requested = serializers.BooleanField()
    last_heartbeat = serializers.DateTimeField(allow_null=True)
    edge_pool = serializers.IntegerField(source="edge_pool_id", allow_null=True)
    is_master = serializers.BooleanField()
    log_retention_days = serializers.IntegerField()
    system_log_level = serializers.CharField()
    app_log_level = serializers.CharField()
    log_size_mb = serializers.IntegerField()
    log_file_mb = serializers.IntegerField()
    log_rotate_days = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class EdgeNodeCreateSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    accelerator = serializers.CharField(required=False, default="none")
    log_retention_days = serializers.IntegerField(required=False, default=7)
    system_log_level = serializers.CharField(required=False, default="DEBUG")
    app_log_level = serializers.CharField(required=False, default="DEBUG")
    log_rotate_days = serializers.IntegerField(required=False, default=5)


class EdgePoolSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    max_workers = serializers.IntegerField()
    masters = serializers.SerializerMethodField()
    workers = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_masters(self, pool) -> list[int]:
        return [n.pk for n in pool.nodes.all() if n.is_master]

    def get_workers(self, pool) -> list[int]:
        return [n.pk for n in pool.nodes.all() if not n.is_master]


class EdgeServiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    node = serializers.IntegerField(source="node_id", allow_null=True)
    edge_pool = serializers.IntegerField(source="edge_pool_id", allow_null=True)
    model_version = serializers.IntegerField(source="model_version_id")
    flavor = serializers.CharField(source="flavor.name")
    instance_count = serializers.IntegerField()
    port_mappings = serializers.JSONField()
    volumes = serializers.JSONField()
    start_params = serializers.JSONField()
    stream_count = serializers.IntegerField(allow_null=True)
    request_mode = serializers.CharField(source="model_version.app.request_mode")
    deploy_mode = serializers.SerializerMethodField()
    instances = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_deploy_mode(self, service) -> str:
        return "node" if service.node_id else "pool"

    def get_instances(self, service) -> list[dict]:
        return [{"run": i.run_id, "status": i.run.status, "endpoint": i.run.endpoint, "host_port": i.host_port}
                for i in service.instances.all()]  # prefetched by the list selector


class LoadBalancerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    node = serializers.IntegerField(source="node_id", allow_null=True)
    edge_pool = serializers.IntegerField(source="edge_pool_id", allow_null=True)
    listen_port = serializers.IntegerField()
    protocol = serializers.CharField()
    policy = serializers.CharField()
    sticky = serializers.BooleanField()
    rules = serializers.JSONField()


class AccessPortSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.CharField()
    service = serializers.IntegerField(source="service_id")
    ports = serializers.JSONField()


# ---- request bodies, for the schema (the services validate and explain every field) --------------------------
class NodeActionSerializer(serializers.Serializer):
    log_retention_days = serializers.IntegerField(required=False, help_text="logs: 1–30 days")
    system_log_level = serializers.CharField(required=False)
    app_log_level = serializers.CharField(required=False)
    log_rotate_days = serializers.IntegerField(required=False)


class NodeIdsSerializer(serializers.Serializer):
    nodes = serializers.ListField(child=serializers.IntegerField())


class ActivateSerializer(NodeIdsSerializer):
    months = serializers.ChoiceField(choices=[1, 3])


class EdgePoolCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    max_workers = serializers.IntegerField(required=False, default=8)
    masters = serializers.ListField(child=serializers.IntegerField(), required=False)
    workers = serializers.ListField(child=serializers.IntegerField(), required=False)


class EdgeServiceCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    model_version = serializers.IntegerField()
    flavor = serializers.CharField()
    node = serializers.IntegerField(required=False, allow_null=True)
    edge_pool = serializers.IntegerField(required=False, allow_null=True)
    instance_count = serializers.IntegerField(required=False, default=1)
    port_mappings = serializers.JSONField(required=False)
    volumes = serializers.JSONField(required=False)
    start_params = serializers.JSONField(required=False)
    stream_count = serializers.IntegerField(required=False, allow_null=True,
                                            help_text="asynchronous applications: video streams per instance, 1–64")


class LoadBalancerCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    listen_port = serializers.IntegerField()
    rules = serializers.JSONField(required=False)
    node = serializers.IntegerField(required=False, allow_null=True)
    edge_pool = serializers.IntegerField(required=False, allow_null=True)
    sticky = serializers.BooleanField(required=False, default=False)


class AccessPortCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    service = serializers.IntegerField()
    ports = serializers.JSONField()


class EnrollSerializer(serializers.Serializer):
    token = serializers.CharField()
    host = serializers.CharField(required=False, allow_blank=True)
    os = serializers.CharField(required=False, allow_blank=True)
    arch = serializers.CharField(required=False, allow_blank=True)
    agent_version = serializers.CharField(required=False, allow_blank=True)


class EnrollResultSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    agent_key = serializers.CharField()
    config = serializers.DictField()


class HeartbeatSerializer(serializers.Serializer):
    cpu_percent = serializers.FloatField(required=False)
    memory_percent = serializers.FloatField(required=False)
    disk_percent = serializers.FloatField(required=False)
    gpus = serializers.ListField(child=serializers.DictField(), required=False)
    upgrading = serializers.BooleanField(required=False)
    agent_version = serializers.CharField(required=False, allow_blank=True)
    upgrade_error = serializers.CharField(required=False, allow_blank=True)


class AgentBundleSerializer(serializers.Serializer):
    version = serializers.CharField()
    files = serializers.DictField(child=serializers.CharField())
    sha256 = serializers.DictField(child=serializers.CharField())


def _node(user, pk):
    return selectors.edge_node_get_for_user(user, pk) if pk not in (None, "") else None


def _edge_pool(user, pk):
    return selectors.edge_pool_get_for_user(user, pk) if pk not in (None, "") else None


class NodeListView(APIView):
    """GET: edge nodes of the current workspace. POST: create one; the answer carries its one-time
    enrolment `token` (shown once, valid 24 h)."""

    @extend_schema(responses=EdgeNodeSerializer(many=True), operation_id="edge_node_list")
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "service:view")
        return Response(EdgeNodeSerializer(selectors.edge_nodes_in(workspace), many=True).data)

    @extend_schema(request=EdgeNodeCreateSerializer, responses={201: EdgeNodeSerializer}, operation_id="edge_node_create")
    def post(self, request):
        data = EdgeNodeCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        node, token = services.edge_node_create(user=request.user, workspace=_workspace(request),
                                                **data.validated_data)
        return Response({**EdgeNodeSerializer(node).data, "token": token}, status=status.HTTP_201_CREATED)


class NodeDetailView(APIView):
    """GET one node; DELETE it (refused while it is in a pool or runs services/load balancers)."""

    @extend_schema(responses=EdgeNodeSerializer, operation_id="edge_node_retrieve")
    def get(self, request, pk):
        node = selectors.edge_node_get_for_user(request.user, pk)
        require_perm(request.user, node.workspace, "service:view")
        return Response(EdgeNodeSerializer(node).data)

    @extend_schema(responses={204: None}, operation_id="edge_node_delete")
    def delete(self, request, pk):
        services.edge_node_delete(user=request.user, node=selectors.edge_node_get_for_user(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class NodeActionView(APIView):
    """POST freeze | unfreeze | token (a fresh enrolment token) | logs (log settings) | upgrade (the agent)."""

    @extend_schema(request=NodeActionSerializer, responses={200: EdgeNodeSerializer}, operation_id="edge_node_action", description="freeze | unfreeze | logs | upgrade answer the node; token answers {\"token\": …} (shown once).")
    def post(self, request, pk, action):
        node = selectors.edge_node_get_for_user(request.user, pk)
        data = request.data
        if action in ("freeze", "unfreeze"):
            services.edge_node_freeze(user=request.user, node=node, frozen=action == "freeze")
        elif action == "upgrade":
            services.edge_node_upgrade_request(user=request.user, node=node)
        elif action == "token":
            token = services.edge_node_token_renew(user=request.user, node=node)
            return Response({"token": token})
        elif action == "logs":
            services.edge_node_log_settings_update(
                user=request.user, node=node, log_retention_days=data.get("log_retention_days"),
                system_log_level=data.get("system_log_level"), app_log_level=data.get("app_log_level"),
                log_rotate_days=data.get("log_rotate_days", node.log_rotate_days))
        else:
            return error_response("not_found", f"Unknown action {action!r}.", status.HTTP_404_NOT_FOUND)
        node.refresh_from_db()
        return Response(EdgeNodeSerializer(node).data)


class ActivateView(APIView):
    """POST {"nodes": [ids ≤ 50], "months": 1|3}: activate connected nodes, effective now."""

    @extend_schema(request=ActivateSerializer, responses=EdgeNodeSerializer(many=True), operation_id="edge_nodes_activate")
    def post(self, request):
        workspace = _workspace(request)
        ids = request.data.get("nodes") or []
        nodes = list(selectors.edge_nodes_in(workspace).filter(pk__in=[i for i in ids if str(i).isdigit()]))
        if len(nodes) != len(set(ids)) and len(ids) <= services.MAX_ACTIVATE:
            raise exceptions.ValidationError({"nodes": ["Some of the nodes are not in this workspace."]})
        nodes = services.edge_nodes_activate(user=request.user, workspace=workspace,
                                             nodes=nodes if len(ids) <= services.MAX_ACTIVATE else list(ids),
                                             months=request.data.get("months"))
        return Response(EdgeNodeSerializer(nodes, many=True).data)


class PoolListView(APIView):
    """GET: edge pools. POST {name, description, max_workers, masters: [ids], workers: [ids]}."""

    @extend_schema(responses=EdgePoolSerializer(many=True), operation_id="edge_pool_list")
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "service:view")
        return Response(EdgePoolSerializer(selectors.edge_pools_in(workspace).prefetch_related("nodes"),
                                           many=True).data)

    @extend_schema(request=EdgePoolCreateSerializer, responses={201: EdgePoolSerializer}, operation_id="edge_pool_create")
    def post(self, request):
        d = request.data
        pool = services.edge_pool_create(user=request.user, workspace=_workspace(request), name=d.get("name", ""),
                                         description=d.get("description", ""), max_workers=d.get("max_workers", 8),
                                         masters=d.get("masters") or [], workers=d.get("workers") or [])
        return Response(EdgePoolSerializer(pool).data, status=status.HTTP_201_CREATED)


class PoolDetailView(APIView):
    @extend_schema(responses=EdgePoolSerializer, operation_id="edge_pool_retrieve")
    def get(self, request, pk):
        pool = selectors.edge_pool_get_for_user(request.user, pk)
        require_perm(request.user, pool.workspace, "service:view")
        return Response(EdgePoolSerializer(pool).data)

    @extend_schema(responses={204: None}, operation_id="edge_pool_delete")
    def delete(self, request, pk):
        services.edge_pool_delete(user=request.user, pool=selectors.edge_pool_get_for_user(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PoolWorkersView(APIView):
    """POST {"nodes": [ids]}: bind free nodes as workers (within max_workers)."""

    @extend_schema(request=NodeIdsSerializer, responses=EdgePoolSerializer, operation_id="edge_pool_workers_add")
    def post(self, request, pk):
        pool = selectors.edge_pool_get_for_user(request.user, pk)
        services.edge_pool_workers_add(user=request.user, pool=pool, node_ids=request.data.get("nodes") or [])
        return Response(EdgePoolSerializer(pool).data)


class PoolWorkerView(APIView):
    """DELETE …/workers/<node>/: unbind one worker node from the pool."""

    @extend_schema(responses={204: None}, operation_id="edge_pool_worker_remove")
    def delete(self, request, pk, node_pk):
        pool = selectors.edge_pool_get_for_user(request.user, pk)
        services.edge_pool_worker_remove(user=request.user, pool=pool,
                                         node=selectors.edge_node_get_for_user(request.user, node_pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceListView(APIView):
    """GET: edge services. POST {name, model_version, flavor, node | edge_pool, instance_count,
    port_mappings, volumes, start_params}: deploy."""

    @extend_schema(responses=EdgeServiceSerializer(many=True), operation_id="edge_service_list")
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "service:view")
        return Response(EdgeServiceSerializer(selectors.edge_services_in(workspace), many=True).data)

    @extend_schema(request=EdgeServiceCreateSerializer, responses={201: EdgeServiceSerializer}, operation_id="edge_service_deploy")
    def post(self, request):
        d = request.data
        workspace = _workspace(request)
        version = AiAppVersion.objects.select_related("app").filter(app__workspace=workspace,
                                                                    pk=d.get("model_version") or 0).first()
        if version is None:
            raise exceptions.ValidationError({"model_version": ["Choose an AI application version of this workspace."]})
        flavor = Flavor.objects.filter(name=d.get("flavor") or "").first()
        if flavor is None:
            raise exceptions.ValidationError({"flavor": [f"No flavor named {d.get('flavor')!r}."]})
        service = serving.edge_service_deploy(
            user=request.user, workspace=workspace, name=d.get("name", ""), description=d.get("description", ""),
            model_version=version, flavor=flavor, node=_node(request.user, d.get("node")),
            edge_pool=_edge_pool(request.user, d.get("edge_pool")), instance_count=d.get("instance_count", 1),
            port_mappings=d.get("port_mappings"), volumes=d.get("volumes"), start_params=d.get("start_params"),
            stream_count=d.get("stream_count"))
        return Response(EdgeServiceSerializer(service).data, status=status.HTTP_201_CREATED)


class ServiceDetailView(APIView):
    @extend_schema(responses=EdgeServiceSerializer, operation_id="edge_service_retrieve")
    def get(self, request, pk):
        service = selectors.edge_service_get_for_user(request.user, pk)
        require_perm(request.user, service.workspace, "service:view")
        return Response(EdgeServiceSerializer(service).data)

    @extend_schema(responses={204: None}, operation_id="edge_service_delete")
    def delete(self, request, pk):
        serving.edge_service_delete(user=request.user,
                                    service=selectors.edge_service_get_for_user(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceActionView(APIView):
    """start / stop / restart do not exist for edge node and pool deployments (seed-06 §5)."""

    @extend_schema(request=None, responses={409: OpenApiResponse(description="Start, stop and restart are not available for edge deployments.")}, operation_id="edge_service_action")
    def post(self, request, pk, action):
        selectors.edge_service_get_for_user(request.user, pk)
        return error_response("not_supported", f"{action.capitalize()} is not available for services deployed on "
                                               "edge nodes or edge pools; delete and deploy again instead.",
                              status.HTTP_409_CONFLICT)


class LoadBalancerListView(APIView):
    @extend_schema(responses=LoadBalancerSerializer(many=True), operation_id="edge_load_balancer_list")
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "service:view")
        return Response(LoadBalancerSerializer(selectors.load_balancers_in(workspace), many=True).data)

    @extend_schema(request=LoadBalancerCreateSerializer, responses={201: LoadBalancerSerializer}, operation_id="edge_load_balancer_create")
    def post(self, request):
        d = request.data
        lb = serving.load_balancer_create(
            user=request.user, workspace=_workspace(request), name=d.get("name", ""),
            description=d.get("description", ""), listen_port=d.get("listen_port"), rules=d.get("rules"),
            node=_node(request.user, d.get("node")), edge_pool=_edge_pool(request.user, d.get("edge_pool")),
            sticky=bool(d.get("sticky")))
        return Response(LoadBalancerSerializer(lb).data, status=status.HTTP_201_CREATED)


class LoadBalancerDetailView(APIView):
    @extend_schema(responses=LoadBalancerSerializer, operation_id="edge_load_balancer_retrieve")
    def get(self, request, pk):
        lb = selectors.load_balancer_get_for_user(request.user, pk)
        require_perm(request.user, lb.workspace, "service:view")
        return Response(LoadBalancerSerializer(lb).data)

    @extend_schema(responses={204: None}, operation_id="edge_load_balancer_delete")
    def delete(self, request, pk):
        serving.load_balancer_delete(user=request.user, lb=selectors.load_balancer_get_for_user(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccessPortListView(APIView):
    @extend_schema(responses=AccessPortSerializer(many=True), operation_id="edge_access_port_list")
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "service:view")
        return Response(AccessPortSerializer(selectors.access_ports_in(workspace), many=True).data)

    @extend_schema(request=AccessPortCreateSerializer, responses={201: AccessPortSerializer}, operation_id="edge_access_port_create")
    def post(self, request):
        d = request.data
        service = selectors.edge_service_get_for_user(request.user, d.get("service") or 0)
        port = serving.access_port_create(user=request.user, workspace=_workspace(request), name=d.get("name", ""),
                                          service=service, ports=d.get("ports"))
        return Response(AccessPortSerializer(port).data, status=status.HTTP_201_CREATED)


class AccessPortDetailView(APIView):
    @extend_schema(responses={204: None}, operation_id="edge_access_port_delete")
    def delete(self, request, pk):
        serving.access_port_delete(user=request.user, port=selectors.access_port_get_for_user(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EnrollView(APIView):
    """Agent: POST {token, host, os, arch, agent_version} → {node, agent_key, config}. 403 with the
    reason for an unknown, spent or expired token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=EnrollSerializer, responses={201: EnrollResultSerializer}, operation_id="edge_agent_enroll")
    def post(self, request):
        d = request.data
        try:
            node, key = services.edge_node_enroll(token=str(d.get("token") or ""), host=str(d.get("host") or ""),
                                                  os_name=str(d.get("os") or ""), arch=str(d.get("arch") or ""),
                                                  agent_version=str(d.get("agent_version") or ""))
        except services.EnrolError as exc:
            return error_response("enrolment_refused", str(exc), status.HTTP_403_FORBIDDEN)
        return Response({"node": node.pk, "agent_key": key, "config": services.agent_config(node)},
                        status=status.HTTP_201_CREATED)


def _agent_node(request):
    header = request.headers.get("Authorization", "")
    return services.edge_node_by_agent_key(header[6:].strip() if header.startswith("Agent ") else "")


class AgentBundleView(APIView):
    """Agent: GET with `Authorization: Agent <key>` → the console's agent program {version, files,
    sha256}, fetched when an upgrade is requested."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: AgentBundleSerializer}, operation_id="edge_agent_bundle")
    def get(self, request):
        if _agent_node(request) is None:
            return error_response("not_authenticated", "Unknown agent key; enrol the agent again.",
                                  status.HTTP_401_UNAUTHORIZED)
        return Response(services.agent_bundle())


class HeartbeatView(APIView):
    """Agent: POST {cpu_percent, memory_percent, disk_percent, gpus, upgrading} with
    `Authorization: Agent <key>` → the agent's configuration."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=HeartbeatSerializer, responses={200: OpenApiTypes.OBJECT}, operation_id="edge_agent_heartbeat")
    def post(self, request):
        node = _agent_node(request)
        if node is None:
            return error_response("not_authenticated", "Unknown agent key; enrol the agent again.",
                                  status.HTTP_401_UNAUTHORIZED)
        d = request.data

        def number(name):
            try:
                return float(d.get(name) or 0)
            except (TypeError, ValueError):
                return 0.0

        config = services.edge_node_heartbeat(node=node, cpu_percent=number("cpu_percent"),
                                              memory_percent=number("memory_percent"),
                                              disk_percent=number("disk_percent"), gpus=d.get("gpus") or [],
                                              upgrading=bool(d.get("upgrading")),
                                              agent_version=str(d.get("agent_version") or ""),
                                              upgrade_error=str(d.get("upgrade_error") or ""))
        return Response(config)


urlpatterns = [
    path("enroll/", EnrollView.as_view(), name="edge-enroll"),
    path("heartbeat/", HeartbeatView.as_view(), name="edge-heartbeat"),
    path("agent/", AgentBundleView.as_view(), name="edge-agent-bundle"),
    path("nodes/", NodeListView.as_view(), name="edge-node-list"),
    path("nodes/activate/", ActivateView.as_view(), name="edge-node-activate"),
    path("nodes/<int:pk>/", NodeDetailView.as_view(), name="edge-node-detail"),
    path("nodes/<int:pk>/<str:action>/", NodeActionView.as_view(), name="edge-node-action"),
    path("pools/", PoolListView.as_view(), name="edge-pool-list"),
    path("pools/<int:pk>/", PoolDetailView.as_view(), name="edge-pool-detail"),
    path("pools/<int:pk>/workers/", PoolWorkersView.as_view(), name="edge-pool-workers"),
    path("pools/<int:pk>/workers/<int:node_pk>/", PoolWorkerView.as_view(), name="edge-pool-worker"),
    path("services/", ServiceListView.as_view(), name="edge-service-list"),
    path("services/<int:pk>/", ServiceDetailView.as_view(), name="edge-service-detail"),
    path("services/<int:pk>/<str:action>/", ServiceActionView.as_view(), name="edge-service-action"),
    path("load-balancers/", LoadBalancerListView.as_view(), name="edge-lb-list"),
    path("load-balancers/<int:pk>/", LoadBalancerDetailView.as_view(), name="edge-lb-detail"),
    path("access-ports/", AccessPortListView.as_view(), name="edge-port-list"),
    path("access-ports/<int:pk>/", AccessPortDetailView.as_view(), name="edge-port-detail"),
]
