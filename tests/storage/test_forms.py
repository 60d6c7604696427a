"""The reusable path field and picker widget, and the browser's forms."""
import pytest
from django import forms
from django.core.exceptions import ImproperlyConfigured

from apps.core.paths import StoragePath
from apps.storage.forms import StoragePathField, StoragePathFormMixin
from apps.storage.widgets import StoragePathWidget


class ExportForm(StoragePathFormMixin, forms.Form):
    destination = StoragePathField(label="Save path", action="storage:create", kind="folder")
    source = StoragePathField(label="Input file", kind="file", must_exist=True, required=False, allow_create=False)


def test_field_cleans_to_a_storage_path(owner, bucket):
    form = ExportForm({"destination": " storage://data/exports/ ", "source": "storage://data/images/cat.jpg"},
                      user=owner)
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"destination": StoragePath("data", "exports"),
                                 "source": StoragePath("data", "images/cat.jpg")}


def test_field_reports_each_rule_on_its_field(owner, outsider, other_bucket, bucket):
    form = ExportForm({"destination": "storage://secret/out", "source": "storage://data/images"}, user=owner)
    assert not form.is_valid()
    assert form.errors == {"destination": ['The bucket "secret" does not exist.'],
                           "source": ["storage://data/images is a folder; choose a file."]}


def test_field_checks_the_action(viewer, bucket):
    form = ExportForm({"destination": "storage://data/out"}, user=viewer)
    assert form.errors == {"destination": ['Your role in workspace "alice-default" does not allow storage:create.']}


def test_field_requires_the_user(bucket):
    form = ExportForm({"destination": "storage://data/out"})
    with pytest.raises(ImproperlyConfigured, match="StoragePathField needs the form's user"):
        form.is_valid()


def test_widget_renders_input_select_button_and_api_urls(owner):
    html = str(ExportForm(user=owner)["destination"])
    assert 'data-path-picker data-kind="folder" data-allow-create="true"' in html
    assert 'data-buckets-url="/api/v1/storage/buckets/"' in html
    assert 'data-objects-url="/api/v1/storage/objects/"' in html
    assert 'data-folders-url="/api/v1/storage/folders/"' in html
    assert 'name="destination"' in html and 'placeholder="storage://bucket/folder"' in html
    assert '<button type="button" class="btn" data-path-picker-open aria-haspopup="dialog" ' \
           'aria-controls="id_destination">Select</button>' in html
    source = str(ExportForm(user=owner)["source"])
    assert 'data-kind="file" data-allow-create="false"' in source


def test_widget_keeps_the_typed_value_and_loads_its_module(owner):
    form = ExportForm({"destination": "storage://data/x<y"}, user=owner)
    html = str(form["destination"])
    assert 'value="storage://data/x&lt;y"' in html
    assert str(form.media) == ('<link href="/static/storage/storage.css" media="all" rel="stylesheet">\n'
                               '<script src="/static/storage/path_picker.js" type="module"></script>')


def test_widget_kind_is_checked():
    with pytest.raises(ValueError, match='StoragePathWidget kind is "folder" or "file".'):
        StoragePathWidget(kind="bucket")
