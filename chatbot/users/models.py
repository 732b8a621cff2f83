"""The product's user: Django's user with room for what chat, knowledge and billing need."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    """A person who chats; staff also see the admin. Email is optional but unique when given."""

    email = models.EmailField("email address", blank=True, db_index=True)
    display_name = models.CharField(max_length=150, blank=True)
    department = models.CharField(
        max_length=100, blank=True, help_text="Used by collection permissions."
    )
    preferred_model = models.CharField(max_length=100, blank=True)
    preferences = models.JSONField(default=dict, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="users_user_email_unique_ci",
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.username
