"""The staff usage and cost dashboard (an admin page): a date range, charts, tables, CSV."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from billing.reports import (
    DateRange,
    usage_by_model,
    usage_daily,
    usage_totals,
    usage_users,
)

DEFAULT_DAYS = 30
MAX_DAYS = 366
DAILY_COLUMNS = (
    "day",
    "active_users",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cache_hit_ratio",
    "ttft_p50",
    "ttft_p95",
    "error_rate",
)
MODEL_COLUMNS = ("day", "model", "requests", "tokens", "cost")


class RangeForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        end = data.get("end") or timezone.now().date()
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError("the start is after the end")
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"at most {MAX_DAYS} days at once")
        return {"start": start, "end": end}


def date_range(request: HttpRequest) -> tuple[RangeForm, DateRange]:
    form = RangeForm(request.GET or None)
    if form.is_valid():
        return form, DateRange(form.cleaned_data["start"], form.cleaned_data["end"])
    today = timezone.now().date()
    return form, DateRange(today - timedelta(days=DEFAULT_DAYS - 1), today)


def dashboard_view(request: HttpRequest, admin_context: dict[str, Any]) -> HttpResponse:
    form, span = date_range(request)
    export = request.GET.get("export")
    if export == "daily":
        return csv_response(
            f"usage-daily-{span.first}-{span.last}", DAILY_COLUMNS, usage_daily(span=span)
        )
    if export == "models":
        return csv_response(
            f"usage-models-{span.first}-{span.last}", MODEL_COLUMNS, usage_by_model(span=span)
        )
    daily = usage_daily(span=span)
    by_model = usage_by_model(span=span)
    users = usage_users(span=span)
    context = {
        **admin_context,
        "title": "Usage and cost",
        "form": form,
        "span": span,
        "totals": {**usage_totals(span=span), "active_users": users.active},
        "daily": daily,
        "top_users": users.top,
        "charts": chart_data(span, daily, by_model),
        "query": request.GET.urlencode(),
    }
    return TemplateResponse(request, "admin/billing/dashboard.html", context)


def days_of(span: DateRange) -> list[date]:
    return [span.first + timedelta(days=n) for n in range((span.last - span.first).days + 1)]


def chart_data(
    span: DateRange, daily: list[dict[str, Any]], by_model: list[dict[str, Any]]
) -> dict[str, Any]:
    """Series for Chart.js, one point per day of the range (zero on days without usage)."""
    days = days_of(span)
    per_day = {row["day"]: row for row in daily}

    def series(key: str, scale: float = 1) -> list[float]:
        return [round(float(per_day[d][key] or 0) * scale, 4) if d in per_day else 0 for d in days]

    models = sorted({row["model"] for row in by_model})
    cell = {(row["day"], row["model"]): row for row in by_model}
    return {
        "labels": [d.isoformat() for d in days],
        "activity": {"active_users": series("active_users"), "requests": series("requests")},
        "ttft": {"p50": series("ttft_p50"), "p95": series("ttft_p95")},
        "rates": {"cache_hit": series("cache_hit_ratio"), "error": series("error_rate")},
        "models": [
            {
                "model": model,
                "tokens": [
                    int(cell[(d, model)]["tokens"]) if (d, model) in cell else 0 for d in days
                ],
                "cost_usd": [
                    int(cell[(d, model)]["cost"]) / 1_000_000 if (d, model) in cell else 0
                    for d in days
                ],
            }
            for model in models
        ],
    }


def csv_response(name: str, columns: tuple[str, ...], data: list[dict[str, Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(columns)
    for row in data:
        writer.writerow([row[column] for column in columns])
    return response
