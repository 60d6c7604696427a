"""Forms of the Data section. Rules live in the services; forms parse and present."""
from __future__ import annotations

import secrets

from django import forms

from apps.storage.forms import StoragePathField, StoragePathFormMixin
from apps.storage.widgets import StoragePathWidget

from .choices import (
    EXTENSIONS,
    LABEL_TYPES_BY_DATA_TYPE,
    ColumnType,
    DataType,
    ExportFormat,
    ExportMethod,
    ImportFormat,
    LabelType,
    VersionFormat,
)


def default_dataset_name() -> str:
    """`dataset-` plus 4 hex characters, the ModelArts default shape."""
    return f"dataset-{secrets.token_hex(2)}"


class CounterTextarea(forms.Textarea):
    """A textarea with a live `n/max` counter (static/datasets/counter.js)."""

    def __init__(self, max_length: int, attrs=None):
        super().__init__({"rows": 3, "maxlength": str(max_length), "data-counter": str(max_length), **(attrs or {})})


class DatasetCreateForm(StoragePathFormMixin, forms.Form):
    name = forms.CharField(max_length=64, help_text="1–64 letters, digits, _ or -, starting with a letter.",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    description = forms.CharField(required=False, max_length=256, widget=CounterTextarea(256))
    data_type = forms.ChoiceField(choices=DataType.choices, initial=DataType.IMAGE, label="Data type")
    label_type = forms.ChoiceField(choices=LabelType.choices, initial=LabelType.IMAGE_CLASSIFICATION,
                                   label="Label type")
    input_location = StoragePathField(label="Input location", action="storage:view", kind="folder",
                                      help_text="The data source folder: its files are imported now, and later "
                                                "imports copy into it.")
    output_location = StoragePathField(label="Output location", action="storage:create", kind="folder",
                                       help_text="Versions, thumbnails and labeling output go here. It cannot be the "
                                                 "input folder or inside it; an empty folder is recommended.")
    labeled = forms.BooleanField(required=False, label="The data is already labeled")
    import_format = forms.ChoiceField(required=False, label="Annotation format",
                                      choices=[("", "—")] + list(ImportFormat.choices))
    table_has_header = forms.BooleanField(required=False, initial=True, label="The first row of each CSV is a header")
    table_schema = forms.CharField(
        required=False, label="Schema", widget=forms.Textarea(attrs={"rows": 4, "class": "mono",
                                                                     "placeholder": "name:String\nage:Int"}),
        help_text="Table datasets: one column per line as name:Type, types "
                  f"{', '.join(ColumnType.values)}. Leave empty to detect it from the CSV files.")

    def clean_table_schema(self):
        raw = self.cleaned_data.get("table_schema", "").strip()
        columns = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, kind = line.partition(":")
            if not sep:
                raise forms.ValidationError(f'Line {number} is "{line}"; write name:Type.')
            columns.append({"name": name.strip(), "type": kind.strip()})
        return columns


class DatasetEditForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="1–64 letters, digits, _ or -, starting with a letter.")
    description = forms.CharField(required=False, max_length=256, widget=CounterTextarea(256))


class ImportForm(StoragePathFormMixin, forms.Form):
    path = StoragePathField(label="Import path", action="storage:view", kind=None, must_exist=True,
                            allow_create=False, help_text="A folder, or a manifest / JSON / XML file.")
    format = forms.ChoiceField(choices=ImportFormat.choices, label="Format", initial=ImportFormat.RAW)
    labeled = forms.BooleanField(required=False, initial=True, label="Import the labels too")
    labels = forms.CharField(required=False, label="Import by label",
                             help_text="Only samples carrying one of these labels (comma-separated); empty = all.")
    hard_only = forms.BooleanField(required=False, label="Import hard examples only (manifest)")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(label="Files", help_text="Up to 100 files, 5 GB in all; zip archives are unpacked.")
    # Spec §5.5 "storage path for uploaded data"; checked by `dataset_upload` (writable folder, not
    # inside the output location), so a plain text field with the picker.
    storage_path = forms.CharField(required=False, label="Storage path for uploaded data",
                                   widget=StoragePathWidget(kind="folder"),
                                   help_text="Each upload gets a new time-stamped folder inside it; empty = the "
                                             "dataset's input location.")
    format = forms.ChoiceField(choices=ImportFormat.choices, label="Format", initial=ImportFormat.RAW)


