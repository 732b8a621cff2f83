"""Domain errors of the chat; one place per edge turns them into HTTP or websocket errors."""

from chatbot.errors import DomainError


class ChatError(DomainError):
    """Base class: ``code`` is the machine-readable error code clients see."""

    code = "invalid"
    status = 400


class NotFound(ChatError):
    code = "not_found"
    status = 404


class InvalidInput(ChatError):
    code = "invalid"
    status = 400


class TurnInProgress(ChatError):
    code = "turn_in_progress"
    status = 409


class ModerationBlocked(ChatError):
    code = "moderation_blocked"
    status = 400


class SharingDisabled(ChatError):
    code = "sharing_disabled"
    status = 403
