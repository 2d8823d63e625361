"""One error type per API error code (docs/api.md: `{"error": {"code", "message", "fields"}}`)."""
from __future__ import annotations


class ServiceError(Exception):
    code = "error"
    status = 500
    # `fields` goes out only on validation errors: a client takes its presence to mean
    # "fix these fields". Others may still carry them for the page's forms (web/studio.py).
    answers_fields = False

    def __init__(self, message: str, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.fields and self.answers_fields:
            body["fields"] = self.fields
        return {"error": body}


class Unauthorized(ServiceError):
    code, status = "unauthorized", 401


class NotFound(ServiceError):
    code, status = "not_found", 404


class ValidationFailed(ServiceError):
    code, status = "validation_error", 422
    answers_fields = True

    @classmethod
    def field(cls, name: str, message: str) -> ValidationFailed:
        return cls(f"{name}: {message}", {name: [message]})


class Conflict(ServiceError):
    code, status = "conflict", 409


class ConfirmationRequired(ServiceError):
    code, status = "confirmation_required", 409


class PayloadTooLarge(ServiceError):
    code, status = "payload_too_large", 413


class UnsupportedMediaType(ServiceError):
    code, status = "unsupported_media_type", 415


class Unavailable(ServiceError):
    code, status = "unavailable", 503


class TooManyRequests(ServiceError):
    """Over a limit; `retry_after` (seconds) goes out as the Retry-After header."""
    code, status = "too_many_requests", 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
