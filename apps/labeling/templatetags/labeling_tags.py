"""Template helpers of the Labeling pages."""
from django import template

from .. import selectors

register = template.Library()


@register.simple_tag
def job_progress(job) -> dict:
    """`P% (labeled/total)` of a job (list rows)."""
    return selectors.progress(job)


@register.simple_tag
def job_to_confirm(job) -> int:
    return selectors.to_confirm_count(job)
