from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "apps.runtime"
    label = "runtime"
    verbose_name = "Resources"

    def ready(self) -> None:
        # Celery worker hooks (node registration, heartbeat); they fire only inside `celery worker`.
        from . import worker  # noqa: F401
