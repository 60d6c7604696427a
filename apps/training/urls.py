from django.urls import path

from . import algorithm_views, log_views, views

app_name = "training"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("jobs/new", views.job_create, name="create"),
    path("jobs/<int:pk>/", views.job_detail, name="detail"),
    path("jobs/<int:pk>/stop", views.job_stop, name="stop"),
    path("jobs/<int:pk>/description", views.job_description, name="description"),
    path("jobs/<int:pk>/delete", views.job_delete, name="delete"),
    path("jobs/<int:pk>/save-as-algorithm", views.save_as_algorithm, name="save_as_algorithm"),
    path("jobs/<int:pk>/nodes/<int:rank>/log", log_views.node_log, name="node_log"),
    path("jobs/<int:pk>/nodes/<int:rank>/log/share", log_views.log_share, name="log_share"),
    path("jobs/<int:pk>/logs.zip", log_views.logs_zip, name="logs_zip"),
    path("jobs/<int:pk>/resources.json", log_views.job_resources, name="job_resources"),
    path("shared-logs/<str:token>", log_views.shared_log, name="shared_log"),
    path("experiments/", views.experiment_list, name="experiment_list"),
    path("experiments/<int:pk>/", views.experiment_detail, name="experiment_detail"),
    path("compare/", views.compare, name="compare"),
    path("algorithms/", views.algorithm_list, name="algorithm_list"),
    path("algorithms/new", algorithm_views.algorithm_create, name="algorithm_create"),
    path("algorithms/<int:pk>/", algorithm_views.algorithm_detail, name="algorithm_detail"),
    path("algorithms/<int:pk>/edit", algorithm_views.algorithm_edit, name="algorithm_edit"),
    path("algorithms/<int:pk>/delete", algorithm_views.algorithm_delete, name="algorithm_delete"),
    path("jobs/input-size", algorithm_views.input_size, name="input_size"),
    path("jobs/dataset-versions", views.dataset_versions, name="dataset_versions"),
]
