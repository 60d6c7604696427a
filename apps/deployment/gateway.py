"""The inference gateway: an ASGI app in front of Django for `/infer/<service>/…` (and the
ModelArts spelling `/v1/infers/<service>/…`).

Per request: authenticate (`X-Auth-Token: <key>` or `Authorization: Token <key>`: a service
API key or a user API token; or an app key's SDK-HMAC-SHA256 signature, `signing.py`), find the service, refuse what breaks a limit, pick a version
(personalised rules first, then the traffic weights; a `/v2/models/<m>/versions/<v>/…` path
picks that version), pick a ready instance round-robin, and forward over a pooled HTTP client,
streaming the response back (Server-Sent Events arrive as the instance sends them) over the
small keep-alive client of `upstream.py`. WebSocket
upgrades are relayed frame by frame to services deployed with WebSocket on. Every forwarded
call is counted per service, version and minute (`monitoring.stats_flush`).

Errors use the ModelArts gateway format `{"error_code", "error_msg"}` (seed-06 §5.6):
401 APIG.0301 (no or bad credentials; nothing is forwarded), 404 APIG.0101 (no such service),
413 APIG.0201 (body over ATELIER_GATEWAY_MAX_BODY_BYTES), 429 ModelArts.4206 (traffic or key
rate limit), 502 ModelArts.4302 (instance refused the connection), 503 ModelArts.4302 (the
circuit breaker holds back an instance that keeps failing), 503 ModelArts.4503 (no ready
instance; also, with the SSL message, when the instance speaks HTTPS and its application declares
HTTP or the other way round), 504 ModelArts.4503 (no answer within ATELIER_GATEWAY_TIMEOUT_SECONDS).

Versions of AI applications in async request mode are answered 202 with a task id instead;
`gateway_async` forwards the stored call and serves `GET …/tasks/<id>`.

Routes and credentials are cached in the process for ATELIER_GATEWAY_CACHE_SECONDS, so a
request normally touches neither the database nor Redis (Redis only for rate limits).
"""
from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from . import gateway_async, signing, upstream
from .keys import KEY_PREFIX
from .monitoring import LATENCY_BUCKETS_MS
from .routing import Condition, WeightedPicker, variables_for
from .upstream import instance_tls_context

logger = logging.getLogger(__name__)

PREFIXES = ("/infer/", "/v1/infers/")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
V2_VERSION_RE = re.compile(r"^/v2/models/([^/]+)/versions/([^/]+)(?:/|$)")
# Never forwarded in either direction (RFC 9110 §7.6.1), plus the caller's credentials.
HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
              b"transfer-encoding", b"upgrade", b"host", b"content-length"}
CREDENTIALS = {b"x-auth-token", b"authorization", b"cookie"}

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# Routes and callers, loaded from the database and cached
# ---------------------------------------------------------------------------------------------


@dataclass
class VersionRoute:
    model_version_id: int
    label: str
    app_name: str
    version: str
    weight: int
    scheme: str
    api_url: str
    api_method: str
    endpoints: list[str]
    cursor: int = 0
    request_mode: str = "sync"

    def next_endpoint(self) -> str | None:
        if not self.endpoints:
            return None
        self.cursor = (self.cursor + 1) % len(self.endpoints)
        return self.endpoints[self.cursor]


@dataclass
class Rule:
    condition: Condition
    model_version_id: int
    header: tuple[bytes, bytes] | None


@dataclass
class Route:
    service_id: str
    name: str
    workspace_id: int
    workspace_name: str
    status: str
    websocket: bool
    traffic_limit: int | None
    versions: dict[int, VersionRoute]
    rules: list[Rule]
    picker: WeightedPicker
    loaded: float = field(default_factory=time.monotonic)

    @property
    def has_async(self) -> bool:
        return any(v.request_mode == "async" for v in self.versions.values())

    def pick(self) -> VersionRoute | None:
        chosen = self.picker.pick()
        return self.versions.get(chosen) if chosen is not None else None


