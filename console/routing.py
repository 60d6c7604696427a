"""WebSocket routes of every app, collected in one list for the ASGI router."""
from apps.core.routing import websocket_urlpatterns as core_ws
from apps.labeling.routing import websocket_urlpatterns as labeling_ws
from apps.runtime.routing import websocket_urlpatterns as runtime_ws
from apps.training.routing import websocket_urlpatterns as training_ws

websocket_urlpatterns = [*core_ws, *runtime_ws, *labeling_ws, *training_ws]
