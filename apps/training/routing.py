from django.urls import path

from .consumers import NodeLogConsumer

websocket_urlpatterns = [
    path("ws/training/jobs/<int:pk>/nodes/<int:rank>/log/", NodeLogConsumer.as_asgi()),
]
