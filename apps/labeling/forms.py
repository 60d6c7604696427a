"""Forms of the Labeling pages. The label rows of the create form arrive as parallel lists
(`label_name`, `label_color`, …), one entry per row the page shows."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from apps.datasets.choices import LabelKind, LabelType

from .choices import LABELING_TYPES, SpeechLabelMode


class JobForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="1–64 letters, digits, Chinese characters, _ - or .")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "maxlength": 256}),
                                  help_text="Optional, at most 256 characters.")
    labeling_type = forms.ChoiceField(choices=[(t, LabelType(t).label) for t in LABELING_TYPES])
    dataset = forms.TypedChoiceField(coerce=int, choices=())
    team_enabled = forms.BooleanField(required=False, label="Enable team labeling")
    speech_content_enabled = forms.BooleanField(required=False, label="Enable speech content labeling")
    speech_label_mode = forms.ChoiceField(choices=SpeechLabelMode.choices, initial=SpeechLabelMode.SINGLE,
                                          required=False)

    def __init__(self, *args, datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.datasets = list(datasets)
        self.fields["dataset"].choices = [("", "Choose a dataset")] + [(d.pk, d.name) for d in self.datasets]
        # The description's limit is checked by the service with the character count in the message.
        self.fields["description"].max_length = None

    def clean_description(self):
        return self.cleaned_data.get("description") or ""

    def label_specs(self) -> list[dict]:
        """The label rows; a row with every field empty is ignored."""
        data = self.data
        names = data.getlist("label_name")
        specs = []
        for index, name in enumerate(names):
            def at(key, default=""):
                values = data.getlist(key)
                return values[index] if index < len(values) else default
            row = {"name": name, "color": at("label_color"), "kind": at("label_kind") or "",
                   "from": at("label_from"), "to": at("label_to"), "category": at("label_category"),
                   "shortcut": at("label_shortcut"), "attributes": parse_attributes(at("label_attributes"))}
            if not any([name.strip(), row["from"], row["to"], row["category"], row["shortcut"]]):
                continue
            if not row["kind"]:
                row.pop("kind")
            specs.append(row)
        return specs


def parse_attributes(text: str) -> list[dict]:
    """`color: white, black; kind` → [{"name": "color", "values": ["white", "black"]}, {"name": "kind", …}]."""
    out = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        name, _, values = part.partition(":")
        out.append({"name": name.strip(), "values": [v.strip() for v in values.split(",") if v.strip()]})
    return out


def format_attributes(attributes: list[dict]) -> str:
    return "; ".join(a["name"] + (": " + ", ".join(a["values"]) if a.get("values") else "") for a in attributes or [])


class JobEditForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    remarks = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    guide = forms.CharField(required=False, label="Labeling guide", widget=forms.Textarea(attrs={"rows": 10}),
                            help_text="What labelers should know: what to label, how tight boxes are, edge cases.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["description"].max_length = None


class LabelForm(forms.Form):
    name = forms.CharField(max_length=1024)
    color = forms.CharField(required=False, max_length=7, widget=forms.TextInput(attrs={"type": "color"}))
    kind = forms.ChoiceField(choices=LabelKind.choices, required=False)
    start = forms.CharField(required=False, label="Start entity")
    end = forms.CharField(required=False, label="End entity")
    category = forms.CharField(required=False)
    shortcut = forms.CharField(required=False, max_length=1)
    attributes = forms.CharField(required=False, help_text="name: value, value; other-name")

    # The fields only some labeling types use; the others are left off the page.
    TYPE_FIELDS = {
        "kind": {LabelType.TEXT_TRIPLET}, "start": {LabelType.TEXT_TRIPLET}, "end": {LabelType.TEXT_TRIPLET},
        "category": {LabelType.SPEECH_SEGMENTATION}, "shortcut": {LabelType.SOUND_CLASSIFICATION},
        "attributes": {LabelType.OBJECT_DETECTION, LabelType.VIDEO},
    }

    def __init__(self, *args, labeling_type: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if labeling_type:
            for name, types in self.TYPE_FIELDS.items():
                if labeling_type not in types:
                    del self.fields[name]

    def spec(self) -> dict:
        data = self.cleaned_data
        spec = {"name": data["name"], "color": data["color"], "from": data.get("start", ""), "to": data.get("end", ""),
                "category": data.get("category", ""), "shortcut": data.get("shortcut", ""),
                "attributes": parse_attributes(data.get("attributes", ""))}
        if data.get("kind"):
            spec["kind"] = data["kind"]
        return spec


class DeleteJobForm(forms.Form):
    confirm = forms.CharField(required=False, label="Type the job name to confirm")
    delete_annotations = forms.BooleanField(required=False, label="Also delete every annotation of the dataset")


def first_error(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
