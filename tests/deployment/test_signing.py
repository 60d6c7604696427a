"""App keys and signed calls (SDK-HMAC-SHA256): the scheme itself, the gateway over real HTTP
(signed with the very snippet the call guide shows), refusals, and the keys tab and API."""
from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone as dt_timezone

import httpx
import pytest

from apps.deployment import signing
from apps.deployment.keys import service_app_create, service_key_create, service_key_revoke
from apps.deployment.models import ServiceApiKey
from apps.deployment.serving import service_create
from tests.deployment.conftest import attach_instances
from tests.deployment.packages import fixture_package

http = httpx.Client(timeout=30, trust_env=False)
BODY = json.dumps({"data": {"req_data": [{"x": 2, "y": 3}]}}).encode()
NOW = datetime(2026, 11, 29, 9, 15, tzinfo=dt_timezone.utc)


def _verify(secret, headers, *, method="POST", path="/infer/s/", query="", body=BODY, now=NOW):
    signing.verify(secret, method=method, path=path, query=query, body=body, now=now,
                   headers={k.lower(): v for k, v in headers.items()})


def test_the_scheme_signs_method_path_query_headers_and_body():
    headers = signing.sign_headers("app_1", "s3cret", method="POST", url="http://gw:8000/infer/s?b=2&a=1 1",
                                   body=BODY, now=NOW)
    assert headers["X-Sdk-Date"] == "20261129T091500Z"
    assert headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=app_1, SignedHeaders=host;x-sdk-date, "
                                               "Signature=")
    headers["Host"] = "gw:8000"
    _verify("s3cret", headers, path="/infer/s", query="a=1%201&b=2")  # query order and spelling do not matter
    for change, message in [
        ({"body": BODY + b" "}, "the signature does not match the request"),
        ({"method": "PUT"}, "the signature does not match the request"),
        ({"path": "/infer/t/"}, "the signature does not match the request"),
        ({"query": "a=1&b=3"}, "the signature does not match the request"),
        ({"now": NOW + timedelta(minutes=16)}, "X-Sdk-Date 20261129T091500Z is more than 15 minutes away from the "
                                               "gateway's time"),
    ]:
        with pytest.raises(signing.SignatureError) as caught:
            _verify("s3cret", headers, **{"path": "/infer/s", "query": "a=1%201&b=2", **change})
        assert str(caught.value) == message
    with pytest.raises(signing.SignatureError, match="does not match"):
        _verify("other", headers, path="/infer/s", query="a=1%201&b=2")
    with pytest.raises(signing.SignatureError, match="signed header host is not in the request"):
        _verify("s3cret", {k: v for k, v in headers.items() if k != "Host"}, path="/infer/s", query="a=1%201&b=2")
    for bad, message in [
        ("SDK-HMAC-SHA256 Access=a, Signature=00", "the Authorization header must read"),
        ("SDK-HMAC-SHA256 Access=a, SignedHeaders=host, Signature=00", "SignedHeaders must include x-sdk-date"),
        ("SDK-HMAC-SHA256 Access=a, SignedHeaders=x-sdk-date;host, Signature=00", "alphabetical order"),
    ]:
        with pytest.raises(signing.SignatureError, match=message):
            signing.parse_authorization(bad)


