"""Forms of the Resources pages (staff: pools and flavors). Services apply the rules."""
from __future__ import annotations

from django import forms

from .choices import JobType, PoolStatus
from .models import Pool


class PoolForm(forms.Form):
    name = forms.CharField(max_length=40, help_text="Lowercase letters, digits and hyphens; the queue is pool.<name>.")
    description = forms.CharField(max_length=500, required=False)
    job_types = forms.MultipleChoiceField(choices=JobType.choices, widget=forms.CheckboxSelectMultiple,
                                          initial=list(JobType.values), label="Accepts")
    status = forms.ChoiceField(choices=PoolStatus.choices, initial=PoolStatus.ENABLED)
    dedicated = forms.BooleanField(required=False, label="Dedicated pool",
                                   help_text="Serves one team: custom-command training jobs may run as any uid "
                                             "0–65535 (shared pools: 1000–65535).")


class FlavorForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="e.g. gpu-1x-8c: lowercase letters, digits, dots, hyphens.")
    description = forms.CharField(max_length=500, required=False)
    cpus = forms.IntegerField(min_value=1, max_value=4096, label="CPU cores")
    memory_gib = forms.DecimalField(min_value=0.0625, max_value=65536, decimal_places=3, label="Memory (GiB)")
    gpus = forms.IntegerField(min_value=0, max_value=64, initial=0, label="GPUs")
    gpu_type = forms.CharField(max_length=64, required=False, label="GPU type",
                               help_text="Optional: part of the GPU name a worker must have (e.g. A100).")
    pools = forms.ModelMultipleChoiceField(queryset=Pool.objects.order_by("name"), widget=forms.CheckboxSelectMultiple,
                                           required=False, label="Offered by")

    def service_values(self) -> dict:
        data = dict(self.cleaned_data)
        data["memory_mb"] = int(data.pop("memory_gib") * 1024)
        return data
