from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete, post_save


def user_created(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """Every new user starts on the default plan."""
    if created and not raw:
        from billing.services import subscription_default_create

        subscription_default_create(user_id=instance.pk)


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        post_save.connect(user_created, sender=settings.AUTH_USER_MODEL, dispatch_uid="billing")
        from billing.models import Plan, Subscription
        from billing.plan_cache import plans_changed
        from billing.upload_limits import PlanUploadLimit
        from knowledge.upload_limits import upload_limit_register

        upload_limit_register(PlanUploadLimit())

        for signal in (post_save, post_delete):
            for model in (Plan, Subscription):
                signal.connect(plans_changed, sender=model, dispatch_uid=f"plans-{model.__name__}")
