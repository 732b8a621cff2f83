"""Export: a user's conversations as one zip (JSON and Markdown), made by a Celery task.

The file lives under ``MEDIA_ROOT/.data/exports/`` with a random name (never served by a static
route: downloads go through an owner check), and is removed after ``EXPORT_RETENTION_HOURS``.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.exceptions import NotFound
from conversations.models import Conversation, Export, Message

BATCH = 200
COMPRESSION = zipfile.ZIP_DEFLATED
SLUG = re.compile(r"[^a-z0-9]+")


def exports_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / ".data" / "exports"


def export_path(export: Export) -> Path:
    return exports_dir() / export.file_name


@transaction.atomic
def export_start(*, user: Any) -> Export:
    """Start an export of all the user's conversations (or return the one still running)."""
    running = Export.objects.filter(
        owner_id=user.pk, status__in=[Export.Status.PENDING, Export.Status.RUNNING]
    ).first()
    if running is not None:
        return running
    export = Export.objects.create(owner=user)
    from conversations.tasks import export_build_task

    transaction.on_commit(lambda: export_build_task.delay(export.pk))
    return export


def export_get_for_user(*, user: Any, export_id: int) -> Export:
    """The user's export, or ``NotFound`` (also for someone else's id)."""
    try:
        return Export.objects.get(pk=export_id, owner_id=user.pk)
    except Export.DoesNotExist:
        raise NotFound("export not found") from None


def export_file_for_user(*, user: Any, export_id: int) -> Path:
    """The zip of a finished, unexpired export of the user, or ``NotFound``."""
    export = export_get_for_user(user=user, export_id=export_id)
    expired = export.expires_at is not None and export.expires_at <= timezone.now()
    path = export_path(export) if export.file_name else None
    if export.status != Export.Status.READY or expired or path is None or not path.is_file():
        raise NotFound("export not ready")
    return path


def message_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model": message.model,
        "citations": message.citations,
        "created_at": message.created_at.isoformat(),
    }


def conversation_dict(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "model": conversation.model,
        "pinned": conversation.pinned,
        "archived": conversation.archived,
        "folder": conversation.folder.name if conversation.folder else None,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [message_dict(m) for m in messages],
    }


def conversation_markdown(data: dict[str, Any]) -> str:
    lines = [f"# {data['title'] or 'Untitled conversation'}", ""]
    lines.append(f"Model: {data['model']} · created {data['created_at']}")
    for message in data["messages"]:
        lines += ["", f"## {message['role'].capitalize()} ({message['created_at']})", ""]
        lines.append(message["content"])
    return "\n".join(lines) + "\n"


def conversation_batches(user_id: int) -> Iterator[list[dict[str, Any]]]:
    """The user's live conversations with their messages, ``BATCH`` conversations at a time."""
    last_id = 0
    while True:
        batch = list(
            Conversation.objects.filter(owner_id=user_id, deleted_at__isnull=True, id__gt=last_id)
            .select_related("folder")
            .order_by("id")[:BATCH]
        )
        if not batch:
            return
        by_conversation: dict[int, list[Message]] = {c.pk: [] for c in batch}
        for message in Message.objects.filter(conversation_id__in=by_conversation).order_by("id"):
            by_conversation[message.conversation_id].append(message)
        yield [conversation_dict(c, by_conversation[c.pk]) for c in batch]
        last_id = batch[-1].pk


def zip_write(export: Export, archive: zipfile.ZipFile, json_out: IO[bytes]) -> None:
    first = True
    json_out.write(b'{"conversations": [\n')
    for batch in conversation_batches(export.owner_id):
        for data in batch:
            json_out.write((b"" if first else b",\n") + json.dumps(data).encode())
            first = False
            slug = SLUG.sub("-", (data["title"] or "untitled").lower()).strip("-")[:50]
            archive.writestr(f"markdown/{data['id']}-{slug}.md", conversation_markdown(data))
        export.done += len(batch)
        Export.objects.filter(pk=export.pk).update(done=export.done)
    json_out.write(b"\n]}\n")


def export_build(*, export_id: int) -> Export | None:
    """Write the zip for a pending export, reporting progress as it goes (the Celery task)."""
    claimed = Export.objects.filter(pk=export_id, status=Export.Status.PENDING).update(
        status=Export.Status.RUNNING
    )
    export = Export.objects.filter(pk=export_id).first()
    if not claimed or export is None:
        return export
    export.total = Conversation.objects.filter(
        owner_id=export.owner_id, deleted_at__isnull=True
    ).count()
    Export.objects.filter(pk=export.pk).update(total=export.total)
    exports_dir().mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(18)}.zip"
    path = exports_dir() / name
    try:
        # The JSON grows conversation by conversation next to the Markdown entries; a zip takes
        # one entry at a time, so it waits in a temporary file.
        with (
            tempfile.TemporaryFile() as json_tmp,
            zipfile.ZipFile(path, "w", COMPRESSION) as archive,
        ):
            zip_write(export, archive, json_tmp)
            json_tmp.seek(0)
            with archive.open("conversations.json", "w", force_zip64=True) as json_out:
                shutil.copyfileobj(json_tmp, json_out)
    except Exception:
        path.unlink(missing_ok=True)
        Export.objects.filter(pk=export.pk).update(
            status=Export.Status.FAILED, error="the export failed", finished_at=timezone.now()
        )
        raise
    return export_finish(export, name, path)


def export_finish(export: Export, name: str, path: Path) -> Export:
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": Export.Status.READY,
        "file_name": name,
        "size_bytes": path.stat().st_size,
        "finished_at": now,
        "done": export.total,
        "expires_at": now + timedelta(hours=settings.EXPORT_RETENTION_HOURS),
    }
    if not Export.objects.filter(pk=export.pk).update(**fields):
        path.unlink(missing_ok=True)  # the account went away meanwhile
    for key, value in fields.items():
        setattr(export, key, value)
    return export


def export_files_remove(names: list[str]) -> None:
    for name in names:
        (exports_dir() / Path(name).name).unlink(missing_ok=True)


def exports_expire(*, now: datetime | None = None) -> int:
    """Delete exports (rows and files) past their expiry; the count (the beat task)."""
    expired = Export.objects.filter(expires_at__lt=now or timezone.now())
    names = [name for name in expired.values_list("file_name", flat=True) if name]
    count, _ = expired.delete()
    export_files_remove(names)
    return count
