from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from chatbot.users.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    list_display = ("username", "email", "display_name", "department", "is_staff", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "department")
    search_fields = ("username", "email", "display_name")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Product", {"fields": ("display_name", "department", "preferred_model", "preferences")}),
    )
