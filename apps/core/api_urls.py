"""Core API, mounted at /api/v1/: the audit log (health is at /healthz)."""
from rest_framework.routers import SimpleRouter

from .api_views import AuditEntryViewSet

# SimpleRouter: no API root view, because other apps also mount at /api/v1/.
router = SimpleRouter()
router.register("audit", AuditEntryViewSet, basename="api-audit")

urlpatterns = router.urls
