"""ASGI entry point: the inference gateway, then static files, HTTP through Django and WebSockets through Channels.

Token-authenticated WebSockets (API clients) go through the same middleware stack.
"""
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
# Database connections are pooled (PostgreSQL) or reused per thread (SQLite) in the web process
# only (see DATABASES in settings); processes started from this one decide for themselves.
_pool_chosen_here = "ATELIER_DB_POOL" not in os.environ
os.environ.setdefault("ATELIER_DB_POOL", "true")
django.setup(set_prefix=False)
if _pool_chosen_here:
    del os.environ["ATELIER_DB_POOL"]

from console.http_handler import ConsoleASGIHandler  # noqa: E402

# Django's handler with one thread hop per request (see console/http_handler.py).
django_asgi_app = ConsoleASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.accounts.ws_auth import WebSocketAuthMiddlewareStack  # noqa: E402
from apps.deployment.gateway import gateway_mount  # noqa: E402
from console.routing import websocket_urlpatterns  # noqa: E402
from console.static_files import StaticFilesASGI  # noqa: E402

# The inference gateway answers /infer/<service>/… (HTTP, SSE, WebSocket) before Django:
# API callers authenticate with tokens, not sessions, and a proxy hop must stay cheap.
application = gateway_mount(ProtocolTypeRouter(
    {
        # Static files stream from the event loop; Django's handler would buffer them on a thread.
        "http": StaticFilesASGI(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            WebSocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
))
