"""WebSocket authentication: the browser's session cookie, or `?token=`/Authorization for API clients."""
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

from .services import api_token_authenticate


@database_sync_to_async
def _user_for_key(key: str):
    token = api_token_authenticate(key)
    return token.user if token else None


class TokenWebSocketMiddleware(BaseMiddleware):
    """Replaces an anonymous scope user when a valid API token accompanies the handshake."""

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = None
            for name, value in scope.get("headers", []):
                if name == b"authorization" and value.lower().startswith(b"token "):
                    key = value[6:].decode("latin-1").strip()
            if key is None:
                key = (parse_qs(scope.get("query_string", b"").decode()).get("token") or [None])[0]
            if key:
                found = await _user_for_key(key)
                if found is not None:
                    scope["user"] = found
        return await super().__call__(scope, receive, send)


def WebSocketAuthMiddlewareStack(inner):  # noqa: N802 - mirrors channels' naming
    return AuthMiddlewareStack(TokenWebSocketMiddleware(inner))
