"""Seed the default routing policy of the ``auto`` model (the built-in rules, editable)."""

from typing import Any

from django.db import migrations

from conversations.model_routing import DEFAULT_CODE_PATTERNS, DEFAULT_REASONING_CUES


def seed(apps: Any, schema_editor: Any) -> None:
    RoutingPolicy = apps.get_model("conversations", "RoutingPolicy")
    RoutingPolicy.objects.get_or_create(
        name="default",
        defaults={
            "active": not RoutingPolicy.objects.filter(active=True).exists(),
            "code_patterns": "\n".join(DEFAULT_CODE_PATTERNS),
            "reasoning_cues": "\n".join(DEFAULT_REASONING_CUES),
        },
    )


class Migration(migrations.Migration):
    dependencies = [("conversations", "0007_message_route_routing_policy")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
