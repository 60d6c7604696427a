from django.urls import path

from . import views

app_name = "training"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("jobs/new", views.job_create, name="create"),
    path("jobs/<int:pk>/", views.job_detail, name="detail"),
    path("jobs/<int:pk>/stop", views.job_stop, name="stop"),
    path("jobs/<int:pk>/delete", views.job_delete, name="delete"),
    path("jobs/<int:pk>/save-as-algorithm", views.save_as_algorithm, name="save_as_algorithm"),
    path("jobs/<int:pk>/nodes/<int:rank>/log", views.node_log, name="node_log"),
    path("experiments/", views.experiment_list, name="experiment_list"),
    path("experiments/<int:pk>/", views.experiment_detail, name="experiment_detail"),
    path("compare/", views.compare, name="compare"),
    path("algorithms/", views.algorithm_list, name="algorithm_list"),
    path("algorithms/<int:pk>/", views.algorithm_detail, name="algorithm_detail"),
]
