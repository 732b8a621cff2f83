"""Template filters for money and ratios on the dashboard."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def usd(micro_dollars: int | None) -> str:
    """Micro-dollars as dollars: 1234567 -> "$1.2346"."""
    return f"${(micro_dollars or 0) / 1_000_000:,.4f}"


@register.filter
def percent(ratio: float | None) -> str:
    return f"{(ratio or 0) * 100:.1f}%"


@register.filter
def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
