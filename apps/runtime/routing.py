from django.urls import path

from .consumers import RunLogConsumer
from .shell_consumer import RunShellConsumer

websocket_urlpatterns = [
    path("ws/runtime/runs/<int:pk>/", RunLogConsumer.as_asgi()),
    path("ws/runtime/runs/<int:pk>/shell/", RunShellConsumer.as_asgi()),
]
