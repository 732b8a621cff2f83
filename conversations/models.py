"""Conversations and their messages: the durable record of every chat turn."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func
from pgvector.django import HnswIndex

from knowledge.models import EmbeddingField

# Full-text configuration of titles and messages (a regconfig name; "simple" does no stemming).
SEARCH_CONFIG = "english"
# Each search vector also holds one lexeme naming its owner ("owner 42": the text parser never
# makes a lexeme with a space), so one GIN index narrows by user and by words at once. Stock
# PostgreSQL has no (bigint, tsvector) GIN opclass without the btree_gin extension.
OWNER_LEXEME = "owner "
# The GIN indexes are on a second form of those vectors whose lexemes all begin with the owner's
# id ("42:invoic"), written by the SQL function below (migration 0006), and queries name
# "42:invoic" too: a word's posting list then holds one user's rows, so an index scan costs in
# proportion to that user's matches, not to their whole history (the plain owner lexeme made
# every scan walk all of the user's rows). The stored vectors stay plain for ranking.
OWNED_SEARCH_FUNCTION = "search_owned"


def owned_search(vector: str) -> Func:
    """The index expression: ``vector``'s lexemes prefixed with ``<owner_id>:``."""
    return Func(
        F(vector), F("owner_id"), function=OWNED_SEARCH_FUNCTION, output_field=SearchVectorField()
    )


class SearchDocument(Func):
    """The stored search vector: the text's lexemes plus the owner lexeme (immutable SQL)."""

    output_field = SearchVectorField()

    def __init__(self, text: str, owner: str) -> None:
        super().__init__(F(text), F(owner))

    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        text_sql, text_params = compiler.compile(self.source_expressions[0])
        owner_sql, owner_params = compiler.compile(self.source_expressions[1])
        sql = (
            f"(to_tsvector('{SEARCH_CONFIG}'::regconfig, COALESCE({text_sql}, ''))"
            f" || array_to_tsvector(ARRAY['{OWNER_LEXEME}' || ({owner_sql})::text]))"
        )
        return sql, [*text_params, *owner_params]


