"""Template helpers of the deployment pages: status badges in the console's tones."""
from __future__ import annotations

from django import template

register = template.Library()

# Model and service statuses → the badge tones of atelier.css (see apps.core.templatetags.console).
TONES = {
    "importing": "running", "building": "running", "normal": "success", "build_failed": "danger", "failed": "danger",
    "deploying": "running", "waiting": "pending", "running": "success", "alarm": "warning", "abnormal": "danger", "stopping": "pending",
    "stopped": "muted", "completed": "success", "ok": "success",
}


@register.filter
def deploy_tone(status) -> str:
    return TONES.get(str(status), "neutral")


@register.filter
def model_status_label(status) -> str:
    from ..choices import ModelStatus

    return ModelStatus(status).label if status in ModelStatus.values else str(status or "")


@register.filter
def filesize_or_dash(value) -> str:
    from django.template.defaultfilters import filesizeformat

    return filesizeformat(value) if value else "—"
