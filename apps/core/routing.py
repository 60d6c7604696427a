from django.urls import path

from .consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/<str:source>/<str:pk>/", LiveConsumer.as_asgi()),
]
