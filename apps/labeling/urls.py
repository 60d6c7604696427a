from django.urls import path

from . import views

app_name = "labeling"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("new", views.job_create, name="create"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/edit", views.job_edit, name="edit"),
    path("<int:pk>/delete", views.job_delete, name="delete"),
    path("<int:pk>/copy", views.job_copy, name="copy"),
    path("<int:pk>/sync", views.job_sync, name="sync"),
    path("<int:pk>/labels", views.job_labels, name="labels"),
    path("<int:pk>/data", views.job_data, name="data"),
    path("<int:pk>/auto-group", views.job_auto_group, name="auto_group"),
    path("<int:pk>/guide/images", views.guide_image_upload, name="guide_image_upload"),
    path("<int:pk>/guide/<str:name>", views.guide_image, name="guide_image"),
    path("<int:pk>/review", views.job_review, name="review"),
    path("<int:pk>/label/", views.workbench_start, name="workbench_start"),
    path("<int:pk>/label/<str:sample_id>", views.workbench, name="workbench"),
    path("<int:pk>/samples/<str:sample_id>/media", views.sample_media, name="sample_media"),
]
