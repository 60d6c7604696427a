"""Mounted at /api/v1/ (console/urls.py)."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

# SimpleRouter: no API root view, because other apps also mount at /api/v1/.
router = SimpleRouter()
router.register("tokens", views.ApiTokenViewSet, basename="api-token")
router.register("workspaces", views.WorkspaceViewSet, basename="api-workspace")
router.register(r"workspaces/(?P<workspace_pk>\d+)/members", views.MembershipViewSet, basename="api-membership")
router.register("users", views.UserViewSet, basename="api-user")

urlpatterns = [
    path("auth/token/", views.AuthTokenView.as_view(), name="api-auth-token"),
    path("me/", views.MeView.as_view(), name="api-me"),
    *router.urls,
]
