from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from chatbot import views
from chatbot.api import api
from conversations.views import chat_page

urlpatterns = [
    path("", chat_page, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
