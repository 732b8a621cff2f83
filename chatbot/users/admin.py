from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from chatbot.users.models import ApiKey, User
from chatbot.users.services import api_key_create, api_key_revoke


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    list_display = ("username", "email", "display_name", "department", "is_staff", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "department")
    search_fields = ("username", "email", "display_name")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Product", {"fields": ("display_name", "department", "preferred_model", "preferences")}),
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    """Adding a key generates it and shows the raw key once; the digest is never displayed."""

    list_display = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_display_links = ("name",)
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    autocomplete_fields = ("user",)
    actions = ("revoke_selected",)
    add_fields = ("user", "name")
    change_fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        return self.add_fields if obj is None else self.change_fields

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return [field for field in self.change_fields if field != "name"]

    def save_form(self, request: HttpRequest, form: ModelForm[ApiKey], change: bool) -> ApiKey:
        if change:
            edited: ApiKey = super().save_form(request, form, change)
            return edited
        api_key, raw_key = api_key_create(
            user=form.cleaned_data["user"], name=form.cleaned_data["name"]
        )
        self.message_user(
            request,
            f"The new key is {raw_key} — copy it now: it is not stored and is not shown again.",
            messages.WARNING,
        )
        return api_key

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: ModelForm[ApiKey], change: bool
    ) -> None:
        if change:  # a new key was saved by api_key_create in save_form
            super().save_model(request, obj, form, change)

    def save_related(
        self, request: HttpRequest, form: ModelForm[ApiKey], formsets: Any, change: bool
    ) -> None:
        if change:  # an added key has no relations to save, and its form was never saved
            super().save_related(request, form, formsets, change)

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        live_keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in live_keys:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {len(live_keys)} key(s).", messages.SUCCESS)
