from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "apps.labeling"
    label = "labeling"
    verbose_name = "Labeling"

    def ready(self) -> None:
        from apps.core.consumers import register_live_source

        from . import selectors

        # The job detail page follows label counts with the accessor it renders with.
        register_live_source("labeling.labelingjob", selectors.job_get_for_user)
