"""Plans, subscriptions, the model catalogue with prices, quota periods and the usage ledger.

Money is integers: micro-dollars (1e-6 USD). Prices are micro-dollars per million tokens, so
a request costs ``(prompt * input_price + completion * output_price) / 1e6`` micro-dollars.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models


class Plan(models.Model):
    """A tier users subscribe to; empty limits mean unlimited."""

    name = models.SlugField(max_length=50, unique=True)
    requests_per_minute = models.PositiveIntegerField(
        default=20, help_text="Chat requests per minute (token bucket); 0 means no limit."
    )
    tokens_per_month = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Prompt + answer tokens per calendar month; empty: no cap."
    )
    cost_cap_per_month = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Micro-dollars (1e-6 USD) per month; empty: no cap."
    )
    models_allowed = ArrayField(
        models.CharField(max_length=100),
        blank=True,
        default=list,
        help_text="Model names this plan may use (comma-separated); empty: every enabled model.",
    )
    max_upload_bytes = models.PositiveBigIntegerField(default=10 * 1024 * 1024)
    storage_bytes = models.PositiveBigIntegerField(default=100 * 1024 * 1024)

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    since = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} on {self.plan}"


class ModelPrice(models.Model):
    """The model catalogue: what a model costs and whether users may pick it."""

    model = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=50, default="openai")
    context_window = models.PositiveIntegerField(default=8192)
    input_price = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-dollars per million prompt tokens."
    )
    output_price = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-dollars per million answer tokens."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(input_price__gte=0, output_price__gte=0),
                name="modelprice_prices_not_negative",
            )
        ]

    def __str__(self) -> str:
        return self.model


class QuotaPeriod(models.Model):
    """A user's usage in one calendar month (UTC); reserved = running requests' estimates."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_periods"
    )
    period_start = models.DateField()
    tokens_used = models.BigIntegerField(default=0)
    tokens_reserved = models.BigIntegerField(default=0)
    cost_used = models.BigIntegerField(default=0)
    cost_reserved = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "period_start"], name="quota_period_per_user"),
            models.CheckConstraint(
                condition=models.Q(
                    tokens_used__gte=0,
                    tokens_reserved__gte=0,
                    cost_used__gte=0,
                    cost_reserved__gte=0,
                ),
                name="quota_period_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.period_start:%Y-%m}"


class UsageRecord(models.Model):
    """One request in the ledger. Written ``reserved`` when the turn begins, settled once.

    Links are SET_NULL: the ledger outlives a deleted account or conversation, anonymously.
    """

    class Status(models.TextChoices):
        RESERVED = "reserved"
        COMPLETE = "complete"
        STOPPED = "stopped"
        INTERRUPTED = "interrupted"
        FAILED = "failed"
        MODERATED = "moderated"  # halted by output moderation: generated tokens are billed

    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Every index costs each turn an insert: user lookups use usage_user_created, message
    # lookups the unique constraint, so those two foreign keys get no index of their own.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        db_index=False,
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    message = models.ForeignKey(
        "conversations.Message",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        db_index=False,
    )
    period = models.ForeignKey(QuotaPeriod, on_delete=models.SET_NULL, null=True, related_name="+")
    model = models.CharField(max_length=100)
    provider = models.CharField(max_length=50, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reserved_tokens = models.PositiveIntegerField(default=0)
    reserved_cost = models.BigIntegerField(default=0)
    cost = models.BigIntegerField(default=0, help_text="Micro-dollars.")
    cache_hit = models.BooleanField(default=False)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RESERVED)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message"], name="usage_one_record_per_message"),
        ]
        indexes = [
            # Covering: the dashboard's live range queries (distinct users, top users by cost)
            # are index-only scans.
            models.Index(
                fields=["created_at"],
                include=["user", "cost", "prompt_tokens", "completion_tokens", "status"],
                name="usage_created",
            ),
            models.Index(fields=["user", "created_at"], name="usage_user_created"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model} {self.status}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# TTFT histogram buckets (upper bounds, ms) of the daily roll-up; the last bucket is open.
TTFT_BUCKETS_MS = (
    *range(25, 200, 25),
    *range(200, 1000, 50),
    *range(1000, 3000, 100),
    *range(3000, 10000, 500),
    10000,
    15000,
    30000,
)


class UsageDaily(models.Model):
    """The ledger rolled up per UTC day and model (``model`` empty: all models of that day).

    Rebuilt from ``UsageRecord`` by ``usage_rollup`` (Celery beat, every minute, for yesterday
    and today; ``manage.py usage_rollup`` for older days), so the dashboard reads a few hundred
    rows instead of scanning a million records. TTFT percentiles are exact per row; the
    histogram lets a range's percentiles be merged from its days.
    """

    day = models.DateField()
    model = models.CharField(max_length=100, blank=True)
    requests = models.PositiveIntegerField(default=0)
    active_users = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.BigIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    ttft_p50 = models.FloatField(null=True)
    ttft_p95 = models.FloatField(null=True)
    ttft_histogram = ArrayField(models.PositiveIntegerField(), default=list)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "usage daily"
        constraints = [
            models.UniqueConstraint(fields=["day", "model"], name="usage_daily_per_day_model")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model or 'all models'}"


class UsageUserMonth(models.Model):
    """The ledger rolled up per user and calendar month (UTC), for the dashboard's user figures.

    ``days`` has bit ``d - 1`` set when the user made a counted request on day ``d``;
    ``cost_through[k]`` (1-based, 32 entries) is their cost over days ``1 .. k - 1``, so the cost
    of days ``lo .. hi`` is ``cost_through[hi + 1] - cost_through[lo]``. Distinct users and the
    top users by cost over any range of days then read one row per user and month instead of
    every record. Kept fresh with ``UsageDaily`` (``billing.rollup``): a refreshed day adds the
    change of each user's cost that day, so a rerun changes nothing.
    """

    # Not a foreign key: the ledger keeps a deleted user's usage (as NULL); here it stays theirs.
    user_id = models.BigIntegerField()
    month = models.DateField(help_text="The first day of the month.")
    days = models.IntegerField(default=0)
    cost_through = ArrayField(models.BigIntegerField(), size=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "user_id"], name="usage_user_month_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.month:%Y-%m}"
