"""Per-service credentials, valid for one service only: API keys (shown once, stored as SHA-256
digests) and app keys whose derived secrets sign requests (`signing.py`)."""
from __future__ import annotations

import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.permissions import require_perm
from apps.core.services import audit_record, event_add

from .models import InferenceService, ServiceApiKey
from .serving import _int
from .signing import app_secret_for

KEY_PREFIX = "ask_"
# App keys are public identifiers (16 characters, kept whole); their secrets sign requests.
APP_PREFIX = "app_"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _key_options(user, service: InferenceService, name: str, rate_limit):
    require_perm(user, service.workspace, "service:update")
    name = (name or "").strip()
    if not 1 <= len(name) <= 64:
        raise ValidationError({"name": ["Give the key a name of 1–64 characters."]})
    if rate_limit in ("", None, 0, "0"):
        return name, None
    return name, _int(rate_limit, "rate_limit", 1, 10_000_000, "The rate limit is a whole number of requests per "
                                                                "minute (1 or more), or empty for none.")


@transaction.atomic
def service_app_create(*, user, service: InferenceService, name: str, rate_limit=None) -> tuple[ServiceApiKey, str]:
    """Create an app key for signed calls to this service only (service:update); returns the row
    (its `prefix` is the app key) and the app secret, which is shown once."""
    name, rate_limit = _key_options(user, service, name, rate_limit)
    app_key = APP_PREFIX + secrets.token_hex(6)
    key = ServiceApiKey.objects.create(service=service, kind="app", name=name, prefix=app_key,
                                       digest=key_digest(app_key), rate_limit=rate_limit, created_by=user)
    event_add(obj=service, message=f'App key "{name}" created ({app_key}).')
    audit_record(actor=user, action="service:update", obj=service, detail={"app_key": "created", "name": name})
    return key, app_secret_for(app_key)


@transaction.atomic
def service_key_create(*, user, service: InferenceService, name: str, rate_limit=None) -> tuple[ServiceApiKey, str]:
    """Create a key that calls only this service (service:update); the key text is returned once."""
    require_perm(user, service.workspace, "service:update")
    name = (name or "").strip()
    if not 1 <= len(name) <= 64:
        raise ValidationError({"name": ["Give the key a name of 1–64 characters."]})
    if rate_limit in ("", None, 0, "0"):
        rate_limit = None
    else:
        rate_limit = _int(rate_limit, "rate_limit", 1, 10_000_000, "The rate limit is a whole number of requests per "
                                                                    "minute (1 or more), or empty for none.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ServiceApiKey.objects.create(service=service, name=name, prefix=secret[:12], digest=key_digest(secret),
                                       rate_limit=rate_limit, created_by=user)
    event_add(obj=service, message=f'API key "{name}" created ({key.prefix}…).')
    audit_record(actor=user, action="service:update", obj=service, detail={"api_key": "created", "name": name})
    return key, secret


@transaction.atomic
def service_key_revoke(*, user, key: ServiceApiKey) -> ServiceApiKey:
    """Revoke a key at once (service:update); the gateway refuses it from its next cache refresh."""
    require_perm(user, key.service.workspace, "service:update")
    if key.revoked_at is not None:
        raise ValidationError(f'The key "{key.name}" is already revoked.')
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    event_add(obj=key.service, message=f'API key "{key.name}" revoked.')
    audit_record(actor=user, action="service:update", obj=key.service, detail={"api_key": "revoked", "name": key.name})
    return key
