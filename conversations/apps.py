from typing import Any

from django.apps import AppConfig


def session_remember(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Each login's session key is kept, so deleting the account can end every session."""
    from conversations.retention import user_session_record

    user_session_record(user=user, session_key=getattr(request.session, "session_key", None))


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self) -> None:
        from django.core import checks

        from llm.checks import llm_settings_check

        checks.register(llm_settings_check)
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(session_remember, dispatch_uid="conversations.session_remember")
        routing_signals_connect()
        answer_cache_signals_connect()


def answer_cache_signals_connect() -> None:
    """A changed or deleted document drops the cached answers that cite it; re-embedded
    chunks (``manage.py reindex``) drop them all."""
    from conversations.answer_cache import (
        document_changed_receiver,
        embeddings_replaced_receiver,
    )
    from knowledge.signals import document_changed, embeddings_replaced

    document_changed.connect(
        document_changed_receiver, dispatch_uid="conversations.answer_cache_forget"
    )
    embeddings_replaced.connect(
        embeddings_replaced_receiver, dispatch_uid="conversations.answer_cache_reset"
    )


def routing_signals_connect() -> None:
    """A changed routing policy or price reaches every process's cached copy."""
    from django.db.models.signals import post_delete, post_save

    from billing.models import ModelPrice
    from conversations.models import RoutingPolicy
    from conversations.routing_policy import routing_changed

    for signal in (post_save, post_delete):
        for model in (RoutingPolicy, ModelPrice):
            uid = f"routing-{model.__name__}-{signal is post_save}"
            signal.connect(routing_changed, sender=model, dispatch_uid=uid)
