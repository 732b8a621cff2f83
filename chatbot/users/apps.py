from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "chatbot.users"
    label = "users"
    verbose_name = "Users"
