from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self) -> None:
        from django.core import checks

        from llm.checks import llm_settings_check

        checks.register(llm_settings_check)
