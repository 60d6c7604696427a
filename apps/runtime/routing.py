from django.urls import path

from .consumers import RunLogConsumer

websocket_urlpatterns = [
    path("ws/runtime/runs/<int:pk>/", RunLogConsumer.as_asgi()),
]
