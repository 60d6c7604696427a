"""Pages of the Models (/models/) and Services (/services/) sections; console/urls.py includes this at the root."""
from django.urls import include, path

from . import service_views, views
from .api.views import EndpointsView

app_name = "deployment"

model_urls = [
    path("", views.model_list, name="model_list"),
    path("new", views.model_create, name="model_create"),
    path("<int:pk>/", views.model_detail, name="model_detail"),
    path("<int:pk>/description", views.model_update, name="model_update"),
    path("<int:pk>/versions/new", views.version_create, name="version_create"),
    path("<int:pk>/delete", views.model_delete, name="model_delete"),
    path("versions/<int:pk>/", views.version_detail, name="version_detail"),
    path("versions/<int:pk>/description", views.version_update, name="version_update"),
    path("versions/<int:pk>/dependencies", views.version_dependencies, name="version_dependencies"),
    path("versions/<int:pk>/delete", views.version_delete, name="version_delete"),
]

service_urls = [
    path("", service_views.service_list, name="service_list"),
    path("new", service_views.service_create, name="service_create"),
    path("batch/new", service_views.batch_create, name="batch_create"),
    path("edge/", include("apps.deployment.edge.urls")),
    path("<uuid:pk>/", service_views.service_detail, name="service_detail"),
    path("<uuid:pk>/edit", service_views.service_edit, name="service_edit"),
    path("<uuid:pk>/description", service_views.service_description, name="service_description"),
    path("bulk-delete", service_views.service_bulk_delete, name="service_bulk_delete"),
    path("<uuid:pk>/delete", service_views.service_delete, name="service_delete"),
    path("<uuid:pk>/predict", service_views.service_predict, name="service_predict"),
    path("<uuid:pk>/monitoring", service_views.service_monitoring, name="service_monitoring"),
    path("<uuid:pk>/keys/new", service_views.key_create, name="key_create"),
    path("<uuid:pk>/alarms/new", service_views.alarm_create, name="alarm_create"),
    path("<uuid:pk>/<str:action>", service_views.service_action, name="service_action"),
    path("keys/<int:pk>/revoke", service_views.key_revoke, name="key_revoke"),
    path("alarms/<int:pk>/delete", service_views.alarm_delete, name="alarm_delete"),
]

urlpatterns = [
    path("models/", include(model_urls)),
    path("services/", include(service_urls)),
    # Direct-access listing at its ModelArts address (seed-06 §3.9); the project id is the workspace id.
    path("v1/<int:project_id>/services/<uuid:pk>/predict/endpoints", EndpointsView.as_view(),
         name="service_endpoints_modelarts"),
]
