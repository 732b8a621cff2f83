"""The one NinjaAPI, mounted at /api/v1/; each app adds its router here."""

from ninja import NinjaAPI

api = NinjaAPI(title="chatbot API", version="1", urls_namespace="api")
