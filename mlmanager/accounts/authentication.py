"""`Authorization: Bearer <token>` for the API."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import api_token_authenticate
from mlmanager.core.throttling import client_address


def set_request_caller(request: Request, caller: Caller) -> None:
    """`request.caller` for the view (on the Django request, as DRF sets `request.user` there
    too), replacing the session's one the middleware made."""
    request._request.caller = caller  # type: ignore[attr-defined]


def api_caller(request: Request) -> Caller:
    """The caller of an API request: its token's (BearerTokenAuthentication) or its session's
    (the middleware's). Reading `request.user` first runs DRF's authentication."""
    user = request.user
    caller: Caller | None = getattr(request._request, "caller", None)
    if caller is None or caller.user_id != (user.pk if user.is_authenticated else None):
        # Authenticated another way than by token or session (DRF's forced authentication in
        # tests): a session's rights, as that user signed in.
        caller = Caller.for_session(user) if user.is_authenticated else Caller.anonymous()  # type: ignore[arg-type]
        request._request.caller = caller  # type: ignore[attr-defined]
    return caller


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = self.bearer_token(request)
        if raw is None:
            return None
        token = api_token_authenticate(raw=raw)
        if token is None:
            raise self.refused()
        set_request_caller(request, Caller.for_api_token(token, address=client_address(request)))
        return token.user, token

    def bearer_token(self, request: Request) -> str | None:
        """The raw token of an `Authorization: Bearer` header; None without one."""
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
        return header[1]

    @staticmethod
    def refused() -> exceptions.AuthenticationFailed:
        return exceptions.AuthenticationFailed(_("Invalid, revoked or expired token."))

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes the bearer token in the OpenAPI schema (registered on import)."""

    target_class = "mlmanager.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An MLManager API token."}
