from django.urls import path

from . import views

app_name = "training-api"

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/stop/", views.JobStopView.as_view(), name="job-stop"),
    path("jobs/<int:pk>/metrics/", views.JobMetricsView.as_view(), name="job-metrics"),
    path("experiments/", views.ExperimentListView.as_view(), name="experiment-list"),
    path("experiments/<int:pk>/", views.ExperimentDetailView.as_view(), name="experiment-detail"),
    path("algorithms/", views.AlgorithmListView.as_view(), name="algorithm-list"),
    path("algorithms/<int:pk>/", views.AlgorithmDetailView.as_view(), name="algorithm-detail"),
]
