from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        # Training jobs hear about their runs through the run engine's owner callbacks, and
        # pages subscribe to a job's timeline through the shared live consumer.
        from apps.core.consumers import register_live_source
        from apps.runtime.callbacks import owner_callback_register

        from .selectors import training_job_get_for_user
        from .services import OWNER_TYPE, training_job_on_run_change

        owner_callback_register(OWNER_TYPE, training_job_on_run_change)
        # The engine's own pipeline steps (input staging, process end, output upload) in training's wording.
        from apps.runtime.runevents import pipeline_wording_register

        from .pipeline_events import training_pipeline_text

        pipeline_wording_register(OWNER_TYPE, training_pipeline_text)
        from django.core.checks import register

        from .retention import retention_settings_check

        register(retention_settings_check)  # metrics ≥ 3 days, logs ≥ 1 day
        register_live_source("training.trainingjob", lambda user, pk: training_job_get_for_user(user, pk))
        # The code folder of a live job is read again at every attempt: storage refuses edits to it.
        from apps.storage.services import storage_write_guard_register

        from .codedirs import code_dirs_held

        storage_write_guard_register(code_dirs_held)
