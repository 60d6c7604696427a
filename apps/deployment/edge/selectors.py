"""Read queries of the edge module, always scoped to the user's workspaces (others answer 404)."""
from __future__ import annotations

from django.db.models import Count, Prefetch

from apps.core.scoping import get_for_user

from .models import AccessPort, EdgeInstance, EdgeNode, EdgePool, EdgeService, LoadBalancer


def edge_nodes_in(workspace):
    if workspace is None:
        return EdgeNode.objects.none()
    return EdgeNode.objects.in_workspace(workspace).select_related("edge_pool").annotate(
        service_count=Count("services", distinct=True))


def edge_node_get_for_user(user, pk) -> EdgeNode:
    return get_for_user(EdgeNode.objects.select_related("workspace", "edge_pool", "pool"), user, pk=pk)


def edge_pools_in(workspace):
    if workspace is None:
        return EdgePool.objects.none()
    return EdgePool.objects.in_workspace(workspace).annotate(node_count=Count("nodes", distinct=True))


def edge_pool_get_for_user(user, pk) -> EdgePool:
    return get_for_user(EdgePool.objects.select_related("workspace", "pool"), user, pk=pk)


def edge_services_in(workspace):
    if workspace is None:
        return EdgeService.objects.none()
    return (EdgeService.objects.in_workspace(workspace)
            .select_related("node", "edge_pool", "model_version__app", "flavor")
            .prefetch_related(Prefetch("instances", queryset=EdgeInstance.objects.select_related("run"))))


def edge_service_get_for_user(user, pk) -> EdgeService:
    return get_for_user(EdgeService.objects.select_related("workspace", "node", "edge_pool", "model_version__app",
                                                           "flavor"), user, pk=pk)


def edge_service_instances(service: EdgeService):
    return service.instances.select_related("run").order_by("pk")


def load_balancers_in(workspace):
    if workspace is None:
        return LoadBalancer.objects.none()
    return LoadBalancer.objects.in_workspace(workspace).select_related("node", "edge_pool")


def load_balancer_get_for_user(user, pk) -> LoadBalancer:
    return get_for_user(LoadBalancer.objects.select_related("workspace", "node", "edge_pool"), user, pk=pk)


def access_ports_in(workspace):
    if workspace is None:
        return AccessPort.objects.none()
    return AccessPort.objects.in_workspace(workspace).select_related("service")


def access_port_get_for_user(user, pk) -> AccessPort:
    return get_for_user(AccessPort.objects.select_related("workspace", "service"), user, pk=pk)
