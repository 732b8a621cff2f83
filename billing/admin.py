"""Admin: plans, subscriptions, prices, quota periods, the usage ledger and the usage dashboard."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from billing.dashboard import dashboard_view
from billing.models import ModelPrice, Plan, QuotaPeriod, Subscription, UsageRecord


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = (
        "name",
        "requests_per_minute",
        "tokens_per_month",
        "cost_cap_per_month",
        "models_allowed",
        "max_upload_bytes",
        "storage_bytes",
    )
    search_fields = ("name",)
    list_filter = ("requests_per_minute",)


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin[Subscription]):
    list_display = ("user", "plan", "since")
    list_filter = ("plan",)
    search_fields = ("user__username", "user__email")
    raw_id_fields = ("user",)
    date_hierarchy = "since"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).select_related("user", "plan")


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin[ModelPrice]):
    list_display = ("model", "provider", "context_window", "input_price", "output_price", "enabled")
    list_filter = ("enabled", "provider")
    list_editable = ("enabled",)
    search_fields = ("model", "provider")


@admin.register(QuotaPeriod)
class QuotaPeriodAdmin(admin.ModelAdmin[QuotaPeriod]):
    list_display = (
        "user",
        "period_start",
        "tokens_used",
        "tokens_reserved",
        "cost_used",
        "cost_reserved",
    )
    list_filter = ("period_start",)
    search_fields = ("user__username", "user__email")
    raw_id_fields = ("user",)
    date_hierarchy = "period_start"

    def get_queryset(self, request: HttpRequest) -> QuerySet[QuotaPeriod]:
        return super().get_queryset(request).select_related("user")


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin[UsageRecord]):
    """The ledger is written by turns only: read-only here."""

    change_list_template = "admin/billing/usagerecord/change_list.html"
    list_display = (
        "created_at",
        "user",
        "model",
        "provider",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "cache_hit",
        "ttft_ms",
    )
    list_filter = ("status", "model", "provider", "cache_hit")
    search_fields = ("=request_id", "user__username", "model")
    date_hierarchy = "created_at"
    raw_id_fields = ("user", "conversation", "message", "period")
    show_full_result_count = False  # a count(*) over a million rows on every page is slow

    def get_queryset(self, request: HttpRequest) -> QuerySet[UsageRecord]:
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        dashboard = self.admin_site.admin_view(self.dashboard)
        return [
            path("dashboard/", dashboard, name="billing_dashboard"),
            *super().get_urls(),
        ]

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return dashboard_view(request, self.admin_site.each_context(request))
