"""HtmxMessagesMiddleware: messages queued during htmx requests travel as HX-Trigger toasts."""
import json

import pytest
from django.contrib import messages
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse, HttpResponseRedirect
from django.test import RequestFactory
from django_htmx.middleware import HtmxMiddleware

from apps.core.middleware import HtmxMessagesMiddleware


def stack(view):
    """The settings order: sessions, messages, django-htmx, then ours around the view."""
    return SessionMiddleware(MessageMiddleware(HtmxMiddleware(HtmxMessagesMiddleware(view))))


def adds_message(response_factory):
    def view(request):
        messages.success(request, "Bucket raw-images created.")
        messages.error(request, 'Folder "tmp" is not empty.')
        return response_factory(request)

    return view


def trigger(response) -> dict:
    return json.loads(response["HX-Trigger"])


def stored_messages(response) -> list[str]:
    """The messages the response left in the (signed) messages cookie for the next request."""
    cookie = response.cookies.get("messages")
    if cookie is None or not cookie.value:
        return []
    request = RequestFactory().get("/")
    request.COOKIES["messages"] = cookie.value
    return [str(m) for m in CookieStorage(request)]


HTMX = {"HTTP_HX_REQUEST": "true"}


def test_htmx_fragment_carries_messages_and_consumes_them(db):
    response = stack(adds_message(lambda r: HttpResponse("<tr></tr>")))(RequestFactory().post("/x", **HTMX))
    assert trigger(response) == {"atelier:messages": {"items": [
        {"level": "success", "message": "Bucket raw-images created."},
        {"level": "error", "message": 'Folder "tmp" is not empty.'},
    ]}}
    assert stored_messages(response) == []  # delivered, not kept for the next page


@pytest.mark.parametrize("existing, expected", [
    ("bucketCreated", {"bucketCreated": None}),
    ("a, b", {"a": None, "b": None}),
    ('{"atelier:modal-close": true}', {"atelier:modal-close": True}),
])
def test_existing_triggers_are_kept(db, existing, expected):
    def respond(request):
        response = HttpResponse("ok")
        response["HX-Trigger"] = existing
        return response

    response = stack(adds_message(respond))(RequestFactory().post("/x", **HTMX))
    body = trigger(response)
    assert {k: v for k, v in body.items() if k != "atelier:messages"} == expected
    assert len(body["atelier:messages"]["items"]) == 2


def test_plain_requests_keep_messages_for_the_next_page(db):
    response = stack(adds_message(lambda r: HttpResponse("page")))(RequestFactory().post("/x"))
    assert "HX-Trigger" not in response
    assert stored_messages(response) == ["Bucket raw-images created.", 'Folder "tmp" is not empty.']


@pytest.mark.parametrize("respond", [
    lambda r: HttpResponseRedirect("/storage/"),
    lambda r: _with_header("HX-Redirect", "/storage/"),
    lambda r: _with_header("HX-Refresh", "true"),
])
def test_htmx_navigation_leaves_messages_to_the_next_page(db, respond):
    response = stack(adds_message(respond))(RequestFactory().post("/x", **HTMX))
    assert "atelier:messages" not in response.get("HX-Trigger", "")
    assert stored_messages(response) == ["Bucket raw-images created.", 'Folder "tmp" is not empty.']


def _with_header(name, value):
    response = HttpResponse("")
    response[name] = value
    return response


def test_messages_already_rendered_are_not_sent_twice(db):
    def renders_them(request):
        text = " ".join(str(m) for m in messages.get_messages(request))
        return HttpResponse(text)

    response = stack(adds_message(renders_them))(RequestFactory().get("/x", **HTMX))
    assert "HX-Trigger" not in response
    assert b"Bucket raw-images created." in response.content


def test_no_messages_no_header(db):
    response = stack(lambda r: HttpResponse("ok"))(RequestFactory().get("/x", **HTMX))
    assert "HX-Trigger" not in response
