"""Websocket URL patterns of every app, collected for the ASGI router."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
