"""Seed the free, pro and enterprise plans (values as in billing.selectors.SEED_PLANS)."""

from typing import Any

from django.db import migrations

MIB = 1024 * 1024
PLANS: dict[str, dict[str, Any]] = {
    "free": {
        "requests_per_minute": 20,
        "tokens_per_month": 200_000,
        "cost_cap_per_month": 1_000_000,
        "max_upload_bytes": 10 * MIB,
        "storage_bytes": 100 * MIB,
    },
    "pro": {
        "requests_per_minute": 60,
        "tokens_per_month": 5_000_000,
        "cost_cap_per_month": 50_000_000,
        "max_upload_bytes": 50 * MIB,
        "storage_bytes": 5 * 1024 * MIB,
    },
    "enterprise": {
        "requests_per_minute": 600,
        "tokens_per_month": None,
        "cost_cap_per_month": None,
        "max_upload_bytes": 200 * MIB,
        "storage_bytes": 100 * 1024 * MIB,
    },
}


def seed(apps: Any, schema_editor: Any) -> None:
    plan_model = apps.get_model("billing", "Plan")
    for name, limits in PLANS.items():
        plan_model.objects.get_or_create(name=name, defaults=limits)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
