from django.apps import AppConfig


class DeploymentConfig(AppConfig):
    name = "apps.deployment"
    label = "deployment"
    verbose_name = "Models and services"

    def ready(self) -> None:
        from apps.core.consumers import register_live_source
        from apps.runtime.callbacks import owner_callback_register

        from . import selectors
        from .serving import OWNER_TYPE, service_on_run_change

        # Instance runs report to their service (status machine in serving.service_refresh).
        owner_callback_register(OWNER_TYPE, service_on_run_change)
        from .edge.serving import OWNER_TYPE as EDGE_OWNER_TYPE, edge_service_on_run_change

        # Edge service instances report to their edge service (edge.serving.edge_service_refresh).
        owner_callback_register(EDGE_OWNER_TYPE, edge_service_on_run_change)
        register_live_source("deployment.aiappversion", selectors.ai_app_version_get_for_user)
        register_live_source("deployment.inferenceservice", selectors.service_get_for_user)
