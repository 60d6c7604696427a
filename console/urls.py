"""URL map: pages per section, the REST API under /api/v1/, schema and docs."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

api_v1 = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.core.api_urls")),
    path("storage/", include("apps.storage.api.urls")),
    path("runtime/", include("apps.runtime.api.urls")),
    path("labeling/", include("apps.labeling.api.urls")),
    path("datasets/", include("apps.datasets.api.urls")),
    path("training/", include("apps.training.api.urls")),
    path("deployment/", include("apps.deployment.api.urls")),
]

urlpatterns = [
    path("", include("apps.core.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("storage/", include("apps.storage.urls")),
    path("resources/", include("apps.runtime.urls")),
    path("labeling/", include("apps.labeling.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("training/", include("apps.training.urls")),
    # Models at /models/, services at /services/ (the inference gateway itself is in console/asgi.py).
    path("", include("apps.deployment.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script as a file, so the CSP needs no inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "apps.core.errors.bad_request"
handler404 = "apps.core.errors.not_found"
handler403 = "apps.core.errors.forbidden"
handler500 = "apps.core.errors.server_error"
