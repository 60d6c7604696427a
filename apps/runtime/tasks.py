"""Celery entry points of the run engine. Thin: they take ids and call the executor or a service."""
from celery import shared_task


@shared_task(name="apps.runtime.tasks.run_execute", bind=True, acks_late=False, ignore_result=True)
def run_execute(self, run_id: int, attempt: int) -> str:
    """Execute one run (one node) on this worker, if it can still be claimed at `attempt`.

    Acknowledged on receipt, not after: a run may last days, and the database (claim plus
    heartbeats plus the sweep) rather than broker redelivery is what recovers from a lost worker.
    """
    from .executor import run_execute_here

    return run_execute_here(run_id=run_id, attempt=attempt, hostname=self.request.hostname)


@shared_task(name="apps.runtime.tasks.runtime_sweep", ignore_result=True)
def runtime_sweep() -> dict:
    """Beat: lost runs, offline workers, waiting runs, old samples (see scheduling.runtime_sweep)."""
    from . import scheduling

    return scheduling.runtime_sweep()