@dataclass(frozen=True)
class Caller:
    kind: str  # "key" or "user"
    user_id: int | None
    username: str
    key_id: int | None = None
    key_service_id: str | None = None
    key_rate_limit: int | None = None
    app_secret: str | None = None  # an app key's: the request body must be signed with it
    roles: tuple[tuple[int, str], ...] = ()  # (workspace id, role) of a user
    may_invoke: frozenset[int] = frozenset()  # workspaces whose services the user may call

    def role_in(self, workspace_id: int) -> str | None:
        return next((role for ws, role in self.roles if ws == workspace_id), None)


def route_load(service_id: str) -> Route | None:
    """The routing table of one online service: versions, weights, ready instances, rules."""
    from apps.runtime.choices import RunStatus

    from .choices import ServiceKind
    from .models import InferenceService, ServiceInstance, ServiceVersion

    service = (InferenceService.objects.filter(pk=service_id, kind=ServiceKind.ONLINE)
               .select_related("workspace").first())
    if service is None:
        return None
    versions: dict[int, VersionRoute] = {}
    for sv in ServiceVersion.objects.filter(service=service).select_related("model_version__app"):
        mv = sv.model_version
        api = mv.api
        versions[mv.pk] = VersionRoute(
            model_version_id=mv.pk, label=mv.label, app_name=mv.app.name, version=mv.version, weight=sv.weight,
            scheme="https" if (not mv.serves_package and mv.protocol == "https") else "http",
            api_url=api.get("url", "/"), api_method=api.get("method", "POST"), endpoints=[],
            request_mode=mv.app.request_mode)
    ready = (ServiceInstance.objects.filter(service=service, draining_since__isnull=True,
                                            run__status=RunStatus.RUNNING, run__ready_at__isnull=False)
             .exclude(service_version__isnull=True)
             .values_list("model_version_id", "run__endpoint"))
    for model_version_id, endpoint in ready:
        if model_version_id in versions and endpoint:
            versions[model_version_id].endpoints.append(endpoint)
    rules = []
    for rule in service.rules:
        try:
            condition = Condition(rule["condition"])
        except ValueError:  # validated on save; an old rule that no longer parses is skipped
            continue
        header = None
        if rule.get("header_name"):
            header = (rule["header_name"].lower().encode(), rule.get("header_value", "").encode())
        rules.append(Rule(condition, int(rule["version"]), header))
    return Route(service_id=str(service.pk), name=service.name, workspace_id=service.workspace_id,
                 workspace_name=service.workspace.name, status=service.status, websocket=service.websocket,
                 traffic_limit=service.traffic_limit, versions=versions, rules=rules,
                 picker=WeightedPicker({pk: v.weight for pk, v in versions.items()}))


def caller_load(digest: str, is_key: bool, app: bool = False) -> Caller | None:
    """The active service key (app key when `app`) or user token with this digest, or None."""
    from apps.accounts.models import ApiToken, Membership

    from .models import ServiceApiKey
    from .signing import app_secret_for

    if is_key:
        key = (ServiceApiKey.objects.filter(digest=digest, revoked_at__isnull=True, kind="app" if app else "token")
               .select_related("created_by").first())
        if key is None:
            return None
        return Caller(kind="key", user_id=key.created_by_id,
                      username=key.created_by.get_username() if key.created_by else "", key_id=key.pk,
                      key_service_id=str(key.service_id), key_rate_limit=key.rate_limit,
                      app_secret=app_secret_for(key.prefix) if app else None)
    token = ApiToken.objects.select_related("user").filter(digest=digest).first()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    from apps.core.permissions import role_allows

    roles = tuple(Membership.objects.filter(user=token.user).values_list("workspace_id", "role"))
    may_invoke = frozenset(ws for ws, role in roles if role_allows(role, "service:invoke"))
    return Caller(kind="user", user_id=token.user_id, username=token.user.get_username(), roles=roles,
                  may_invoke=may_invoke)


