from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from knowledge import services
from knowledge.models import Chunk, Collection, Document


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin[Collection]):
    list_display = ("id", "name", "owner", "visibility", "created_at")
    list_filter = ("visibility",)
    search_fields = ("name", "owner__username")
    raw_id_fields = ("owner",)
    filter_horizontal = ("groups",)


class DocumentUploadForm(forms.ModelForm[Document]):
    """Adding a document uploads a file through the same service as the API."""

    upload = forms.FileField(help_text="PDF, DOCX, HTML, Markdown or plain text.")

    class Meta:
        model = Document
        fields = ("collection", "title")

    def clean_upload(self) -> Any:
        upload = self.cleaned_data["upload"]
        if upload.size > settings.KNOWLEDGE_MAX_UPLOAD_BYTES:
            limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
            raise forms.ValidationError(f"The file is larger than the limit of {limit} bytes.")
        return upload


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin[Document]):
    list_display = ("id", "title", "collection", "status", "error_code", "chunk_count", "attempts")
    list_filter = ("status", "media_type", "error_code")
    search_fields = ("title", "filename", "sha256", "collection__name")
    raw_id_fields = ("collection", "uploader")
    actions = ["reingest"]
    readonly_fields = (
        "file",
        "filename",
        "media_type",
        "size",
        "sha256",
        "status",
        "error_code",
        "error_reason",
        "attempts",
        "version",
        "page_count",
        "chunk_count",
        "progress_done",
        "progress_total",
        "uploader",
        "created_at",
        "updated_at",
        "status_changed_at",
        "ingested_at",
    )

    def get_form(
        self, request: HttpRequest, obj: Document | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = DocumentUploadForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Document | None = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Document | None = None) -> Any:
        if obj is None:
            return ("collection", "title", "upload")
        return ("collection", "title", *self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        upload = form.cleaned_data["upload"]
        document, created = services.document_upload(
            uploader=request.user,
            collection=form.cleaned_data["collection"],
            chunks=upload.chunks(),
            filename=upload.name,
            title=form.cleaned_data.get("title", ""),
            limited=False,  # staff upload as operators: no plan limits (the setting's holds)
        )
        obj.__dict__.update(document.__dict__)  # the admin goes on with the stored document
        if not created:
            self.message_user(request, "This file is already in the collection.", messages.INFO)

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            services.document_delete(document=document)

    @admin.action(description="Ingest the selected documents again")
    def reingest(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            services.document_reingest(document=document)
        self.message_user(request, f"{queryset.count()} document(s) queued.", messages.SUCCESS)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin[Chunk]):
    list_display = ("id", "document", "version", "ordinal", "page", "section", "token_count")
    search_fields = ("=document__id", "text")
    raw_id_fields = ("document", "collection")
    exclude = ("embedding",)
    readonly_fields = (
        "document",
        "collection",
        "version",
        "ordinal",
        "text",
        "token_count",
        "page",
        "section",
    )
