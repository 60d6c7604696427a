from django.urls import path

from . import views

app_name = "labeling-api"

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/copy/", views.JobCopyView.as_view(), name="job-copy"),
    path("jobs/<int:pk>/sync/", views.JobSyncView.as_view(), name="job-sync"),
    path("jobs/<int:pk>/labels/", views.LabelListView.as_view(), name="label-list"),
    path("jobs/<int:pk>/labels/delete/", views.LabelBatchDeleteView.as_view(), name="label-batch-delete"),
    path("jobs/<int:pk>/labels/<int:label_id>/", views.LabelDetailView.as_view(), name="label-detail"),
    path("jobs/<int:pk>/annotations/", views.BatchAnnotationsView.as_view(), name="batch-annotations"),
    path("jobs/<int:pk>/samples/", views.SampleListView.as_view(), name="sample-list"),
    path("jobs/<int:pk>/data/", views.DataAddView.as_view(), name="data-add"),
    path("jobs/<int:pk>/samples/delete/", views.SampleDeleteView.as_view(), name="sample-delete"),
    path("jobs/<int:pk>/samples/next/", views.NextSampleView.as_view(), name="sample-next"),
    path("jobs/<int:pk>/samples/labels/", views.SampleLabelApplyView.as_view(), name="sample-labels"),
    path("jobs/<int:pk>/samples/<str:sample_id>/", views.SampleDetailView.as_view(), name="sample-detail"),
    path("jobs/<int:pk>/samples/<str:sample_id>/annotations/", views.SampleAnnotationsView.as_view(),
         name="sample-annotations"),
    path("jobs/<int:pk>/samples/<str:sample_id>/peaks/", views.PeaksView.as_view(), name="sample-peaks"),
    path("jobs/<int:pk>/samples/<str:sample_id>/frames/", views.FrameListView.as_view(), name="frame-list"),
    path("jobs/<int:pk>/samples/<str:sample_id>/frames/<str:frame_id>/", views.FrameDetailView.as_view(),
         name="frame-detail"),
]
