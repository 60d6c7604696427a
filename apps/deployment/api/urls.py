from django.urls import include, path

from . import views

app_name = "deployment-api"

urlpatterns = [
    path("models/", views.AiAppListView.as_view(), name="model-list"),
    path("models/<int:pk>/", views.AiAppDetailView.as_view(), name="model-detail"),
    path("models/<int:pk>/versions/", views.AiAppVersionListView.as_view(), name="version-list"),
    path("versions/<int:pk>/", views.AiAppVersionDetailView.as_view(), name="version-detail"),
    path("versions/<int:pk>/events/", views.EventListView.as_view(), name="version-events"),
    path("services/", views.ServiceListView.as_view(), name="service-list"),
    path("batch-services/", views.BatchServiceListView.as_view(), name="batch-service-list"),
    path("services/<uuid:pk>/", views.ServiceDetailView.as_view(), name="service-detail"),
    path("services/<uuid:service_pk>/events/", views.EventListView.as_view(), name="service-events"),
    path("services/<uuid:pk>/metrics/", views.MetricsView.as_view(), name="service-metrics"),
    path("metrics/", views.MetricQueryView.as_view(), name="metric-query"),
    path("services/<uuid:pk>/predict/endpoints/", views.EndpointsView.as_view(), name="service-endpoints"),
    path("services/<uuid:pk>/keys/", views.ApiKeyListView.as_view(), name="key-list"),
    path("services/<uuid:pk>/alarm-rules/", views.AlarmRuleListView.as_view(), name="alarm-rule-list"),
    path("services/<uuid:pk>/<str:action>/", views.ServiceActionView.as_view(), name="service-action"),
    path("keys/<int:pk>/", views.ApiKeyDetailView.as_view(), name="key-detail"),
    path("alarm-rules/<int:pk>/", views.AlarmRuleDetailView.as_view(), name="alarm-rule-detail"),
    path("edge/", include("apps.deployment.edge.api")),
]
