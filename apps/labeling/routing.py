from django.urls import path

from .consumers import PresenceConsumer

websocket_urlpatterns = [
    path("ws/labeling/presence/<int:job>/<str:sample>/", PresenceConsumer.as_asgi()),
]
