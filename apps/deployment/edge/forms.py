"""Forms of the edge pages. They parse the page's shapes (target "node:<id>", rule and volume
lines); every rule is checked by the services, whose errors land on the matching field."""
from __future__ import annotations

from django import forms

from .choices import Accelerator, LogLevel

RETENTION = forms.IntegerField(label="Log retention (days)", initial=7, help_text="1–30 days.")


class EdgeNodeForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Letters, digits, _ and -, 1–64 characters.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    accelerator = forms.ChoiceField(choices=Accelerator.choices, initial=Accelerator.NONE, label="AI accelerator")
    log_retention_days = forms.IntegerField(label="Log retention (days)", initial=7, help_text="1–30 days.")
    system_log_level = forms.ChoiceField(choices=LogLevel.choices, initial=LogLevel.DEBUG, label="System log level")
    app_log_level = forms.ChoiceField(choices=LogLevel.choices, initial=LogLevel.DEBUG, label="App log level")
    log_rotate_days = forms.IntegerField(label="Roll logs every (days)", initial=5,
                                         help_text="Logs are kept to 50 MB in 10 MB files (fixed).")


class LogSettingsForm(forms.Form):
    log_retention_days = forms.IntegerField(label="Log retention (days)", help_text="1–30 days.")
    system_log_level = forms.ChoiceField(choices=LogLevel.choices, label="System log level")
    app_log_level = forms.ChoiceField(choices=LogLevel.choices, label="App log level")
    log_rotate_days = forms.IntegerField(label="Roll logs every (days)")


class EdgePoolForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(required=False)
    max_workers = forms.IntegerField(initial=8, label="Max worker count", help_text="1–64.")
    masters = forms.MultipleChoiceField(choices=(), required=False, widget=forms.CheckboxSelectMultiple,
                                        help_text="1–3 master nodes.")
    workers = forms.MultipleChoiceField(choices=(), required=False, widget=forms.CheckboxSelectMultiple,
                                        help_text="Not the masters.")

    def __init__(self, *args, nodes=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(str(n.pk), n.name) for n in nodes if not n.edge_pool_id]
        self.fields["masters"].choices = self.fields["workers"].choices = choices


def _target_choices(nodes, pools):
    return ([("", "Choose a node or pool")] + [(f"node:{n.pk}", f"Node · {n.name} ({n.status})") for n in nodes]
            + [(f"pool:{p.pk}", f"Pool · {p.name}") for p in pools])


class EdgeServiceForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(required=False)
    target = forms.ChoiceField(label="Deploy to")
    model_version = forms.ChoiceField(label="AI application version")
    flavor = forms.ChoiceField()
    instance_count = forms.IntegerField(initial=1, label="Instances",
                                        help_text="At most 10 per deployment are recommended, to avoid throttling.")
    stream_count = forms.IntegerField(required=False, label="Number of streams",
                                      help_text="Asynchronous applications: video streams each instance processes "
                                                "concurrently (1–64).")
    container_port = forms.IntegerField(required=False, label="Container port")
    host_ip = forms.CharField(required=False, label="Host NIC address", initial="0.0.0.0")
    host_port = forms.IntegerField(required=False, label="Host port (fixed)")
    port_min = forms.IntegerField(required=False, label="…or automatic from")
    port_max = forms.IntegerField(required=False, label="to")
    volumes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text="One per line: <code>name host_path /node/dir /mount/path [ro]</code>, "
                                        "<code>name temp_path /mount/path [memory]</code> or "
                                        "<code>name nfs server:/export /mount/path [ro]</code>.")
    start_params = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                   label="Start parameters", help_text="One NAME=value per line.")

    def __init__(self, *args, nodes=(), pools=(), versions=(), flavors=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = _target_choices(nodes, pools)
        self.fields["model_version"].choices = [(str(v.pk), v.label) for v in versions]
        self.fields["flavor"].choices = [(f.name, f"{f.name} ({f.summary})") for f in flavors]

    def mappings(self) -> list[dict]:
        d = self.cleaned_data
        if not d.get("container_port"):
            return []
        return [{"container_port": d["container_port"], "host_ip": d.get("host_ip") or "0.0.0.0",
                 "host_port": d.get("host_port"), "port_min": d.get("port_min"), "port_max": d.get("port_max")}]

    def volume_rows(self) -> list[dict]:
        rows = []
        for line in (self.cleaned_data.get("volumes") or "").splitlines():
            parts = line.split()
            if not parts:
                continue
            row = {"name": parts[0], "type": parts[1] if len(parts) > 1 else ""}
            if row["type"] in ("host_path", "nfs"):
                row["host_path" if row["type"] == "host_path" else "source"] = parts[2] if len(parts) > 2 else ""
                row.update(mount_path=parts[3] if len(parts) > 3 else "", read_only=len(parts) > 4 and parts[4] == "ro")
            else:
                row["mount_path"] = parts[2] if len(parts) > 2 else ""
                if len(parts) > 3:
                    row["medium"] = parts[3]
            rows.append(row)
        return rows

    def params(self) -> dict:
        out = {}
        for line in (self.cleaned_data.get("start_params") or "").splitlines():
            if line.strip():
                name, _, value = line.partition("=")
                out[name.strip()] = value.strip()
        return out

    def version_facts(self, versions) -> dict:
        """{version id: {"async", "params"}} for the page's script: it shows the number of streams and
        the application's start parameters for asynchronous versions."""
        return {str(v.pk): {"async": v.app.request_mode == "async", "params": v.start_params} for v in versions}


class LoadBalancerForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(required=False)
    target = forms.ChoiceField(label="Target")
    listen_port = forms.IntegerField(label="Listen port", help_text="1–65535.")
    sticky = forms.BooleanField(required=False, label="Session persistence by client IP")
    rules = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Forwarding rules",
                            help_text="One per line: <code>prefix|exact|regex /path edge-service-name</code>. "
                                      "Paths start with / and use letters, digits, *, / and - (1–255).")

    def __init__(self, *args, nodes=(), pools=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = _target_choices(nodes, pools)


class AccessPortForm(forms.Form):
    name = forms.CharField(max_length=64)
    service = forms.ChoiceField(label="Edge service")
    port = forms.IntegerField(label="Access port (TCP)")
    container_port = forms.IntegerField(label="Container port")

    def __init__(self, *args, services=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = [(str(s.pk), s.name) for s in services]
