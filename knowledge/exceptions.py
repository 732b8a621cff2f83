"""Domain errors of the knowledge base; ``chatbot/api.py`` turns them into HTTP responses."""


class KnowledgeError(Exception):
    """Base class: ``code`` is the machine-readable error code clients see."""

    code = "invalid"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(KnowledgeError):
    code = "not_found"
    status = 404


class InvalidInput(KnowledgeError):
    code = "invalid"
    status = 400


class TooLarge(KnowledgeError):
    code = "too_large"
    status = 413


class Conflict(KnowledgeError):
    code = "conflict"
    status = 409
