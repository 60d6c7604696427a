from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "apps.runtime"
    label = "runtime"
    verbose_name = "Resources"

    def ready(self) -> None:
        from apps.core.consumers import register_live_source

        # Celery worker hooks (node registration, heartbeat); they fire only inside `celery worker`.
        from . import worker  # noqa: F401
        from .selectors import run_get_for_user, worker_get_for_user

        # Timelines (components/timeline.html) of runs and worker nodes, with the pages' accessors.
        register_live_source("runtime.run", run_get_for_user)
        register_live_source("runtime.workernode", worker_get_for_user)