class PublishForm(forms.Form):
    name = forms.CharField(required=False, max_length=64, label="Version name",
                           help_text="Letters, digits, - and _; empty = the next V00n.")
    description = forms.CharField(required=False, max_length=256, widget=CounterTextarea(256))
    split_enabled = forms.BooleanField(required=False, label="Split into training and validation sets")
    train_ratio = forms.FloatField(required=False, min_value=0, max_value=1, initial=0.8, label="Training ratio",
                                   widget=forms.NumberInput(attrs={"step": "0.05", "data-train-ratio": ""}))
    hard_attribute = forms.BooleanField(required=False, label="Write the hard-example attribute")
    format = forms.ChoiceField(choices=VersionFormat.choices, initial=VersionFormat.DEFAULT, label="Version format")


class ExportForm(StoragePathFormMixin, forms.Form):
    method = forms.ChoiceField(choices=ExportMethod.choices, initial=ExportMethod.STORAGE, label="Export to")
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.DEFAULT)
    path = StoragePathField(label="Save path", action="storage:create", kind="folder")
    name = forms.CharField(required=False, max_length=64, label="New dataset name")
    output_path = StoragePathField(required=False, label="New dataset output location", action="storage:create",
                                   kind="folder")
    filter = forms.CharField(required=False, widget=forms.HiddenInput)


class LabelForm(forms.Form):
    name = forms.CharField(max_length=1024)
    color = forms.CharField(max_length=7, initial="#3b82f6", widget=forms.TextInput(attrs={"type": "color"}))
    attributes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
                                 help_text="One attribute per line: name: value1, value2")

    def clean_attributes(self):
        out = []
        for line in self.cleaned_data.get("attributes", "").splitlines():
            if line.strip():
                name, _, values = line.partition(":")
                out.append({"name": name.strip(), "values": [v.strip() for v in values.split(",") if v.strip()]})
        return out


class AutoGroupForm(StoragePathFormMixin, forms.Form):
    groups = forms.IntegerField(min_value=2, max_value=200, initial=4, label="Number of groups",
                                help_text="An integer from 2 to 200.")
    handling = forms.ChoiceField(choices=[("attribute", "Write a sample attribute"),
                                          ("storage", "Save a result file to storage")], initial="attribute")
    attribute = forms.CharField(required=False, max_length=128, label="Attribute name")
    result_path = StoragePathField(required=False, label="Result directory", action="storage:create", kind="folder")
    features = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                         choices=[("clarity", "Clarity"), ("brightness", "Brightness"),
                                                  ("colour", "Image colour")], label="Advanced features")


def _operator_choices() -> list[tuple[str, str]]:
    # Imported on use: the processing module pulls in the imaging stack, which list pages do not need.
    from .processing import OPERATORS

    return [(name, name.replace("_", " ")) for name in sorted(OPERATORS)]


class ProcessingForm(forms.Form):
    operation = forms.ChoiceField(choices=[("validate", "Data validation"), ("clean", "Data cleaning"),
                                           ("dedupe", "Data selection (de-duplicate)"),
                                           ("augment", "Data augmentation")])
    threshold = forms.IntegerField(required=False, min_value=0, max_value=64, initial=5,
                                   label="Similarity threshold (hash bits)")
    operators = forms.MultipleChoiceField(required=False, label="Augmentation operators",
                                          choices=_operator_choices, widget=forms.CheckboxSelectMultiple(
                                              attrs={"class": "ds-operator"}),
                                          help_text="Used by data augmentation: each copy applies one of them.")
    copies = forms.IntegerField(required=False, min_value=1, max_value=10, initial=1)


def create_form_config() -> dict:
    """What the create form's script needs: label types and extensions per data type."""
    return {
        "labelTypes": {dt: [[lt, LabelType(lt).label] for lt in lts] for dt, lts in LABEL_TYPES_BY_DATA_TYPE.items()},
        "extensions": {dt: " ".join(exts) if exts else "any format" for dt, exts in EXTENSIONS.items()},
    }
