from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from chatbot import views
from chatbot.api import api
from conversations.history_views import history_page, share_continue_page, share_page
from conversations.views import chat_page

urlpatterns = [
    path("", chat_page, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("s/<str:token>", share_page, name="share"),
    path("s/<str:token>/continue", share_continue_page, name="share-continue"),
    path("history/", history_page, name="history"),
]
