"""Forms of the deployment pages. They shape input; the rules live in the services, whose
ValidationErrors come back onto these forms' fields."""
from __future__ import annotations

import json

from django import forms

from apps.runtime.models import Flavor, Pool
from apps.storage.widgets import StoragePathWidget

from .choices import AlarmMetric, Comparison, DeployType, ModelSource, RequestMode
from .monitoring import PERIODS

AUTO_STOP_CHOICES = [("", "Off"), ("1", "After 1 hour"), ("2", "After 2 hours"), ("4", "After 4 hours"),
                     ("6", "After 6 hours"), ("custom", "Custom (1–24 hours)")]


class ModelCreateForm(forms.Form):
    """Create an AI application (or, with `app` given, a new version of one)."""

    name = forms.CharField(max_length=64, help_text="1–64 letters, digits, hyphens and underscores.")
    version = forms.CharField(max_length=32, required=False,
                              help_text="Three numbers such as 0.0.1; empty: the next patch version.")
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    source_type = forms.ChoiceField(label="Meta-model source", choices=ModelSource.choices, initial=ModelSource.STORAGE,
                                    widget=forms.RadioSelect)
    source_uri = forms.CharField(label="Meta-model storage path", required=False,
                                 widget=StoragePathWidget(kind="folder", allow_create=False),
                                 help_text="The folder that holds model/ (config.json, customize_service.py and the "
                                           "model files). For a container image it is optional: its model/ files "
                                           "appear read-only at /home/mind/model.")
    training_job = forms.ChoiceField(label="Training job", required=False,
                                     help_text="A completed training job whose output folder holds model/.")
    image = forms.CharField(label="Container image", required=False, max_length=500,
                            help_text="e.g. registry.local/team/server:1.0 (needs Docker on the workers).")
    image_copy = forms.BooleanField(label="Image copy (pull the image now)", required=False)
    command = forms.CharField(label="Start command", required=False, max_length=4000,
                              help_text="Command line that starts the server; it must listen on $PORT "
                                        "(a container: on the port below).")
    protocol = forms.ChoiceField(choices=[("http", "HTTP"), ("https", "HTTPS")], initial="http")
    port = forms.IntegerField(min_value=1, max_value=65535, initial=8080, label="Container port")
    api_url = forms.CharField(label="API path", initial="/", max_length=255, required=False)
    api_method = forms.ChoiceField(label="API method", choices=[(m, m) for m in ("POST", "GET", "PUT")], initial="POST")
    api_content_type = forms.ChoiceField(label="Request type", choices=[("application/json", "JSON"),
                                                                       ("multipart/form-data", "File upload")])
    health_method = forms.ChoiceField(label="Health check", required=False,
                                      choices=[("", "None"), ("HTTP", "HTTP request"), ("EXEC", "Command")])
    health_url = forms.CharField(label="Health check URL", initial="/health", required=False, max_length=255)
    health_command = forms.CharField(label="Health check command", required=False, max_length=1000)
    health_period = forms.IntegerField(label="Check period (s)", min_value=1, initial=10, required=False)
    health_delay = forms.IntegerField(label="Delay (s)", min_value=0, initial=0, required=False)
    health_failures = forms.IntegerField(label="Max failures", min_value=1, initial=3, required=False)
    deploy_types = forms.MultipleChoiceField(label="Deployment types", choices=DeployType.choices,
                                             initial=[DeployType.ONLINE], widget=forms.CheckboxSelectMultiple)
    request_mode = forms.ChoiceField(choices=RequestMode.choices, initial=RequestMode.SYNC)
    docs = forms.CharField(label="AI application docs", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Up to 3 lines of “name | https://url”.")
    start_params = forms.CharField(
        label="Service start parameters", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Asynchronous applications only. One per line: <code>NAME=default # description</code>; "
                  "a NAME without = must be given at deployment.")

    def __init__(self, *args, user=None, workspace=None, app=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.app = user, app
        if app is not None:
            self.fields["name"].required = False
            self.fields["name"].disabled = True
            self.fields["name"].initial = app.name
            del self.fields["request_mode"]
        self.fields["training_job"].choices = [("", "—")] + self._training_jobs(workspace)

    @staticmethod
    def _training_jobs(workspace) -> list[tuple[str, str]]:
        from django.apps import apps as django_apps

        if workspace is None or not django_apps.is_installed("apps.training"):
            return []
        from apps.training.choices import TrainingStatus
        from apps.training.models import TrainingJob

        jobs = TrainingJob.objects.filter(workspace=workspace, status=TrainingStatus.COMPLETED).order_by("-created_at")
        return [(str(job.pk), job.name) for job in jobs[:200]]

    def clean_docs(self) -> list[dict]:
        docs = []
        for number, line in enumerate((self.cleaned_data.get("docs") or "").splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, url = line.partition("|")
            if not sep:
                raise forms.ValidationError(f"Line {number}: write “name | https://url”.")
            docs.append({"name": name.strip(), "url": url.strip()})
        return docs

    def clean_start_params(self) -> list[dict]:
        """Lines `NAME=default # description` (NAME alone: required); the service checks the names."""
        rows = []
        for line in (self.cleaned_data.get("start_params") or "").splitlines():
            spec, _, description = line.partition("#")
            if not spec.strip():
                continue
            name, sep, default = spec.partition("=")
            rows.append({"name": name.strip(), "default": default.strip(), "required": not sep,
                         "description": description.strip()})
        return rows

    def service_kwargs(self) -> dict:
        """Keyword arguments for services.ai_app_create / ai_app_version_create."""
        data = self.cleaned_data
        kwargs = dict(version=data.get("version") or "", description=data.get("description") or "",
                      source_type=data["source_type"], deploy_types=data["deploy_types"], docs=data["docs"],
                      start_params=data.get("start_params") or [])
        if data["source_type"] == ModelSource.STORAGE:
            kwargs["source_uri"] = data.get("source_uri") or ""
        elif data["source_type"] == ModelSource.TRAINING:
            kwargs["training_job"] = data.get("training_job") or None
        else:
            if data["source_type"] == ModelSource.IMAGE:  # optional: its model/ appears at /home/mind/model
                kwargs["source_uri"] = data.get("source_uri") or ""
            kwargs.update(image=data.get("image") or "", image_copy=data.get("image_copy", False),
                          command=data.get("command") or "", protocol=data["protocol"], port=data.get("port") or 8080,
                          apis=[{"url": data.get("api_url") or "/", "method": data["api_method"],
                                 "request": {"Content-type": data["api_content_type"]},
                                 "response": {"Content-type": "application/json"}}])
            if data.get("health_method"):
                kwargs["health"] = {"check_method": data["health_method"], "url": data.get("health_url") or "/health",
                                    "command": data.get("health_command") or "",
                                    "period_seconds": data.get("health_period"),
                                    "initial_delay_seconds": data.get("health_delay") or 0,
                                    "failure_threshold": data.get("health_failures")}
        return kwargs


class ServiceForm(forms.Form):
    """Deploy (or modify) an online service. The version rows arrive as `versions_json`, a JSON
    list written by the page's version editor (static/deployment/deploy_form.js)."""

    name = forms.CharField(max_length=64, help_text="1–64 letters, digits, hyphens and underscores.")
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    auto_stop = forms.ChoiceField(label="Auto-stop", choices=AUTO_STOP_CHOICES, initial="1", required=False)
    auto_stop_custom = forms.IntegerField(label="Custom hours", min_value=1, max_value=24, required=False)
    deploy_timeout_minutes = forms.IntegerField(label="Deploy timeout (minutes)", min_value=3, max_value=120,
                                                initial=20)
    traffic_limit = forms.IntegerField(label="Traffic limit (requests/s)", min_value=1, required=False,
                                       help_text="Empty: no limit.")
    websocket = forms.BooleanField(label="Upgrade to WebSocket", required=False,
                                   help_text="Accept WebSocket connections on the service address. Any AI "
                                             "application may use it (Atelier's model server speaks WebSocket, "
                                             "so it is not limited to container images). Excludes a traffic "
                                             "limit; cannot be changed after deployment.")
    max_unavailable = forms.IntegerField(label="Max invalid instances", min_value=1, initial=1,
                                         help_text="Instances upgraded at once.")
    mount_source = forms.CharField(label="Storage mount: folder", required=False, max_length=1024,
                                   help_text="storage://bucket/folder, staged into every instance.")
    mount_path = forms.CharField(label="Mount path", required=False, max_length=1024,
                                 help_text="e.g. /home/mind/data; instances find it through MODEL_MOUNTS.")
    versions_json = forms.CharField(widget=forms.HiddenInput, required=False)
    rules_json = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["name"].disabled = True
            self.fields["name"].required = False
            self.fields["websocket"].disabled = True
            self.fields["mount_source"].disabled = True
            self.fields["mount_path"].disabled = True

    def _json(self, field: str) -> list:
        raw = self.cleaned_data.get(field) or "[]"
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("The page sent malformed data; reload it.") from None
        if not isinstance(value, list):
            raise forms.ValidationError("The page sent malformed data; reload it.")
        return value

    def clean_versions_json(self) -> list:
        rows = self._json("versions_json")
        clean = []
        for row in rows:
            if not isinstance(row, dict):
                raise forms.ValidationError("The page sent malformed data; reload it.")
            env = {}
            for line in str(row.get("env") or "").splitlines():
                if line.strip():
                    name, _, value = line.partition("=")
                    env[name.strip()] = value.strip()
            clean.append({"model_version": row.get("model_version"), "weight": row.get("weight"),
                          "flavor": row.get("flavor"), "pool": row.get("pool"),
                          "instance_count": row.get("instance_count") or 1, "env": env})
        return clean

    def clean_rules_json(self) -> list:
        return self._json("rules_json")

    def mounts(self) -> list[dict]:
        """The one storage mount the page offers (the API takes up to 8)."""
        return [{"source": self.cleaned_data.get("mount_source") or "",
                 "mount_path": self.cleaned_data.get("mount_path") or ""}]

    def auto_stop_hours(self):
        choice = self.cleaned_data.get("auto_stop") or ""
        if choice == "custom":
            return self.cleaned_data.get("auto_stop_custom") or 0
        return int(choice) if choice else None


def flavor_choices() -> list[dict]:
    """Pools accepting inference runs and their flavors, for the version editor."""
    out = []
    for pool in Pool.objects.filter(status="enabled").prefetch_related("flavors").order_by("name"):
        if "inference" not in pool.job_types:
            continue
        out.append({"id": pool.pk, "name": pool.name,
                    "flavors": [{"id": f.pk, "name": f.name, "summary": f.summary} for f in pool.flavors.all()]})
    return out


class BatchServiceForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    model_version = forms.ChoiceField(label="AI application version")
    input_uri = forms.CharField(label="Input data location", widget=StoragePathWidget(kind="folder", allow_create=False),
                                help_text="A folder, or type the path of a .manifest file (one {\"source\": …} per line).")
    output_uri = forms.CharField(label="Output data location", widget=StoragePathWidget(kind="folder"))
    mapping = forms.CharField(label="Mapping (CSV column → field)", required=False,
                              widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
                              help_text="For JSON models reading CSV: each field's 0-based column as \"index\". "
                                        "Empty: generated from config.json.")
    pool = forms.ModelChoiceField(queryset=Pool.objects.filter(status="enabled"))
    flavor = forms.ModelChoiceField(queryset=Flavor.objects.all())
    instance_count = forms.IntegerField(min_value=1, initial=1)
    env = forms.CharField(label="Environment variables", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                          help_text="One NAME=value per line.")
    deploy_timeout_minutes = forms.IntegerField(label="Deploy timeout (minutes)", min_value=3, max_value=120,
                                                initial=20)

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model_version"].choices = [(str(v.pk), v.label) for v in versions]

    def clean_env(self) -> dict:
        env = {}
        for line in (self.cleaned_data.get("env") or "").splitlines():
            if line.strip():
                name, sep, value = line.partition("=")
                if not sep:
                    raise forms.ValidationError(f"“{line.strip()}” is not NAME=value.")
                env[name.strip()] = value.strip()
        return env


class ApiKeyForm(forms.Form):
    kind = forms.ChoiceField(label="Type", choices=[("token", "API key (X-Auth-Token)"),
                                                    ("app", "App key + secret (signed requests)")],
                             initial="token", required=False)
    name = forms.CharField(max_length=64)
    rate_limit = forms.IntegerField(label="Rate limit (requests/minute)", min_value=1, required=False,
                                    help_text="Empty: no limit.")


class AlarmRuleForm(forms.Form):
    name = forms.CharField(max_length=64)
    model_version = forms.ChoiceField(label="Monitored object", required=False)
    metric = forms.ChoiceField(choices=AlarmMetric.choices)
    comparison = forms.ChoiceField(choices=Comparison.choices)
    threshold = forms.FloatField()
    period_minutes = forms.TypedChoiceField(label="Period", coerce=int, choices=[(p, f"{p} min") for p in PERIODS])
    notify = forms.BooleanField(label="Send a notification", required=False)
    notify_target = forms.CharField(label="Notify", required=False, max_length=500,
                                    help_text="E-mail addresses (comma-separated) or a webhook URL.")

    def __init__(self, *args, service=None, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "The whole service")]
        if service is not None:
            choices += [(str(sv.model_version_id), sv.model_version.label)
                        for sv in service.versions.select_related("model_version__app")]
        self.fields["model_version"].choices = choices
