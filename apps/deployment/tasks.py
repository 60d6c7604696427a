"""Celery entry points of the deployment section. Thin: they take ids and call services."""
from celery import shared_task


@shared_task(name="apps.deployment.tasks.ai_app_version_import", ignore_result=True)
def ai_app_version_import(version_id: int) -> str:
    """Copy a new version's package, build its dependency environment, mark it Normal (idempotent)."""
    from .services import ai_app_version_import as run

    return run(version_id=version_id)


@shared_task(name="apps.deployment.tasks.deployment_sweep", ignore_result=True)
def deployment_sweep() -> dict:
    """Beat: deploy timeouts, auto-stop, drained instances and health checks (see sweep.deployment_sweep)."""
    from .sweep import deployment_sweep as run

    return run()


@shared_task(name="apps.deployment.tasks.deployment_alarms", ignore_result=True)
def deployment_alarms() -> dict:
    """Beat: evaluate alarm rules over the last minutes of metrics (see monitoring.alarms_evaluate)."""
    from .monitoring import alarms_evaluate

    return alarms_evaluate()


@shared_task(name="apps.deployment.tasks.deployment_events_cleanup", ignore_result=True)
def deployment_events_cleanup() -> dict:
    """Beat: drop model events older than 3 months and service events older than 1 month."""
    from .monitoring import events_cleanup

    return events_cleanup()