class Folder(models.Model):
    """A user's named group of conversations; deleting it leaves its conversations unfiled."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="folders"
    )
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="folder_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    """A chat of one user. Deleting is soft (``deleted_at``); purging comes later."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=100, help_text="Model chosen for this conversation.")
    pinned = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    folder = models.ForeignKey(
        Folder, on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Rolling summary of the messages up to and including summary_through_id (made by Celery).
    summary = models.TextField(blank=True)
    summary_through_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Written by PostgreSQL itself on every insert and update: no code path can forget it.
    title_search = models.GeneratedField(
        expression=SearchDocument("title", "owner_id"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["owner", "-updated_at", "-id"],
                condition=models.Q(deleted_at__isnull=True),
                name="conversation_owner_recent",
            ),
            GinIndex(owned_search("title_search"), name="title_search_owned"),
            models.Index(
                fields=["deleted_at"],
                condition=models.Q(deleted_at__isnull=False),
                name="conversation_trash",
            ),
            # Search excludes the user's deleted conversations by this (small) set.
            models.Index(
                fields=["owner"],
                condition=models.Q(deleted_at__isnull=False),
                name="conversation_owner_trash",
            ),
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
    # The conversation's owner, copied so search can narrow by user inside its GIN index.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
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
    # Why the ``auto`` model picked ``model`` for this answer (empty: the user chose the model),
    # written with the outcome when the turn finishes.
    # Database defaults: the turn's one-statement insert (``turn_sql``) need not name them.
    route_reason = models.CharField(max_length=20, blank=True, default="", db_default="")
    route_detail = models.JSONField(null=True, blank=True)
    cached = models.BooleanField(
        default=False, db_default=False, help_text="Served from the answer cache."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    search = models.GeneratedField(
        expression=SearchDocument("content", "owner_id"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

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
            GinIndex(owned_search("search"), name="message_search_owned"),
            # Search walks a user's newest messages (and bounds older ones by time) through it.
            models.Index(fields=["owner", "-created_at", "-id"], name="message_owner_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The copied owner always follows the conversation (bulk writers set it themselves).
        if self.owner_id is None and self.conversation_id is not None:
            self.owner_id = self.conversation.owner_id
        super().save(*args, **kwargs)

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


class ShareLink(models.Model):
    """A public, read-only snapshot of a conversation up to ``through_message_id``.

    The token is random (``secrets.token_urlsafe``), not derived from any id. Revoked or expired
    links stay as rows so the owner sees them; the public page treats them as unknown.
    """

    token = models.CharField(max_length=64, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links"
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="share_links"
    )
    title = models.CharField(max_length=200, blank=True)
    through_message_id = models.BigIntegerField(default=0)
    include_snippets = models.BooleanField(
        default=False, help_text="Show the quoted passages of citations, not only document titles."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-id"], name="share_owner_recent")]

    def __str__(self) -> str:
        return f"Share of conversation {self.conversation_id}"


class SharingSettings(models.Model):
    """The site-wide sharing switch (one row, edited by staff in the admin)."""

    sharing_enabled = models.BooleanField(
        default=True, help_text="Off: no new share links, and existing ones show as not found."
    )

    class Meta:
        verbose_name = "sharing settings"
        verbose_name_plural = "sharing settings"

    def __str__(self) -> str:
        return "Sharing settings"


class Export(models.Model):
    """A user's download of all their conversations (a zip made by a Celery task)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        READY = "ready"
        FAILED = "failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exports"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-id"], name="export_owner_recent")]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.status})"


class UserSession(models.Model):
    """Which session keys belong to a user, so deleting an account ends all its sessions."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Session of user {self.user_id}"


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def patterns_validate(text: str) -> None:
    for line in lines_of(text):
        try:
            re.compile(line)
        except re.error as exc:
            raise ValidationError(f"not a regular expression: {line!r} ({exc})") from None


class RoutingPolicy(models.Model):
    """How the ``auto`` model chooses between a cheap and a strong model (staff edit it).

    One policy is active at a time; without one, the built-in defaults apply. Every web process
    caches the active policy and sees a change within ``ROUTING_POLICY_CHECK_SECONDS``
    (``conversations.routing_policy``). The rules are in ``conversations.model_routing``.
    """

    name = models.CharField(max_length=100, unique=True)
    active = models.BooleanField(default=True)
    long_question_chars = models.PositiveIntegerField(
        default=1200, help_text="A question at least this long goes to the strong model."
    )
    long_context_tokens = models.PositiveIntegerField(
        default=3000,
        help_text="A prompt (history, sources, question) of at least this many tokens goes to "
        "the strong model.",
    )
    code_patterns = models.TextField(
        blank=True,
        validators=[patterns_validate],
        help_text="Regular expressions, one a line (case-sensitive; (?i:...) for not): a match "
        "in the question means code, which goes to the strong model.",
    )
    reasoning_cues = models.TextField(
        blank=True,
        help_text="Words or phrases, one a line (whole words, any case) that ask for multi-step "
        "reasoning.",
    )
    reasoning_min_cues = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Distinct reasoning cues needed to prefer the strong model.",
    )
    sources_prefer_strong = models.BooleanField(
        default=True, help_text="Answers grounded in retrieved sources use the strong model."
    )
    no_sources_prefer_strong = models.BooleanField(
        default=False,
        help_text="Questions for which retrieval found nothing use the strong model.",
    )
    budget_prefer_cheap_at = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Once a user has used this fraction of their plan's monthly tokens or cost "
        "cap, the cheap model answers (1: never).",
    )
    cheap_model = models.CharField(
        max_length=100, blank=True, help_text="Empty: the plan's cheapest priced model."
    )
    strong_model = models.CharField(
        max_length=100, blank=True, help_text="Empty: the plan's most expensive priced model."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "routing policies"
        constraints = [
            models.UniqueConstraint(
                fields=["active"],
                condition=models.Q(active=True),
                name="routing_one_active",
                violation_error_message="Another policy is active: deactivate it first.",
            ),
            models.CheckConstraint(
                condition=models.Q(budget_prefer_cheap_at__gte=0, budget_prefer_cheap_at__lte=1),
                name="routing_budget_fraction",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CachedAnswer(models.Model):
    """A complete answer to a standalone question, served again to the same permission scope.

    ``scope`` hashes what the answer may depend on besides the question: the collections the
    asker could read, the model, the system prompt and ``ANSWER_CACHE_PROMPT_VERSION`` (see
    ``conversations.answer_cache``). ``document_ids`` / ``document_versions`` are the cited
    documents at the versions the answer was written from: a lookup skips an entry whose
    documents are gone or changed, and a change deletes it (``document_changed``).
    """

    question = models.TextField()
    question_hash = models.CharField(max_length=64, help_text="sha256 of the normalised question.")
    scope = models.CharField(max_length=64)
    embedding = EmbeddingField()
    answer = models.TextField()
    citations = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=100)
    document_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    document_versions = ArrayField(models.PositiveIntegerField(), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    hit_count = models.PositiveIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            HnswIndex(
                name="cachedanswer_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["scope", "question_hash"], name="cachedanswer_exact"),
            models.Index(fields=["expires_at"], name="cachedanswer_expiry"),
            GinIndex(fields=["document_ids"], name="cachedanswer_documents"),
        ]

    def __str__(self) -> str:
        return self.question[:80]
