from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self):
        from apps.accounts.selectors import workspace_get_for_user

        from .consumers import register_live_source
        from .services import WORKSPACE_ACTIVITY_SOURCE

        # The overview's activity list: any member of the workspace may subscribe.
        register_live_source(WORKSPACE_ACTIVITY_SOURCE, workspace_get_for_user)
