from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from conversations.models import (
    CachedAnswer,
    Conversation,
    Export,
    Message,
    ModerationEvent,
    RoutingPolicy,
    ShareLink,
    SharingSettings,
)
from conversations.moderation import moderation_events_review


class MessageInline(admin.TabularInline[Message, Conversation]):
    model = Message
    fields = (
        "role",
        "status",
        "content",
        "model",
        "route_reason",
        "completion_tokens",
        "ttft_ms",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("id",)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin[Conversation]):
    list_display = (
        "id",
        "title",
        "owner",
        "model",
        "pinned",
        "archived",
        "deleted_at",
        "updated_at",
    )
    list_filter = ("model", "pinned", "archived", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("title", "owner__username", "owner__email")
    raw_id_fields = ("owner",)
    date_hierarchy = "updated_at"
    readonly_fields = ("created_at", "updated_at", "summary", "summary_through_id")
    inlines = [MessageInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).select_related("owner")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = (
        "id",
        "conversation",
        "role",
        "status",
        "model",
        "route_reason",
        "provider",
        "ttft_ms",
        "created_at",
    )
    list_filter = ("status", "role", "model", "route_reason", "provider", "cached")
    search_fields = ("=id", "=conversation__id", "error_code")
    raw_id_fields = ("conversation", "reply_to")
    date_hierarchy = "created_at"
    readonly_fields = (
        "prompt_tokens",
        "completion_tokens",
        "ttft_ms",
        "duration_ms",
        "error_code",
        "error_detail",
        "route_reason",
        "route_detail",
        "created_at",
        "finished_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).select_related("conversation")


@admin.register(ModerationEvent)
class ModerationEventAdmin(admin.ModelAdmin[ModerationEvent]):
    """Flagged questions and answers, for staff to review (and mark reviewed)."""

    list_display = (
        "id",
        "created_at",
        "user",
        "direction",
        "categories",
        "short_excerpt",
        "provider",
        "reviewed",
    )
    list_filter = ("reviewed", "direction", "provider", "created_at")
    search_fields = ("=user__username", "user__email", "excerpt", "=conversation__id")
    list_editable = ("reviewed",)
    raw_id_fields = ("user", "conversation", "message")
    date_hierarchy = "created_at"
    readonly_fields = (
        "user",
        "conversation",
        "message",
        "direction",
        "categories",
        "excerpt",
        "provider",
        "created_at",
    )
    actions = ["mark_reviewed"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModerationEvent]:
        return super().get_queryset(request).select_related("user")

    @admin.display(description="excerpt")
    def short_excerpt(self, event: ModerationEvent) -> str:
        return event.excerpt[:80] + ("…" if len(event.excerpt) > 80 else "")

    @admin.action(description="Mark the selected events as reviewed")
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[ModerationEvent]) -> None:
        count = moderation_events_review(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} events marked as reviewed.")


@admin.register(SharingSettings)
class SharingSettingsAdmin(admin.ModelAdmin[SharingSettings]):
    """The site-wide sharing switch: one row, which staff edit but never add or delete."""

    list_display = ("__str__", "sharing_enabled")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not SharingSettings.objects.exists()

    def has_delete_permission(
        self, request: HttpRequest, obj: SharingSettings | None = None
    ) -> bool:
        return False


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin[ShareLink]):
    list_display = ("id", "conversation", "owner", "view_count", "expires_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    raw_id_fields = ("conversation", "owner")
    readonly_fields = ("token", "through_message_id", "view_count", "created_at")
    search_fields = ("=id", "=conversation__id", "owner__username")


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin[Export]):
    list_display = ("id", "owner", "status", "done", "total", "size_bytes", "expires_at")
    list_filter = ("status",)
    raw_id_fields = ("owner",)
    readonly_fields = ("file_name", "size_bytes", "created_at", "finished_at")


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(admin.ModelAdmin[RoutingPolicy]):
    """The rules of the ``auto`` model; the active one applies (every process within a second)."""

    list_display = (
        "name",
        "active",
        "long_question_chars",
        "long_context_tokens",
        "budget_prefer_cheap_at",
        "cheap_model",
        "strong_model",
        "updated_at",
    )
    list_filter = ("active",)
    readonly_fields = ("updated_at",)
    fieldsets = [
        (None, {"fields": ["name", "active"]}),
        ("Models", {"fields": ["cheap_model", "strong_model"]}),
        (
            "The request",
            {
                "fields": [
                    "long_question_chars",
                    "long_context_tokens",
                    "code_patterns",
                    "reasoning_cues",
                    "reasoning_min_cues",
                    "sources_prefer_strong",
                    "no_sources_prefer_strong",
                ]
            },
        ),
        ("Budget", {"fields": ["budget_prefer_cheap_at"]}),
        (None, {"fields": ["updated_at"]}),
    ]


@admin.register(CachedAnswer)
class CachedAnswerAdmin(admin.ModelAdmin[CachedAnswer]):
    """Answers kept by the answer cache: read-only; deleting one makes the next asker's fresh."""

    list_display = (
        "id",
        "short_question",
        "model",
        "hit_count",
        "last_hit_at",
        "created_at",
        "expires_at",
    )
    list_filter = ("model",)
    search_fields = ("question",)
    date_hierarchy = "created_at"
    ordering = ("-id",)
    fields = (
        "question",
        "answer",
        "citations",
        "model",
        "scope",
        "question_hash",
        "document_ids",
        "document_versions",
        "created_at",
        "expires_at",
        "hit_count",
        "last_hit_at",
    )
    readonly_fields = fields

    @admin.display(description="question")
    def short_question(self, entry: CachedAnswer) -> str:
        return entry.question[:100]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CachedAnswer]:
        return super().get_queryset(request).defer("embedding")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
