"""Choices shared by every section: roles, audit results, event levels."""
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    LABELER = "labeler", "Labeler"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


class AuditResult(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"


class EventLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
