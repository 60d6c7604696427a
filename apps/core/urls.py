from django.urls import path

from . import views

app_name = "core"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("audit/", views.audit_log, name="audit_log"),
    path("audit/<int:pk>/", views.audit_entry, name="audit_entry"),
    path("healthz", views.healthz, name="healthz"),
]
