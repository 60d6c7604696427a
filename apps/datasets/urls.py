from django.urls import path

from . import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new", views.dataset_create, name="create"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/edit", views.dataset_edit, name="edit"),
    path("<int:pk>/delete", views.dataset_delete, name="delete"),
    path("<int:pk>/samples/<str:sample_id>/", views.sample_detail, name="sample"),
    path("<int:pk>/samples/<str:sample_id>/file", views.sample_file, name="sample_file"),
    path("<int:pk>/samples/<str:sample_id>/thumbnail", views.sample_thumbnail, name="sample_thumbnail"),
    path("<int:pk>/labels/", views.dataset_labels, name="labels"),
    path("<int:pk>/labels/<int:label_id>/edit", views.label_edit, name="label_edit"),
    path("<int:pk>/labels/<int:label_id>/delete", views.label_delete, name="label_delete"),
    path("<int:pk>/import", views.dataset_import, name="import"),
    path("<int:pk>/upload", views.dataset_upload_view, name="upload"),
    path("<int:pk>/sync", views.dataset_sync, name="sync"),
    path("<int:pk>/versions/", views.dataset_versions, name="versions"),
    path("<int:pk>/publish", views.dataset_publish, name="publish"),
    path("<int:pk>/versions/<int:version_id>/", views.version_detail, name="version"),
    path("<int:pk>/versions/<int:version_id>/current", views.version_set_current, name="version_current"),
    path("<int:pk>/versions/<int:version_id>/delete", views.version_delete, name="version_delete"),
    path("<int:pk>/export", views.dataset_export, name="export"),
    path("<int:pk>/operations/", views.dataset_operations, name="operations"),
    path("<int:pk>/operations/<int:operation_id>/", views.operation_detail, name="operation"),
    path("<int:pk>/operations/<int:operation_id>/errors.csv", views.operation_errors_csv, name="operation_errors"),
    path("<int:pk>/operations/<int:operation_id>/stop", views.operation_stop, name="operation_stop"),
    path("<int:pk>/features/", views.dataset_features, name="features"),
    path("<int:pk>/processing/", views.dataset_processing, name="processing"),
]
