from django.urls import path

from . import views

app_name = "runtime"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("pools/", views.pool_list, name="pool_list"),
    path("pools/<slug:name>/status/", views.pool_status, name="pool_status"),
    path("flavors/", views.flavor_list, name="flavor_list"),
    path("flavors/<str:name>/delete/", views.flavor_delete, name="flavor_delete"),
    path("workers/", views.worker_list, name="worker_list"),
    path("workers/<int:pk>/", views.worker_detail, name="worker_detail"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/stop/", views.run_stop, name="run_stop"),
    path("runs/<int:pk>/restart/", views.run_restart, name="run_restart"),
    path("runs/<int:pk>/log/", views.run_log, name="run_log"),
    path("monitoring/", views.monitoring, name="monitoring"),
    path("monitoring/data/", views.monitoring_data, name="monitoring_data"),
]