@pytest.fixture
def echo_service(owner, workspace, echo_version, cpu_flavor, local_pool, model_servers, tmp_path):
    server = model_servers(fixture_package("echo", tmp_path / "srv"), name="echo", version="0.0.1")
    service = service_create(user=owner, workspace=workspace, name="signed", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    return attach_instances(service, {echo_version.pk: [server.endpoint]})


def _guide_sign(client, service):
    """The `sign` function of the call guide's snippet, run as a user would copy it."""
    page = client.get(f"/services/{service.pk}/?tab=guide").content.decode()
    snippet = html.unescape(re.search(r'data-testid="sign-snippet">(.*?)</pre>', page, re.S).group(1))
    code = snippet.split("\nbody = ")[0]
    namespace: dict = {}
    exec(compile(code, "call-guide-snippet", "exec"), namespace)  # noqa: S102 - our own page's example
    return namespace["sign"]


@pytest.mark.django_db(transaction=True)
def test_signed_calls_through_the_gateway(asgi_server, gateway, client, owner, workspace, echo_service, echo_version,
                                          cpu_flavor, local_pool):
    client.force_login(owner)
    sign = _guide_sign(client, echo_service)
    key, secret = service_app_create(user=owner, service=echo_service, name="partner")
    assert key.kind == "app" and key.prefix.startswith("app_") and len(key.prefix) == 16
    assert secret == signing.app_secret_for(key.prefix) and secret not in json.dumps(list(
        ServiceApiKey.objects.values()), default=str)  # derived, never stored
    url = f"{asgi_server.url}/infer/{echo_service.pk}/?trace=1&a=b"
    signed = {"Content-Type": "application/json", **sign(key.prefix, secret, "POST", url, BODY)}
    answer = http.post(url, content=BODY, headers=signed)
    assert answer.status_code == 200 and answer.json()["data"]["resp_data"][0]["sum"] == 5

    def refused(response, message):
        assert response.status_code == 401
        assert response.json() == {"error_code": "APIG.0303", "error_msg": message}

    refused(http.post(url, content=BODY.replace(b"3", b"4"), headers=signed),
            "Incorrect app authentication information: the signature does not match the request.")
    stale = sign(key.prefix, secret, "POST", url, BODY)
    stale["X-Sdk-Date"] = "20200101T000000Z"
    refused(http.post(url, content=BODY, headers={"Content-Type": "application/json", **stale}),
            "Incorrect app authentication information: X-Sdk-Date 20200101T000000Z is more than 15 minutes away "
            "from the gateway's time.")
    refused(http.post(url, content=BODY, headers=sign("app_000000000000", secret, "POST", url, BODY)),
            "Incorrect app authentication information: the app key is unknown or revoked.")
    # The app key is public: on its own it is no credential.
    as_token = http.post(url, content=BODY, headers={"X-Auth-Token": key.prefix})
    assert as_token.status_code == 401 and as_token.json()["error_code"] == "APIG.0301"
    # An app key of another service is refused by this one.
    other = service_create(user=owner, workspace=workspace, name="other", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    other_key, other_secret = service_app_create(user=owner, service=other, name="x")
    wrong = http.post(url, content=BODY, headers=sign(other_key.prefix, other_secret, "POST", url, BODY))
    assert wrong.status_code == 401 and wrong.json()["error_msg"].endswith("this API key belongs to another service.")
    service_key_revoke(user=owner, key=key)
    gateway.invalidate()
    refused(http.post(url, content=BODY, headers={"Content-Type": "application/json",
                                                  **sign(key.prefix, secret, "POST", url, BODY)}),
            "Incorrect app authentication information: the app key is unknown or revoked.")


@pytest.mark.django_db
def test_keys_tab_and_api_create_app_keys(client, api, owner, echo_service):
    client.force_login(owner)
    client.post(f"/services/{echo_service.pk}/keys/new", {"kind": "app", "name": "partner"})
    page = client.get(f"/services/{echo_service.pk}/?tab=keys").content.decode()
    app_key = re.search(r'data-testid="app-key">(app_[0-9a-f]{12})<', page).group(1)
    shown = re.search(r'data-testid="app-secret">([0-9a-f]{40})<', page).group(1)
    assert shown == signing.app_secret_for(app_key)
    again = client.get(f"/services/{echo_service.pk}/?tab=keys").content.decode()
    assert shown not in again and f'<td class="mono">{app_key}</td>' in again  # the secret is shown once
    created = api.post(f"/api/v1/deployment/services/{echo_service.pk}/keys/", {"kind": "app", "name": "ci"},
                       format="json").json()
    assert created["kind"] == "app" and created["app_key"] == created["prefix"]
    assert created["app_secret"] == signing.app_secret_for(created["app_key"])
    token = api.post(f"/api/v1/deployment/services/{echo_service.pk}/keys/", {"name": "plain"}, format="json").json()
    assert token["kind"] == "token" and token["key"].startswith("ask_")
    key, _secret = service_key_create(user=owner, service=echo_service, name="t")
    assert key.kind == "token"
