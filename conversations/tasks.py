"""Celery tasks: thin shells that take ids and call a service."""

from celery import shared_task

from conversations import answer_cache, exports, retention, services, titles


@shared_task(name="conversations.summarize")
def conversation_summarize_task(conversation_id: int, through_id: int) -> bool:
    return services.conversation_summarize(conversation_id=conversation_id, through_id=through_id)


@shared_task(name="conversations.turns_reap")
def turns_reap_task() -> int:
    return len(services.turns_reap())


@shared_task(name="conversations.title")
def conversation_title_task(conversation_id: int) -> str | None:
    return titles.conversation_autotitle(conversation_id=conversation_id)


@shared_task(name="conversations.export_build")
def export_build_task(export_id: int) -> str | None:
    export = exports.export_build(export_id=export_id)
    return export.status if export else None


@shared_task(name="conversations.exports_expire")
def exports_expire_task() -> int:
    return exports.exports_expire()


@shared_task(name="conversations.answer_cache_purge")
def answer_cache_purge_task() -> int:
    return answer_cache.answers_purge_expired()


@shared_task(name="conversations.purge")
def conversations_purge_task() -> int:
    return retention.conversations_purge()
