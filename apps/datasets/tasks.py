"""Celery entry points of the Data section: thin, take an id, safe to run twice."""
from celery import shared_task


@shared_task(name="datasets.operation_run", acks_late=True)
def dataset_operation_run(operation_id: int) -> str:
    """Run one queued DatasetOperation; a second delivery of the same id finds it no longer queued and returns."""
    from .operations import operation_execute

    return operation_execute(operation_id)
