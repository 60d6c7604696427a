"""The storage path picker: a text input plus a "Select" button that browses buckets and folders.

Any section's form uses it for a path field (dataset input/output, training output,
workflow root …). The usual way is `apps.storage.forms.StoragePathField`, whose default
widget this is and which also validates the typed path for the form's user::

    from django import forms
    from apps.storage.forms import StoragePathField, StoragePathFormMixin

    class ExportForm(StoragePathFormMixin, forms.Form):
        destination = StoragePathField(label="Save path", action="storage:create", kind="folder")

    form = ExportForm(request.POST or None, user=request.user)   # the mixin wires the user in
    if form.is_valid():
        path = form.cleaned_data["destination"]                   # a validated StoragePath
        job.output_uri = path.uri                                 # store the "storage://…" string

The page must render `{{ form.media }}` (in `{% block head %}`) so the picker's ES module
(static/storage/path_picker.js) loads. The dialog lists the user's buckets through the
storage REST API (session auth), opens at the folder already typed in the input, offers
"Create bucket" and "New folder" (when `allow_create`), and on "Select" writes
`storage://bucket/key` into the input and fires `input` and `change` events on it.
Typing a path by hand keeps working: the field validates whatever the input holds.

Options: `kind="folder"` (choose a folder or bucket; files are listed but not choosable) or
`kind="file"` (choose a file); `allow_create=False` hides the create actions for read-only
choices (an input dataset that must already exist).
"""
from __future__ import annotations

from django import forms
from django.forms.widgets import Script
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe


class StoragePathWidget(forms.TextInput):
    template_name = "storage/widgets/path_picker.html"

    def __init__(self, attrs=None, *, kind: str = "folder", allow_create: bool = True):
        if kind not in ("folder", "file"):
            raise ValueError('StoragePathWidget kind is "folder" or "file".')
        base = {"placeholder": "storage://bucket/folder", "spellcheck": "false", "autocomplete": "off",
                "class": "path-picker-input mono"}
        super().__init__({**base, **(attrs or {})})
        self.kind = kind
        self.allow_create = allow_create

    @property
    def media(self):
        return forms.Media(css={"all": ["storage/storage.css"]}, js=[Script("storage/path_picker.js", type="module")])

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["picker"] = {
            "kind": self.kind,
            "allow_create": self.allow_create,
            "buckets_url": reverse("storage-api:bucket-list"),
            "objects_url": reverse("storage-api:object-list"),
            "folders_url": reverse("storage-api:folder-create"),
        }
        return context

    def render(self, name, value, attrs=None, renderer=None):
        # The project's template engine, so the template can live in templates/storage/ like
        # every other storage template (the default form renderer only searches app folders).
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))
