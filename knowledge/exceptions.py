"""Domain errors of the knowledge base; ``chatbot/api.py`` turns them into HTTP responses."""

from chatbot.errors import DomainError


class KnowledgeError(DomainError):
    """Base class of the knowledge base's errors."""


class NotFound(KnowledgeError):
    code = "not_found"
    status = 404


class InvalidInput(KnowledgeError):
    code = "invalid"
    status = 400


class TooLarge(KnowledgeError):
    code = "too_large"
    status = 413


class StorageQuotaExceeded(KnowledgeError):
    """The uploader's stored files plus this one would pass their storage quota."""

    code = "storage_quota_exceeded"
    status = 413


class Conflict(KnowledgeError):
    code = "conflict"
    status = 409
