"""A page that puts every shared client behaviour together, for the browser test of the shell.

Mounted beside the console's own URLs (tests use it with @pytest.mark.urls); its confirm form
posts to a view that checks the typed name with ConfirmNameForm, as a section's delete view does.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template import engines
from django.urls import include, path

from apps.core.forms import ConfirmNameForm

OBJECT_NAME = "raw-images"
REFRESHES = {"count": 0}

PAGE = engines["django"].from_string("""{% extends "base.html" %}
{% block content %}
<div class="page-header"><div class="page-header-text"><h1>Components</h1></div>
  <div class="page-actions">
    <button type="button" class="btn btn-danger-outline" data-modal-open="delete-bucket">Delete bucket</button>
    <button type="button" class="btn" hx-post="/_components/notify/" hx-swap="none">Notify</button>
  </div>
</div>
<section class="panel"><div class="panel-header"><h2>Events</h2></div>
  {% include "components/timeline.html" with timeline=timeline %}
</section>
<section class="panel"><div id="counter" data-live-source="tests.thing" data-live-pk="1" data-live-refresh="/_components/counter/">refreshed 0 times</div></section>
<section class="panel">
  <div class="tabs" role="tablist" data-tabs>
    <button type="button" class="tab active" role="tab" id="tab-logs" aria-controls="panel-logs" aria-selected="true">Logs</button>
    <button type="button" class="tab" role="tab" id="tab-metrics" aria-controls="panel-metrics" aria-selected="false" tabindex="-1">Metrics</button>
    <button type="button" class="tab" role="tab" id="tab-events" aria-controls="panel-events" aria-selected="false" tabindex="-1">Events</button>
  </div>
  <div id="panel-logs" role="tabpanel" aria-labelledby="tab-logs">epoch 1 loss 0.93</div>
  <div id="panel-metrics" role="tabpanel" aria-labelledby="tab-metrics" hidden>accuracy 0.71</div>
  <div id="panel-events" role="tabpanel" aria-labelledby="tab-events" hidden>started</div>
</section>
{% include "components/modal.html" with id="delete-bucket" title="Delete bucket" body_template="components/confirm_delete.html" name=object_name object_label="bucket" action="/_components/delete/" consequences="Every file in it is deleted." %}
{% endblock %}""")


@login_required
def page(request):
    timeline = {"events": [], "truncated": False, "source": "tests.thing", "pk": 1}
    return HttpResponse(PAGE.render({"timeline": timeline, "object_name": OBJECT_NAME}, request))


@login_required
def delete(request):
    form = ConfirmNameForm(request.POST, expected=OBJECT_NAME)
    if form.is_valid():
        messages.success(request, f"Bucket {OBJECT_NAME} deleted.")
    else:
        messages.error(request, form.errors["confirm_name"][0])
    return redirect("/_components/")


@login_required
def notify(request):
    messages.info(request, "Export started; you will be notified when it finishes.")
    return HttpResponse(status=204)


@login_required
def counter(request):
    REFRESHES["count"] += 1
    return HttpResponse(f"refreshed {REFRESHES['count']} times")


urlpatterns = [
    path("_components/", page),
    path("_components/delete/", delete),
    path("_components/notify/", notify),
    path("_components/counter/", counter),
    path("", include("console.urls")),
]
handler404 = "apps.core.errors.not_found"
