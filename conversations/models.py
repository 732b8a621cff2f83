"""Conversations and their messages: the durable record of every chat turn."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    """A chat of one user. Deleting is soft (``deleted_at``); purging comes later."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=100, help_text="Model chosen for this conversation.")
    pinned = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Rolling summary of the messages up to and including summary_through_id (made by Celery).
    summary = models.TextField(blank=True)
    summary_through_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["owner", "-updated_at", "-id"],
                condition=models.Q(deleted_at__isnull=True),
                name="conversation_owner_recent",
            )
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    """One message; an assistant message is also the record of one generation (a turn)."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        SYSTEM = "system"

    class Status(models.TextChoices):
        PENDING = "pending"
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        INTERRUPTED = "interrupted"
        FAILED = "failed"
        MODERATED = "moderated"  # halted by output moderation; the text is withheld

    ACTIVE_STATUSES = (Status.PENDING, Status.STREAMING)

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    reply_to = models.OneToOneField(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="reply"
    )
    idempotency_key = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=50, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    citations = models.JSONField(default=list, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="message_idempotency_key_per_conversation",
            ),
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(role="assistant", status__in=["pending", "streaming"]),
                name="message_one_running_answer",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "-id"], name="message_history"),
            models.Index(
                fields=["status"],
                condition=models.Q(status__in=["pending", "streaming"]),
                name="message_active_turns",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class ModerationEvent(models.Model):
    """Text that moderation flagged, kept for staff review.

    Input events have no message: a flagged question is refused before any turn exists.
    Output events point at the assistant message whose answer was halted.
    """

    class Direction(models.TextChoices):
        INPUT = "input"
        OUTPUT = "output"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_events"
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    categories = models.JSONField(default=list, blank=True)
    excerpt = models.TextField(blank=True, help_text="The flagged text, with a little context.")
    provider = models.CharField(
        max_length=50, blank=True, help_text="The moderator that flagged it."
    )
    reviewed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["-created_at"],
                condition=models.Q(reviewed=False),
                name="moderation_to_review",
            )
        ]

    def __str__(self) -> str:
        return f"{self.direction} flagged for {', '.join(self.categories) or 'policy'}"
