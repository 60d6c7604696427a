from django.urls import path

from . import views

app_name = "storage-api"

urlpatterns = [
    path("buckets/", views.BucketListView.as_view(), name="bucket-list"),
    path("buckets/<str:name>/", views.BucketDetailView.as_view(), name="bucket-detail"),
    path("objects/", views.ObjectListView.as_view(), name="object-list"),
    path("objects/upload/", views.UploadView.as_view(), name="object-upload"),
    path("objects/download/", views.DownloadView.as_view(), name="object-download"),
    path("folders/", views.FolderCreateView.as_view(), name="folder-create"),
]
