"""The product's user: Django's user with room for what chat, knowledge and billing need."""

import hashlib

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


API_KEY_PREFIX = "cb_"
API_KEY_DISPLAY_LENGTH = 8


def api_key_digest(raw_key: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up (see ApiKey)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A bearer key for non-browser clients; the raw key is shown once and never stored.

    Only the SHA-256 of the key is kept. A slow password hash (PBKDF2, argon2) exists to make
    guessing low-entropy secrets expensive; these keys carry 256 random bits, so guessing is
    hopeless whatever the hash, and a fast, unsalted digest lets every request find its key with
    one indexed lookup instead of hashing against each candidate row.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. 'CI bot'.")
    prefix = models.CharField(
        max_length=API_KEY_DISPLAY_LENGTH,
        db_index=True,
        editable=False,
        help_text="The key's first characters, to tell keys apart.",
    )
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
