"""Folders: a user's named groups of conversations (reads and writes)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from conversations.exceptions import InvalidInput, NotFound
from conversations.models import Conversation, Folder

MAX_FOLDER_CHARS = 100
MAX_FOLDERS = 200


def folder_name_validate(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= MAX_FOLDER_CHARS:
        raise InvalidInput(f"folder name must be 1 to {MAX_FOLDER_CHARS} characters")
    return name


def folder_get_for_user(*, user: Any, folder_id: int) -> Folder:
    """The user's folder, or ``NotFound`` (also for someone else's id)."""
    try:
        return Folder.objects.get(pk=folder_id, owner_id=user.pk)
    except Folder.DoesNotExist:
        raise NotFound("folder not found") from None


def folder_list(*, user: Any) -> list[Folder]:
    """The user's folders by name (a user has at most ``MAX_FOLDERS``)."""
    return list(Folder.objects.filter(owner_id=user.pk).order_by("name", "id"))


@transaction.atomic
def folder_create(*, user: Any, name: str) -> Folder:
    """A new folder; names are unique per user."""
    if Folder.objects.filter(owner_id=user.pk).count() >= MAX_FOLDERS:
        raise InvalidInput(f"at most {MAX_FOLDERS} folders")
    try:
        with transaction.atomic():
            return Folder.objects.create(owner=user, name=folder_name_validate(name))
    except IntegrityError:
        raise InvalidInput("a folder with that name exists") from None


@transaction.atomic
def folder_rename(*, folder: Folder, name: str) -> Folder:
    """Rename a folder (still unique per user)."""
    folder.name = folder_name_validate(name)
    try:
        with transaction.atomic():
            folder.save(update_fields=["name"])
    except IntegrityError:
        raise InvalidInput("a folder with that name exists") from None
    return folder


@transaction.atomic
def folder_delete(*, folder: Folder) -> None:
    """Delete a folder; its conversations stay, unfiled (SET NULL)."""
    folder.delete()


@transaction.atomic
def conversation_move(*, conversation: Conversation, folder: Folder | None) -> Conversation:
    """File a conversation in one of its owner's folders, or unfile it (``None``)."""
    if folder is not None and folder.owner_id != conversation.owner_id:
        raise NotFound("folder not found")
    conversation.folder = folder
    conversation.save(update_fields=["folder", "updated_at"])
    return conversation
