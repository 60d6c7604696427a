"""The Celery application shared by the web process, workers and beat.

Workers serve one or more pool queues (`pool.<name>`); `make run` starts one worker for all.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("atelier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
