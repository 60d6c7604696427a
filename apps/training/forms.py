"""Forms of the training pages. Channels and hyperparameters travel as JSON written by the
form's editor module (static/training/job_form.js); the services validate every value."""
from __future__ import annotations

import json

from django import forms

from apps.runtime.models import Flavor, Pool
from apps.storage.forms import StoragePathField, StoragePathFormMixin

from .choices import BootMode, Builtin, ExperimentChoice
from .engines import engine_choices
from .notifications import EVENT_LABELS


class JSONListField(forms.CharField):
    """A hidden JSON value (list or object) kept by the page's editor; blank is empty."""

    def __init__(self, *, kind=list, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.HiddenInput)
        super().__init__(**kwargs)
        self.kind = kind

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return self.kind()
        try:
            data = json.loads(value)
        except ValueError:
            raise forms.ValidationError("The editor sent malformed data; reload the page.") from None
        if not isinstance(data, self.kind):
            raise forms.ValidationError("The editor sent malformed data; reload the page.")
        return data


def env_parse(text: str) -> dict[str, str]:
    """NAME=value lines (blank lines and # comments ignored)."""
    env = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise forms.ValidationError(f"Line {number}: write NAME=value.")
        name, _, value = line.partition("=")
        env[name.strip()] = value
    return env


