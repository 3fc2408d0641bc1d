"""The one error type of the domain, and its HTTP meaning.

Services raise ApplicationError (or a subclass) with a stable `code`, a sentence for the user and
optional `details`; the API maps it once (core.api) and pages map it once (core.middleware).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(
        self,
        message: Any,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(str(message))
        self.message = str(message)
        self.code = code or self.default_code
        self.details = details or {}
        # Sent as the Retry-After header (API and pages) when the caller may try again later.
        self.retry_after_s = retry_after_s
        if status_code is not None:
            self.status_code = status_code

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotFound(ApplicationError):
    """Raised for missing objects *and* for other teams' objects, so ids reveal nothing."""

    status_code = 404
    default_code = "not_found"

    def __init__(self, message: Any = None, **kwargs: Any) -> None:
        super().__init__(message or _("Not found."), **kwargs)


class PermissionDenied(ApplicationError):
    status_code = 403
    default_code = "permission_denied"

    def __init__(self, message: Any = None, **kwargs: Any) -> None:
        super().__init__(message or _("Your role in this team does not allow that."), **kwargs)


class Conflict(ApplicationError):
    status_code = 409
    default_code = "conflict"


class PayloadTooLarge(ApplicationError):
    status_code = 413
    default_code = "payload_too_large"
