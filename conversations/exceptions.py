"""Domain errors of the chat; one place per edge turns them into HTTP or websocket errors."""


class ChatError(Exception):
    """Base class: ``code`` is the machine-readable error code clients see."""

    code = "invalid"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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
