from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self) -> None:
        from apps.core.consumers import register_live_source

        from . import selectors

        # Pages subscribe to operation progress and to dataset counters with the same accessors they render with.
        register_live_source("datasets.datasetoperation", selectors.operation_get_for_user)
        register_live_source("datasets.dataset", selectors.dataset_get_for_user)