class TrainingJobForm(StoragePathFormMixin, forms.Form):
    name = forms.CharField(max_length=64, help_text="1–64 characters: letters, digits, - and _.")
    description = forms.CharField(max_length=256, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    experiment = forms.ChoiceField(choices=ExperimentChoice.choices, initial=ExperimentChoice.NEW,
                                   widget=forms.RadioSelect)
    experiment_name = forms.CharField(max_length=64, required=False, label="New experiment name")
    experiment_description = forms.CharField(max_length=256, required=False, label="New experiment description")
    experiment_id = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Experiment")
    algorithm = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="My algorithm",
                                       help_text="Optional: its boot settings, channels and hyperparameters are used.")
    boot_mode = forms.ChoiceField(choices=BootMode.choices, initial=BootMode.PRESET, label="Boot mode")
    engine = forms.ChoiceField(choices=(), required=False, label="Engine")
    builtin = forms.ChoiceField(choices=[("", "—"), *Builtin.choices], required=False, label="Built-in algorithm")
    code_dir = StoragePathField(label="Code folder", required=False, kind="folder", must_exist=True,
                                allow_create=False, help_text="At most 1000 files and 5 GB; copied to "
                                                              "$MA_JOB_DIR/<folder name>.")
    code_files = forms.FileField(required=False, label="Or upload code", widget=forms.ClearableFileInput(),
                                 help_text="A .zip or .py file; it is stored in the code folder above.")
    boot_file = forms.CharField(max_length=1023, required=False, label="Boot file",
                                help_text="A .py file inside the code folder, e.g. train.py.")
    boot_command = forms.CharField(max_length=4096, required=False, label="Boot command",
                                   help_text="One line; join commands with ; or &&.")
    image = forms.CharField(max_length=255, required=False, label="Image",
                            help_text="organization/image:tag, recorded with the job (required with a preset "
                                      "framework's custom image).")
    local_code_dir = forms.CharField(max_length=255, initial="user-job-dir", label="Local code folder",
                                     help_text="Below the run directory ($MA_JOB_DIR).")
    working_dir = forms.CharField(max_length=255, required=False, label="Working directory",
                                  help_text="Below the run directory; empty = the code folder.")
    inputs = JSONListField()
    outputs = JSONListField()
    hyperparameters = JSONListField(kind=dict)
    env = forms.CharField(required=False, label="Environment variables", widget=forms.Textarea(attrs={"rows": 3}),
                          help_text="NAME=value per line; adds to or overrides the platform's variables.")
    pool = forms.ModelChoiceField(queryset=Pool.objects.none(), label="Resource pool")
    flavor = forms.ModelChoiceField(queryset=Flavor.objects.none(), label="Flavor")
    node_count = forms.IntegerField(min_value=1, max_value=64, initial=1, label="Nodes",
                                    help_text="More than 1 starts a distributed job, one node per worker.")
    priority = forms.TypedChoiceField(coerce=int, choices=[(1, "1 (default)"), (2, "2"), (3, "3 (highest)")],
                                      initial=1)
    auto_restart = forms.TypedChoiceField(coerce=int, initial=0, label="Auto-restart on failure",
                                          choices=[(0, "Off"), (1, "1 time"), (2, "2 times"), (3, "3 times")],
                                          help_text="Cannot be changed after creation.")
    max_runtime_hours = forms.IntegerField(min_value=1, max_value=720, required=False, label="Auto-stop after (h)",
                                           widget=forms.NumberInput(attrs={"list": "runtime-presets"}),
                                           help_text="1, 2, 4 or 6 h (suggested), or any 1–720 hours of running "
                                                     "time; empty = never.")
    run_as_uid = forms.IntegerField(required=False, initial=1000, label="Run-as uid",
                                    help_text="Default 1000; 1000–65535 on shared pools, 0–65535 on dedicated pools.")
    custom_flavor_on = forms.BooleanField(required=False, label="Custom flavor",
                                          help_text="At most the pool's largest node; the flavor above is then ignored.")
    custom_cpus = forms.IntegerField(required=False, min_value=1, label="CPU cores")
    custom_memory_mb = forms.IntegerField(required=False, min_value=64, label="Memory (MiB)")
    custom_gpus = forms.IntegerField(required=False, min_value=0, initial=0, label="GPUs")
    mounts = forms.CharField(required=False, label="Extra mounts", widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="One per line: /host/folder => mount/path (at most 8; linked into the run "
                                       "directory).")
    persist_logs = forms.BooleanField(required=False, label="Persist logs",
                                      help_text="Off: node logs are deleted 30 days after the job ends.")
    log_path = StoragePathField(label="Job log path", required=False, kind="folder", must_exist=False,
                                allow_create=True, help_text="An empty folder; the logs are copied here at the end.")
    notify_channel = forms.ChoiceField(required=False, label="Event notification",
                                       choices=[("", "Off"), ("email", "E-mail"), ("webhook", "Webhook (signed POST)")])
    notify_target = forms.CharField(required=False, max_length=1000, label="Send to",
                                    help_text="E-mail addresses (comma-separated) or the webhook URL.")
    notify_events = forms.MultipleChoiceField(required=False, label="Events", widget=forms.CheckboxSelectMultiple,
                                              choices=list(EVENT_LABELS.items()))

    def __init__(self, *args, workspace=None, can_high_priority: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_high_priority:
            # Priority 3 needs trainjob:set_high_priority; the service refuses it too.
            self.fields["priority"].choices = [(1, "1 (default)"), (2, "2")]
        from apps.runtime.choices import JobType, PoolStatus

        from .models import Algorithm, Experiment

        self.fields["engine"].choices = engine_choices()
        enabled = Pool.objects.filter(status=PoolStatus.ENABLED)
        self.fields["pool"].queryset = enabled.filter(pk__in=[p.pk for p in enabled if JobType.TRAINING in p.job_types])
        # Custom flavors are created per job shape; they are chosen with the custom-flavor fields.
        self.fields["flavor"].queryset = Flavor.objects.exclude(name__startswith="custom-")
        self.fields["experiment_id"].choices = [("", "—")] + [
            (e.pk, e.name) for e in Experiment.objects.in_workspace(workspace).order_by("name")]
        self.fields["algorithm"].choices = [("", "— none: define the code here —")] + [
            (a.pk, a.name) for a in Algorithm.objects.in_workspace(workspace).order_by("name")]

    def clean_env(self):
        return env_parse(self.cleaned_data.get("env", ""))

    def clean_mounts(self):
        return mounts_parse(self.cleaned_data.get("mounts", ""))

    def custom_flavor(self) -> dict | None:
        data = self.cleaned_data
        if not data.get("custom_flavor_on"):
            return None
        return {"cpus": data.get("custom_cpus"), "memory_mb": data.get("custom_memory_mb"),
                "gpus": data.get("custom_gpus") or 0}


def mounts_parse(text: str) -> list[dict[str, str]]:
    """`/host/folder => mount/path` lines (blank lines and # comments ignored)."""
    mounts = []
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        source, sep, path = line.partition("=>")
        if not sep:
            raise forms.ValidationError(f"Line {number}: write /host/folder => mount/path.")
        mounts.append({"source": source.strip(), "path": path.strip()})
    return mounts


class AlgorithmForm(StoragePathFormMixin, forms.Form):
    """Create or edit an algorithm; the name is fixed once created (the view disables it on edit)."""

    name = forms.CharField(max_length=64, help_text="1–64 characters: letters, digits, - and _. Cannot be changed later.")
    description = forms.CharField(max_length=256, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    boot_mode = forms.ChoiceField(choices=[(BootMode.PRESET, "Preset framework"),
                                           (BootMode.PRESET_IMAGE, "Preset framework with a custom image"),
                                           (BootMode.CUSTOM, "Custom (image and boot command)")],
                                  initial=BootMode.PRESET, label="Boot mode")
    engine = forms.ChoiceField(choices=(), required=False, label="Engine and version")
    image = forms.CharField(max_length=255, required=False, label="Image",
                            help_text="organization/image:tag, recorded with the algorithm. With a preset "
                                      "framework it is that framework's custom image (its conventions still apply).")
    code_dir = StoragePathField(label="Code folder", required=False, kind="folder", must_exist=True,
                                allow_create=False, help_text="At most 1000 entries, 5 GB and 32 levels; keep it "
                                                              "under 50 MB.")
    boot_file = forms.CharField(max_length=1023, required=False, label="Boot file",
                                help_text="A .py file inside the code folder, e.g. train.py.")
    boot_command = forms.CharField(max_length=4096, required=False, label="Boot command",
                                   help_text="One line; join commands with ; or &&.")
    inputs = JSONListField()
    outputs = JSONListField()
    hyperparameters = JSONListField()
    policies = forms.CharField(required=False, label="Supported policies (auto-search)",
                               widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
                               help_text="A JSON object; empty = no auto-search.")
    resource_types = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                               choices=[("cpu", "CPU"), ("gpu", "GPU")], label="Resource types",
                                               help_text="None checked = no constraint.")
    multi_card = forms.BooleanField(required=False, label="Multi-card training")
    distributed = forms.BooleanField(required=False, label="Distributed training")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["engine"].choices = engine_choices()
        if editing:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "The name and ID of an algorithm cannot be changed."

    def clean_policies(self):
        text = (self.cleaned_data.get("policies") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give a JSON object, e.g. {\"algorithm\": \"tpe\"}.")
        return value