def _uses_stamp(caller_key: tuple) -> None:
    """Record last use of keys and tokens (at most once per cache period per credential)."""
    from django.utils import timezone

    from apps.accounts.models import ApiToken

    from .models import ServiceApiKey

    digest, is_key = caller_key[:2]
    model = ServiceApiKey if is_key else ApiToken
    model.objects.filter(digest=digest).update(last_used_at=timezone.now())


class TtlCache:
    """A dict whose entries expire after `ttl` seconds; loads are deduplicated per key."""

    def __init__(self):
        self.entries: dict = {}
        self.locks: dict = {}

    async def get(self, key, loader, ttl: float):
        entry = self.entries.get(key)
        now = time.monotonic()
        if entry is not None and now - entry[0] < ttl:
            return entry[1], False
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self.entries.get(key)
            if entry is not None and time.monotonic() - entry[0] < ttl:
                return entry[1], False
            value = await loader()
            self.entries[key] = (time.monotonic(), value)
            if len(self.entries) > 10_000:  # bound memory under a flood of random keys
                oldest = sorted(self.entries, key=lambda k: self.entries[k][0])[:5_000]
                for stale in oldest:
                    self.entries.pop(stale, None)
            return value, True

    def clear(self) -> None:
        self.entries.clear()


def _db(func):
    """Run an ORM function off the event loop, with the connection hygiene of a request."""

    def wrapped(*args, **kwargs):
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(wrapped, thread_sensitive=True)


class Breaker:
    """Per-instance circuit breaker: after ATELIER_GATEWAY_BREAKER_FAILURES consecutive failures
    (5xx answers or refused connections) the instance gets no traffic for
    ATELIER_GATEWAY_BREAKER_SECONDS; then one request tries it again (seed-06 §5.6 "self protection")."""

    def __init__(self):
        self.failures: dict[str, int] = {}
        self.open_until: dict[str, float] = {}

    def allows(self, endpoint: str) -> bool:
        until = self.open_until.get(endpoint)
        if until is None:
            return True
        if time.monotonic() >= until:
            # Half-open: this request probes; a failure re-opens at once, a success closes.
            self.open_until.pop(endpoint, None)
            self.failures[endpoint] = settings.ATELIER_GATEWAY_BREAKER_FAILURES - 1
            return True
        return False

    def success(self, endpoint: str) -> None:
        if self.failures.pop(endpoint, None) is not None:
            self.open_until.pop(endpoint, None)

    def failure(self, endpoint: str) -> None:
        count = self.failures.get(endpoint, 0) + 1
        if count >= settings.ATELIER_GATEWAY_BREAKER_FAILURES:
            self.open_until[endpoint] = time.monotonic() + settings.ATELIER_GATEWAY_BREAKER_SECONDS
            count = 0
        self.failures[endpoint] = count


# ---------------------------------------------------------------------------------------------
# Call statistics
# ---------------------------------------------------------------------------------------------


