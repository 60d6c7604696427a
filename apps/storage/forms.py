"""Storage forms: the reusable path field, and the browser's own small forms."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ImproperlyConfigured

from apps.core.paths import MAX_PATH_LENGTH

from .selectors import storage_path_resolve
from .widgets import StoragePathWidget


class StoragePathField(forms.CharField):
    """A `storage://bucket/key` field: cleans to a `StoragePath` the form's user may use.

    Validation goes through `storage_path_resolve(user, value, action, must_exist=…, kind=…)`,
    so naming rules, bucket ownership (other workspaces' buckets "do not exist") and the
    role's `action` are checked. The form must set `user` on the field; use
    `StoragePathFormMixin`. Renders with `StoragePathWidget` (see its docstring for usage).
    """

    def __init__(self, *, action: str = "storage:view", must_exist: bool = False, kind: str | None = "folder",
                 allow_create: bool = True, **kwargs):
        kwargs.setdefault("max_length", MAX_PATH_LENGTH + len("storage://"))
        kwargs.setdefault("widget", StoragePathWidget(kind=kind or "folder", allow_create=allow_create))
        kwargs.setdefault("help_text", "A path like storage://bucket/folder; use Select to browse.")
        super().__init__(**kwargs)
        self.action = action
        self.must_exist = must_exist
        self.kind = kind
        self.user = None

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return None
        if self.user is None:
            raise ImproperlyConfigured("StoragePathField needs the form's user; use StoragePathFormMixin.")
        return storage_path_resolve(self.user, value, self.action, must_exist=self.must_exist, kind=self.kind)


class StoragePathFormMixin:
    """Accepts `user=` and hands it to every StoragePathField of the form."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        for field in self.fields.values():
            if isinstance(field, StoragePathField):
                field.user = user


class BucketCreateForm(forms.Form):
    name = forms.CharField(
        label="Bucket name", max_length=63,
        help_text="3–63 characters: lowercase letters, digits and hyphens; unique across the platform.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. c-flowers", "autocomplete": "off", "spellcheck": "false"}),
    )


class FolderCreateForm(forms.Form):
    name = forms.CharField(
        label="Folder name", max_length=MAX_PATH_LENGTH, strip=False,
        help_text='Each "/" starts a nested folder: a/b/c creates three levels.',
        widget=forms.TextInput(attrs={"placeholder": "e.g. images/train", "autocomplete": "off",
                                      "spellcheck": "false"}),
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file input with `multiple`: cleans to the list of every chosen file."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if not files:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class UploadForm(forms.Form):
    files = MultipleFileField(label="Files", error_messages={"required": "Choose at least one file to upload."})


class GoToPathForm(StoragePathFormMixin, forms.Form):
    """Open any folder by path; the bucket list's path picker."""

    path = StoragePathField(label="Go to path", kind="folder", must_exist=True,
                            help_text="Type or select a folder to open it.")
