"""Shared template components render what sections rely on."""
import pytest
from django.contrib.messages.storage.base import Message
from django.core.exceptions import ValidationError
from django.forms import CharField, Form
from django.template.loader import render_to_string
from django.test import RequestFactory

from apps.core.forms import ConfirmNameForm
from apps.core.templatetags.console import icon, json_pretty, status_tone


@pytest.mark.parametrize("status, tone", [
    ("queued", "pending"), ("pending", "pending"), ("running", "running"), ("succeeded", "success"),
    ("failed", "danger"), ("stopped", "muted"), ("lost", "danger"), ("online", "success"),
    ("offline", "muted"), ("Running", "running"), ("something-new", "neutral"), (None, "neutral"),
])
def test_status_tones(status, tone):
    assert status_tone(status) == tone


def test_status_badge_markup():
    html = render_to_string("components/status_badge.html", {"status": "failed"})
    assert html.strip().endswith(
        '<span class="badge badge-danger" data-status="failed"><span class="badge-dot" aria-hidden="true"></span>'
        "Failed</span>")
    labelled = render_to_string("components/status_badge.html", {"status": "running", "label": "Training (2/4)"})
    assert 'class="badge badge-running"' in labelled and "Training (2/4)</span>" in labelled


def test_icon_is_decorative_unless_labelled():
    assert icon("grid") == ('<svg class="icon" aria-hidden="true" focusable="false">'
                            '<use href="/static/core/icons.svg#i-grid"></use></svg>')
    assert 'role="img" aria-label="Close &amp; discard"' in icon("x", label="Close & discard")


def test_every_sidebar_icon_exists_in_the_sprite():
    from pathlib import Path

    from apps.core.navigation import SECTIONS

    sprite = (Path(__file__).resolve().parents[2] / "static/core/icons.svg").read_text()
    for section in SECTIONS:
        assert f'id="i-{section.icon}"' in sprite, section.key


def test_json_pretty_escapes_in_templates():
    assert json_pretty({"b": 1, "a": "<x>"}) == '{\n  "a": "<x>",\n  "b": 1\n}'
    html = render_to_string("core/auditentry_detail.html#entry", {
        "entry": type("E", (), {"detail": {"a": "<script>"}, "created_at": None, "workspace": None})(),
    })
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_confirm_delete_starts_disabled_and_shows_server_errors():
    form = ConfirmNameForm({"confirm_name": "nope"}, expected="raw-images")
    form.is_valid()
    request = RequestFactory().get("/")
    html = render_to_string("components/confirm_delete.html", {
        "name": "raw-images", "object_label": "bucket", "action": "/storage/raw-images/delete/", "form": form,
    }, request=request)
    assert 'action="/storage/raw-images/delete/"' in html
    assert 'data-confirm-name="raw-images"' in html
    assert 'data-confirm-submit disabled' in html
    assert "<span>Delete bucket</span>" in html
    assert 'Type the name &quot;raw-images&quot; exactly to confirm; you typed &quot;nope&quot;.' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "data-modal-close" in html  # no cancel_url: Cancel closes the surrounding dialog


def test_modal_markup():
    html = render_to_string("components/modal.html", {"id": "rename", "title": "Rename bucket", "size": "sm",
                                                      "body_url": "/storage/x/rename/"})
    assert '<dialog class="modal modal-sm" id="rename" aria-labelledby="rename-title" data-modal ' \
           'data-modal-url="/storage/x/rename/">' in html
    assert '<h2 class="modal-title" id="rename-title">Rename bucket</h2>' in html
    assert "data-modal-close" in html


class SampleForm(Form):
    name = CharField(help_text="Lowercase letters and digits.")
    note = CharField(required=False)

    def clean(self):
        if self.data.get("note") == "x":
            raise ValidationError("Names and notes disagree.")
        return self.cleaned_data


def test_form_include_renders_every_field_with_inline_errors():
    form = SampleForm({"name": "", "note": "x"})
    form.is_valid()
    html = render_to_string("components/form.html", {"form": form})
    assert '<div class="form-errors" role="alert"><p>Names and notes disagree.</p></div>' in html
    assert '<div class="field has-error" data-field="name">' in html
    assert '<p class="field-error" role="alert">This field is required.</p>' in html
    assert 'aria-invalid="true"' in html
    assert '<p class="help" id="id_name_helptext">Lowercase letters and digits.</p>' in html
    assert '<div class="field" data-field="note">' in html


def test_timeline_renders_events_and_its_live_subscription():
    from datetime import datetime, timezone

    events = [type("Ev", (), {"level": "error", "message": "node 1 exited with code 137",
                              "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)})()]
    html = render_to_string("components/timeline.html", {"timeline": {
        "events": events, "truncated": True, "source": "training.trainingjob", "pk": 7}})
    assert 'data-live-source="training.trainingjob" data-live-pk="7" data-live-append data-live-tz="UTC"' in html
    assert '<li class="timeline-item level-error">' in html
    assert '<time datetime="2026-01-02T03:04:05+00:00">2026-01-02 03:04:05</time>' in html
    assert "Showing the latest 1 events." in html
    assert "<template data-live-template>" in html
    assert "data-live-empty" not in html


def test_messages_render_as_toasts():
    html = render_to_string("components/messages.html", {"messages": [
        Message(40, "Bucket not deleted: it is not empty."), Message(25, "Bucket created."),
    ]})
    assert '<div class="toast toast-error" role="alert" data-toast>' in html
    assert '<div class="toast toast-success" role="status" data-toast>' in html
    assert "Bucket not deleted: it is not empty." in html
    assert "<template data-toast-template>" in html