class StatsBuffer:
    """Counts calls in memory; `flush()` adds them to the per-minute CallStat rows."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.pending: dict[tuple[str, int, str, int], list] = {}

    def record(self, service_id: str, model_version_id: int, label: str, ok: bool, latency_ms: float) -> None:
        minute = int(time.time() // 60)
        key = (service_id, model_version_id, label, minute)
        index = bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)
        with self.lock:
            entry = self.pending.get(key)
            if entry is None:
                entry = self.pending[key] = [0, 0, 0, 0.0, 0.0, [0] * (len(LATENCY_BUCKETS_MS) + 1)]
            entry[0] += 1
            entry[1 if ok else 2] += 1
            entry[3] += latency_ms
            entry[4] = max(entry[4], latency_ms)
            entry[5][index] += 1

    def take(self) -> dict:
        with self.lock:
            pending, self.pending = self.pending, {}
        return pending

    def flush(self) -> int:
        """Write pending counts to the database now (sync); returns the rows touched."""
        from .monitoring import stats_flush

        pending = self.take()
        if not pending:
            return 0
        try:
            return stats_flush(pending)
        except Exception:
            logger.exception("writing gateway call statistics failed; %d rows put back", len(pending))
            with self.lock:
                for key, value in pending.items():
                    entry = self.pending.setdefault(key, [0, 0, 0, 0.0, 0.0, [0] * len(value[5])])
                    for i in range(4):
                        entry[i] += value[i]
                    entry[4] = max(entry[4], value[4])
                    entry[5] = [a + b for a, b in zip(entry[5], value[5])]
            return 0


# ---------------------------------------------------------------------------------------------
# The ASGI app
# ---------------------------------------------------------------------------------------------


def _json_response(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error_code": code, "error_msg": message}).encode()


async def _respond(send: Send, status: int, body: bytes, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class GatewayRefusal(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


class Gateway:
    """Wraps the console's ASGI app: gateway paths are served here, everything else passes on."""

    def __init__(self, app):
        self.app = app
        self.routes = TtlCache()
        self.callers = TtlCache()
        self.stats = StatsBuffer()
        self.breaker = Breaker()
        self._loop_state: dict = {}

    # -- per event loop: HTTP client, Redis, flush task ----------------------------------------

    def _state(self) -> dict:
        loop = asyncio.get_running_loop()
        state = self._loop_state.get(id(loop))
        if state is None or state["loop"] is not loop:
            # Idle connections expire before the model server's 75 s keep-alive, so the gateway closes them.
            state = {"loop": loop, "pool": upstream.Pool(max_idle=settings.ATELIER_GATEWAY_MAX_CONNECTIONS,
                                                        idle_seconds=30.0),
                     "redis": None, "flusher": None}
            self._loop_state[id(loop)] = state
        if state["flusher"] is None or state["flusher"].done():
            state["flusher"] = loop.create_task(self._flush_loop())
        return state

    async def _flush_loop(self) -> None:
        flush = _db(self.stats.flush)
        while True:
            await asyncio.sleep(settings.ATELIER_GATEWAY_STATS_FLUSH_SECONDS)
            try:
                await flush()
            except Exception:  # the next round tries again; counts stay buffered
                logger.exception("gateway statistics flush failed")

    def _redis(self, state: dict):
        if state["redis"] is None:
            import redis.asyncio as aioredis

            state["redis"] = aioredis.from_url(settings.REDIS_URL)
        return state["redis"]

    # -- dispatch --------------------------------------------------------------------------------

    async def __call__(self, scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket"):
            path = scope["path"]
            for prefix in PREFIXES:
                if path.startswith(prefix):
                    if kind == "http":
                        await self.http(scope, receive, send, path[len(prefix):])
                    else:
                        await self.websocket(scope, receive, send, path[len(prefix):])
                    return
        await self.app(scope, receive, send)

    @staticmethod
    def _split(scope, rest: str) -> tuple[str, str, str]:
        """(service id, decoded sub-path for routing, the sub-path as the client encoded it).

        The encoded form is what goes upstream: a decoded path could hold spaces or "%2F" that
        would change the meaning of the request line the instance reads.
        """
        service_id, _, sub = rest.partition("/")
        raw = (scope.get("raw_path") or b"").decode("latin-1").split("?", 1)[0]
        at = raw.find(service_id) if service_id else -1
        target = raw[at + len(service_id):] if at >= 0 else quote("/" + sub, safe="/:@!$&'()*+,;=-._~")
        return service_id, "/" + sub, target or "/"

    async def _caller(self, headers: dict[bytes, bytes]) -> Caller:
        authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
        if authorization[:len(signing.ALGORITHM)].upper() == signing.ALGORITHM:
            return await self._app_caller(authorization)
        raw = headers.get(b"x-auth-token", b"").decode("latin-1").strip()
        if not raw:
            auth = headers.get(b"authorization", b"").decode("latin-1").split()
            if len(auth) == 2 and auth[0].lower() in ("token", "bearer"):
                raw = auth[1]
        if not raw:
            raise GatewayRefusal(401, "APIG.0301", "Incorrect authentication information: no token. Send X-Auth-Token: "
                                                   "<key> or Authorization: Token <key>.")
        is_key = raw.startswith(KEY_PREFIX)
        digest = hashlib.sha256(raw.encode()).hexdigest()
        caller, fresh = await self.callers.get((digest, is_key), lambda: _db(caller_load)(digest, is_key),
                                               settings.ATELIER_GATEWAY_CACHE_SECONDS)
        if caller is None:
            raise GatewayRefusal(401, "APIG.0301", "Incorrect authentication information: the token is invalid, "
                                                   "expired or revoked.")
        if fresh:
            asyncio.get_running_loop().create_task(_db(_uses_stamp)((digest, is_key)))
        return caller

    async def _app_caller(self, authorization: str) -> Caller:
        """The app key of a signed request; the signature itself is checked once the body is in
        (`_verify`)."""
        try:
            app_key = signing.parse_authorization(authorization)[0]
        except signing.SignatureError as exc:
            raise GatewayRefusal(401, "APIG.0303", f"Incorrect app authentication information: {exc}.") from None
        digest = hashlib.sha256(app_key.encode()).hexdigest()
        caller, fresh = await self.callers.get((digest, True, "app"), lambda: _db(caller_load)(digest, True, True),
                                               settings.ATELIER_GATEWAY_CACHE_SECONDS)
        if caller is None:
            raise GatewayRefusal(401, "APIG.0303", "Incorrect app authentication information: the app key is unknown "
                                                   "or revoked.")
        if fresh:
            asyncio.get_running_loop().create_task(_db(_uses_stamp)((digest, True)))
        return caller

    @staticmethod
    def _verify(scope, caller: Caller, body: bytes) -> None:
        """A signed request's signature must match its method, path, query, signed headers and body."""
        if caller.app_secret is None:
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        try:
            signing.verify(caller.app_secret, method=scope.get("method", "GET"), path=path,
                           query=scope.get("query_string", b"").decode("latin-1"), headers=headers, body=body)
        except signing.SignatureError as exc:
            raise GatewayRefusal(401, "APIG.0303", f"Incorrect app authentication information: {exc}.") from None

    async def _route(self, service_id: str) -> Route:
        if not UUID_RE.match(service_id):
            raise GatewayRefusal(404, "APIG.0101", "The API does not exist or has not been published in the "
                                                   "environment: no such service.")
        route, _fresh = await self.routes.get(service_id, lambda: _db(route_load)(str(uuid.UUID(service_id))),
                                              settings.ATELIER_GATEWAY_CACHE_SECONDS)
        if route is None:
            raise GatewayRefusal(404, "APIG.0101", "The API does not exist or has not been published in the "
                                                   "environment: no such service.")
        return route

    @staticmethod
    def _authorize(route: Route, caller: Caller) -> None:
        if caller.kind == "key":
            if caller.key_service_id != route.service_id:
                raise GatewayRefusal(401, "APIG.0301", "Incorrect authentication information: this API key belongs "
                                                       "to another service.")
            return
        role = caller.role_in(route.workspace_id)
        if role is None:  # another workspace's service does not exist for this caller
            raise GatewayRefusal(404, "APIG.0101", "The API does not exist or has not been published in the "
                                                   "environment: no such service.")
        if route.workspace_id not in caller.may_invoke:
            raise GatewayRefusal(401, "APIG.0301", f"Incorrect authentication information: your role ({role}) may "
                                                   "not call services.")

    async def _rate_limit(self, state: dict, route: Route, caller: Caller) -> None:
        if not route.traffic_limit and not caller.key_rate_limit:
            return
        checks = []
        now = time.time()
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "atelier")
        if route.traffic_limit:
            checks.append((f"{prefix}:gw:svc:{route.service_id}:{int(now)}", route.traffic_limit, 2,
                           f"the service allows {route.traffic_limit} requests per second"))
        if caller.key_rate_limit:
            checks.append((f"{prefix}:gw:key:{caller.key_id}:{int(now // 60)}", caller.key_rate_limit, 61,
                           f"this API key allows {caller.key_rate_limit} requests per minute"))
        if not checks:
            return
        redis = self._redis(state)
        pipe = redis.pipeline(transaction=False)
        for key, _limit, ttl, _text in checks:
            pipe.incr(key)
            pipe.expire(key, ttl)
        counts = (await pipe.execute())[0::2]
        for count, (_key, limit, _ttl, text) in zip(counts, checks):
            if count > limit:
                raise GatewayRefusal(429, "ModelArts.4206", f"The API request rate is over the configured limit: {text}.",
                                     [(b"retry-after", b"1")])

    def _choose(self, route: Route, caller: Caller, sub: str, headers: dict[bytes, bytes]):
        """(version, injected header) for this request."""
        pinned = V2_VERSION_RE.match(sub)
        if pinned:
            for version in route.versions.values():
                if version.app_name == pinned.group(1) and version.version == pinned.group(2):
                    return version, None, True
        if route.rules:
            variables = variables_for(user_id=caller.user_id or "", username=caller.username,
                                      workspace_id=route.workspace_id, workspace_name=route.workspace_name,
                                      headers={k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()})
            for rule in route.rules:
                if rule.condition.matches(variables) and rule.model_version_id in route.versions:
                    return route.versions[rule.model_version_id], rule.header, True
        return route.pick(), None, False

    async def http(self, scope, receive: Receive, send: Send, rest: str) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        try:
            caller = await self._caller(headers)
            service_id, sub, target = self._split(scope, rest)
            route = await self._route(service_id)
            self._authorize(route, caller)
            state = self._state()
            if route.has_async and scope["method"] == "GET" and gateway_async.TASK_RE.match(sub):
                self._verify(scope, caller, b"")
                await gateway_async.task_answer(send, route, sub, base=self._base(scope, rest))
                return
            length = headers.get(b"content-length", b"").decode("latin-1")
            limit = settings.ATELIER_GATEWAY_MAX_BODY_BYTES
            if length.isdigit() and int(length) > limit:
                raise GatewayRefusal(413, "APIG.0201", f"Request entity too large: {int(length)} bytes; the limit is "
                                                       f"{limit / 1024 / 1024:g} MB.")
            await self._rate_limit(state, route, caller)
            version, extra_header, fixed = self._choose(route, caller, sub, headers)
            if version is None or not version.endpoints:
                version = self._fallback(route, version, fixed)
            if sub == version.api_url and scope["method"] != version.api_method and not sub.startswith("/v2"):
                raise GatewayRefusal(405, "ModelArts.2803", f"Method Not Allowed: {sub} takes {version.api_method}.")
            body = await self._read_body(receive, limit)
            self._verify(scope, caller, body)
            if (version.request_mode == "async" and not sub.startswith("/v2")
                    and b"text/event-stream" not in headers.get(b"accept", b"")):
                await gateway_async.accept(self, state, scope, send, route, version, target,
                                           self._out_headers(scope, headers, extra_header), body, caller,
                                           base=self._base(scope, rest))
                return
        except GatewayRefusal as refusal:
            status, payload = _json_response(refusal.status, refusal.code, refusal.message)
            await _respond(send, status, payload, refusal.headers)
            return
        await self._forward(state, scope, send, route, version, target, headers, body, extra_header, started)

    @staticmethod
    def _fallback(route: Route, version: VersionRoute | None, fixed: bool) -> VersionRoute:
        """A version without ready instances hands weighted traffic to one that has some."""
        if version is not None and (version.endpoints or fixed):
            if version.endpoints:
                return version
            raise GatewayRefusal(503, "ModelArts.4503", f"Failed to find backend service: no instance of "
                                                        f"{version.label} is ready.")
        for other in route.versions.values():
            if other.endpoints and other.weight > 0:
                return other
        raise GatewayRefusal(503, "ModelArts.4503", f"Failed to find backend service: no instance of service "
                                                    f'"{route.name}" is ready (status: {route.status}).')

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GatewayRefusal(400, "APIG.0100", "The client disconnected before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise GatewayRefusal(413, "APIG.0201", f"Request entity too large: over {limit / 1024 / 1024:g} MB.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _base(scope, rest: str) -> str:
        """The service's address as the caller spelled it (`/infer/<id>` or `/v1/infers/<id>`)."""
        service_id = rest.partition("/")[0]
        return scope["path"][:len(scope["path"]) - len(rest)] + service_id

    @staticmethod
    def _out_headers(scope, headers: dict[bytes, bytes], extra_header) -> list[tuple[bytes, bytes]]:
        """The request headers an instance gets: no hop-by-hop or credentials, X-Forwarded-For and
        X-Request-Id added, a personalised rule's header set."""
        out_headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP and k not in CREDENTIALS]
        client_ip = (scope.get("client") or ("", 0))[0]
        forwarded = headers.get(b"x-forwarded-for")
        out_headers.append((b"x-forwarded-for", (forwarded + b", " if forwarded else b"") + client_ip.encode()))
        if b"x-request-id" not in headers:
            out_headers.append((b"x-request-id", uuid.uuid4().hex.encode()))
        if extra_header is not None:
            out_headers = [(k, v) for k, v in out_headers if k != extra_header[0]] + [extra_header]
        return out_headers

    async def _forward(self, state, scope, send: Send, route: Route, version: VersionRoute, path: str,
                       headers: dict[bytes, bytes], body: bytes, extra_header, started: float) -> None:
        out_headers = self._out_headers(scope, headers, extra_header)
        query = scope.get("query_string", b"")
        target = path + (f"?{query.decode('latin-1')}" if query else "")
        timeout = settings.ATELIER_GATEWAY_TIMEOUT_SECONDS
        response = None
        protected = 0
        for _ in range(max(1, len(version.endpoints))):
            endpoint = version.next_endpoint()
            if not self.breaker.allows(endpoint):
                protected += 1
                continue
            try:
                response = await upstream.request(state["pool"], scheme=version.scheme, endpoint=endpoint,
                                                  method=scope["method"], target=target, headers=out_headers,
                                                  body=body, timeout=timeout)
                break
            except upstream.UpstreamTimeout:
                self.stats.record(route.service_id, version.model_version_id, version.label, False,
                                  (time.perf_counter() - started) * 1000)
                status, payload = _json_response(504, "ModelArts.4503", "Backend service respond timeout: no answer "
                                                 f"within {timeout:g} s, the limit of one prediction.")
                await _respond(send, status, payload)
                return
            except upstream.UpstreamProtocolMismatch as exc:
                # Every instance of the version runs the same image: no point trying the others,
                # nor holding this one back with the breaker (it is not failing, it is misdeclared).
                logger.info("instance %s of %s: protocol mismatch (%s)", endpoint, route.name, exc.detail)
                self.stats.record(route.service_id, version.model_version_id, version.label, False,
                                  (time.perf_counter() - started) * 1000)
                await _respond(send, *_json_response(503, "ModelArts.4503", str(exc)))
                return
            except upstream.UpstreamError as exc:
                logger.info("instance %s of %s failed: %s", endpoint, route.name, exc)
                self.breaker.failure(endpoint)
                continue
        if response is None and protected and protected == len(version.endpoints):
            status, payload = _json_response(503, "ModelArts.4302", "Due to self protection, the backend service is "
                                             "disconnected, please wait moment. (It failed "
                                             f"{settings.ATELIER_GATEWAY_BREAKER_FAILURES} times in a row.)")
            await _respond(send, status, payload, [(b"retry-after", b"%d" % settings.ATELIER_GATEWAY_BREAKER_SECONDS)])
            return
        if response is None:
            self.stats.record(route.service_id, version.model_version_id, version.label, False,
                              (time.perf_counter() - started) * 1000)
            status, payload = _json_response(502, "ModelArts.4302", "Gateway forwarding error. Failed to invoke backend "
                                                                    "service due to connection refused.")
            await _respond(send, status, payload)
            return
        response_headers = [(k, v) for k, v in response.headers
                            if k not in HOP_BY_HOP or k == b"content-length"]
        if response.status >= 500:
            self.breaker.failure(endpoint)
        else:
            self.breaker.success(endpoint)
        await send({"type": "http.response.start", "status": response.status, "headers": response_headers})
        self.stats.record(route.service_id, version.model_version_id, version.label, response.status < 400,
                          (time.perf_counter() - started) * 1000)
        try:
            async for chunk in response.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except upstream.UpstreamError as exc:
            # Headers are out: the only honest signal left is to cut the response short.
            logger.info("stream from %s broke: %s", route.name, exc)
        finally:
            await response.body.aclose()
        await send({"type": "http.response.body", "body": b""})

    # -- WebSocket -------------------------------------------------------------------------------

    async def websocket(self, scope, receive: Receive, send: Send, rest: str) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        headers = dict(scope["headers"])
        try:
            caller = await self._caller(headers)
            self._verify(scope, caller, b"")
            service_id, sub, target = self._split(scope, rest)
            route = await self._route(service_id)
            self._authorize(route, caller)
            if not route.websocket:
                raise GatewayRefusal(403, "ModelArts.2804", "This service was not deployed with WebSocket on; enable "
                                                            "\"Upgrade to WebSocket\" when deploying.")
            version, extra_header, fixed = self._choose(route, caller, sub, headers)
            if version is None or not version.endpoints:
                version = self._fallback(route, version, fixed)
        except GatewayRefusal as refusal:
            await self._ws_refuse(scope, receive, send, refusal)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        endpoint = version.next_endpoint()
        scheme = "wss" if version.scheme == "https" else "ws"
        url = f"{scheme}://{endpoint}{target}" + (f"?{query}" if query else "")
        forward = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k not in HOP_BY_HOP and k not in CREDENTIALS and not k.startswith(b"sec-websocket")]
        if extra_header is not None:
            forward.append((extra_header[0].decode(), extra_header[1].decode()))
        tls = {"ssl": instance_tls_context()} if scheme == "wss" else {}  # self-signed is fine, see upstream.py
        try:
            upstream = await connect(url, additional_headers=forward, subprotocols=scope.get("subprotocols") or None,
                                     max_size=settings.ATELIER_GATEWAY_MAX_BODY_BYTES, proxy=None,
                                     open_timeout=10, compression=None, **tls)
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            await self._ws_refuse(scope, receive, send, GatewayRefusal(
                502, "ModelArts.4302", f"Gateway forwarding error. The instance refused the WebSocket: {exc}"))
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            await upstream.close()
            return
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})

        async def client_to_upstream():
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    await upstream.close()
                    return
                if event.get("bytes") is not None:
                    await upstream.send(event["bytes"])
                elif event.get("text") is not None:
                    await upstream.send(event["text"])

        async def upstream_to_client():
            try:
                async for frame in upstream:
                    if isinstance(frame, bytes):
                        await send({"type": "websocket.send", "bytes": frame})
                    else:
                        await send({"type": "websocket.send", "text": frame})
            except ConnectionClosed:
                pass
            code = upstream.close_code or 1000
            await send({"type": "websocket.close", "code": code if code != 1005 else 1000})

        tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream.close()

    @staticmethod
    async def _ws_refuse(scope, receive: Receive, send: Send, refusal: GatewayRefusal) -> None:
        """Answer the upgrade with the HTTP status and JSON body when the server supports it."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        status, payload = _json_response(refusal.status, refusal.code, refusal.message)
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "websocket.http.response.body", "body": payload})
        else:
            await send({"type": "websocket.close", "code": 4000 + status, "reason": refusal.message[:120]})

    def invalidate(self) -> None:
        """Forget cached routes and credentials (tests; a process that just changed a service)."""
        self.routes.clear()
        self.callers.clear()
        self.breaker = Breaker()


_GATEWAY: Gateway | None = None


def gateway_mount(app) -> Gateway:
    """Wrap the console's ASGI app with the gateway (console/asgi.py); one gateway per process."""
    global _GATEWAY
    _GATEWAY = Gateway(app)
    return _GATEWAY


def gateway_current() -> Gateway | None:
    return _GATEWAY
