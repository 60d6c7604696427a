"""Edge pages, included by apps/deployment/urls.py at /services/edge/."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.edge_service_list, name="edge_service_list"),
    path("new", views.edge_service_create, name="edge_service_create"),
    path("<int:pk>/", views.edge_service_detail, name="edge_service_detail"),
    path("<int:pk>/delete", views.edge_service_delete, name="edge_service_delete"),
    path("nodes/", views.edge_node_list, name="edge_node_list"),
    path("nodes/activate", views.edge_nodes_activate, name="edge_nodes_activate"),
    path("nodes/<int:pk>/", views.edge_node_detail, name="edge_node_detail"),
    path("nodes/<int:pk>/delete", views.edge_node_delete, name="edge_node_delete"),
    path("nodes/<int:pk>/monitoring.json", views.edge_node_monitoring, name="edge_node_monitoring"),
    path("nodes/<int:pk>/<str:action>", views.edge_node_action, name="edge_node_action"),
    path("pools/", views.edge_pool_list, name="edge_pool_list"),
    path("pools/<int:pk>/workers", views.edge_pool_workers, name="edge_pool_workers"),
    path("pools/<int:pk>/delete", views.edge_pool_delete, name="edge_pool_delete"),
    path("balancers/", views.edge_lb_list, name="edge_lb_list"),
    path("balancers/<int:pk>/delete", views.edge_lb_delete, name="edge_lb_delete"),
    path("ports/<int:pk>/delete", views.edge_port_delete, name="edge_port_delete"),
]
