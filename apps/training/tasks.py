"""Celery entry points of the training section. Thin: they call a service."""
from celery import shared_task


@shared_task(name="apps.training.tasks.training_dispatch", ignore_result=True)
def training_dispatch() -> int:
    """Beat: hand waiting training jobs to the run engine where their pool has room."""
    from .services import training_jobs_dispatch

    return training_jobs_dispatch()
