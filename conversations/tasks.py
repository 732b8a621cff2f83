"""Celery tasks: thin shells that take ids and call a service."""

from celery import shared_task

from conversations import services


@shared_task(name="conversations.summarize")
def conversation_summarize_task(conversation_id: int, through_id: int) -> bool:
    return services.conversation_summarize(conversation_id=conversation_id, through_id=through_id)


@shared_task(name="conversations.turns_reap")
def turns_reap_task() -> int:
    return len(services.turns_reap())
