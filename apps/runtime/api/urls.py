from django.urls import path

from . import views

app_name = "runtime-api"

urlpatterns = [
    path("pools/", views.PoolListView.as_view(), name="pool-list"),
    path("pools/<slug:name>/", views.PoolDetailView.as_view(), name="pool-detail"),
    path("flavors/", views.FlavorListView.as_view(), name="flavor-list"),
    path("flavors/<str:name>/", views.FlavorDetailView.as_view(), name="flavor-detail"),
    path("workers/", views.WorkerListView.as_view(), name="worker-list"),
    path("workers/<int:pk>/", views.WorkerDetailView.as_view(), name="worker-detail"),
    path("runs/", views.RunListView.as_view(), name="run-list"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run-detail"),
    path("runs/<int:pk>/stop/", views.RunStopView.as_view(), name="run-stop"),
    path("runs/<int:pk>/restart/", views.RunRestartView.as_view(), name="run-restart"),
    path("runs/<int:pk>/log/", views.RunLogView.as_view(), name="run-log"),
    path("runs/<int:pk>/log/lines/", views.RunLogLinesView.as_view(), name="run-log-lines"),
    path("runs/<int:pk>/metrics/", views.RunMetricsView.as_view(), name="run-metrics"),
    path("runs/<int:pk>/events/", views.RunEventsView.as_view(), name="run-events"),
]
