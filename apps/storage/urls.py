from django.urls import path

from . import views

app_name = "storage"

urlpatterns = [
    path("", views.browser, name="browser"),
    path("buckets/new", views.bucket_create, name="bucket_create"),
    path("buckets/<str:bucket>/delete", views.bucket_delete, name="bucket_delete"),
    path("go", views.go, name="go"),
    path("b/<str:bucket>/", views.folder, name="bucket"),
    path("b/<str:bucket>/<path:key>", views.folder, name="folder"),
    path("folders/new", views.folder_create, name="folder_create"),
    path("upload", views.upload, name="upload"),
    path("download", views.download, name="download"),
    path("delete", views.delete, name="delete"),
]
